"""Core tests run the engine with the synchronous executor and a virtual clock
(the building blocks are ``tests/engines.py``).  A core test that starts a thread
fails: tests of real threads belong in ``tests/executors`` (the pools, the real
clock) or ``tests/reliability``."""

from __future__ import annotations

import threading

import pytest
from engines import engine_for, final_states, run, spec, timed  # noqa: F401 - the fixtures


@pytest.fixture(autouse=True)
def _no_threads(monkeypatch):
    """Fail the test if anything in it started a thread (named in the failure)."""
    started: list[str] = []
    real_start = threading.Thread.start

    def start(thread: threading.Thread) -> None:
        started.append(thread.name)
        real_start(thread)

    monkeypatch.setattr(threading.Thread, "start", start)
    yield
    if started:
        pytest.fail(f"this core test started threads {started}: tests/core runs the engine "
                    "with the synchronous executor and a virtual clock only; move it to "
                    "tests/executors or tests/reliability", pytrace=False)
