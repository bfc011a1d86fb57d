"""Fixtures for the command-line tests: notebooks written to tmp folders, and the
real ``nbflow`` console script run as a subprocess (stdout is a pipe, not a
terminal, so it prints one line per change as in CI logs)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

NBFLOW = Path(sys.executable).with_name("nbflow")


def run_nbflow(*args: str, cwd: Path, env: dict[str, str] | None = None,
               timeout: float = 240) -> subprocess.CompletedProcess:
    """``nbflow ARGS`` in ``cwd`` with no NBFLOW_* variables but those in ``env``."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("NBFLOW_")}
    return subprocess.run([str(NBFLOW), *args], cwd=cwd, env={**base, **(env or {})},
                          capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL)


def write_notebook(path: Path, *cells: str) -> Path:
    """A notebook for the python3 kernel, written to ``path``: a cell is code, or
    markdown if it starts with ``# md``."""
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_markdown_cell(c) if c.startswith("# md") else nbformat.v4.new_code_cell(c)
        for c in cells])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)
    return path


@pytest.fixture(scope="session")
def nbflow_exe() -> Path:
    """The path of the ``nbflow`` console script of this environment."""
    if not NBFLOW.exists():
        pytest.fail(f"{NBFLOW} is missing: install nbflow into this environment "
                    "(scripts/setup.sh does)")
    return NBFLOW


@pytest.fixture(scope="session")
def nbflow_cli(nbflow_exe):
    """The ``nbflow`` command: ``nbflow_cli(*args, cwd=..., env=...)``."""
    return run_nbflow


@pytest.fixture(scope="session")
def notebook():
    """``notebook(path, *cells)`` writes a notebook and returns its path."""
    return write_notebook
