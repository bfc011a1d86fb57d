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


def _find(name: str) -> str | None:
    return shutil.which(name, path=str(Path(sys.executable).parent))


def _tool(name: str) -> str:
    path = _find(name)
    if path is None:
        pytest.fail(f"{name} is not installed in this environment: pip install -e '.[test]'")
    return path


def test_ruff_finds_nothing():
    done = subprocess.run([_tool("ruff"), "check", "--no-cache", "nbflow", "tests", "benchmarks"],
                          cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.slow
def test_mypy_strict_finds_nothing_in_core_and_executors():
    mypy = _tool("mypy")   # the test extra has it, as it has ruff: missing is a failure
    # The configuration (strict for these two, the rest read but not reported) is
    # pyproject.toml's [tool.mypy]; the cache makes a rerun a few seconds.
    done = subprocess.run([mypy, "nbflow/core", "nbflow/executors"],
                          cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
