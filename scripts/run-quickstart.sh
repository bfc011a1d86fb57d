#!/usr/bin/env bash
# The main job: set up (scripts/setup.sh), then run the quickstart notebook's flow
# headless in a fresh kernel, on SQLite (notebooks/.nbflow/nbflow.db), with live
# progress. Extra arguments go to `nbflow run`, e.g. --workers 2.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
exec .venv/bin/nbflow run notebooks/01-quickstart.ipynb "$@"
