"""The front-end workspace and the Python package carry one version."""

from __future__ import annotations

import json
from pathlib import Path

import nbflow

PACKAGE_JSON = Path(__file__).resolve().parents[2] / "labextension" / "package.json"


def test_labextension_version_is_the_python_version():
    assert json.loads(PACKAGE_JSON.read_text())["version"] == nbflow.__version__
