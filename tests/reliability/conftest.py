"""Helpers for the reliability tests: what ran, and a flow on a test's own store.

Task functions here are closures over a :class:`Log`; a closure value that is
not plain data counts by its type only in a task's key (``nbflow/results.py``),
so re-declaring the same function in a "restarted kernel" (a new Flow object)
gives the same keys, as in a notebook.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

# The real-kernel driver of the notebook tests.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "notebook"))
from kernelsession import KernelSession, kernel_env
from pipelines import Log


@pytest.fixture
def log() -> Log:
    return Log()


@pytest.fixture
def results_dir(tmp_path, monkeypatch):
    """``NBFLOW_RESULTS`` unset (results go beside the test's SQLite file): that folder."""
    monkeypatch.delenv("NBFLOW_RESULTS", raising=False)
    return tmp_path / "results"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def backend_url(request, tmp_path, monkeypatch):
    """A fresh store on a SQLite file or a new PostgreSQL database; results go to
    ``tmp_path/results`` either way."""
    monkeypatch.setenv("NBFLOW_RESULTS", str(tmp_path / "results"))
    if request.param == "sqlite":
        return str(tmp_path / "nbflow.db")
    return request.getfixturevalue("new_pg_url")


@pytest.fixture
def start_kernel(tmp_path):
    """``start_kernel()`` -> a new kernel with nbflow loaded, working in ``tmp_path`` (so its
    store is ``tmp_path/.nbflow/nbflow.db``); call it again for a restarted kernel."""
    sessions: list[KernelSession] = []

    def start() -> KernelSession:
        while sessions:
            sessions.pop().close()
        sessions.append(KernelSession(str(tmp_path), kernel_env(NBFLOW_RESULTS="")))
        sessions[-1].ok("%load_ext nbflow")
        return sessions[-1]

    yield start
    for s in sessions:
        s.close()
