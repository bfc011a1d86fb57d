"""The style the code holds, checked by the tools the project configures (pyproject.toml):
ruff over the Python tree, and mypy, strict, over ``nbflow/core`` and ``nbflow/executors``.
So every ``noqa`` and ``type: ignore`` in the code is read by a tool."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _tool(name: str) -> str:
    path = shutil.which(name, path=str(Path(sys.executable).parent))
    if path is None:
        pytest.fail(f"{name} is not installed in this environment: pip install -e '.[test]'")
    return path


def test_ruff_finds_nothing():
    done = subprocess.run([_tool("ruff"), "check", "--no-cache", "nbflow", "tests", "benchmarks"],
                          cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
