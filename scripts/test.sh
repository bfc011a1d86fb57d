#!/usr/bin/env bash
# The whole test suite: set up (scripts/setup.sh), then pytest with every marker
# selected (kernel, postgres and browser tests included; they start what they need).
# Extra arguments go to pytest, e.g. tests/cli -x.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
# -m "" overrides any marker filter in the pytest configuration: everything runs.
rc=0
.venv/bin/python -m pytest -m "" "$@" || rc=$?
if [ "$rc" = 5 ]; then
    echo "test: pytest collected no tests; that is a failure, not a pass" >&2
    exit 1
fi
exit "$rc"
