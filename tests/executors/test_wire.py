"""What crosses to remote workers (``executors/wire.py``)."""

from __future__ import annotations

import functools

from nbflow.core.worker import TaskContext
from nbflow.executors import wire


def add(a, b):
    return a + b


def test_a_function_is_pickled_once_per_run_and_loaded_once_per_worker(monkeypatch):
    pickled = []
    real = wire.dumps
    monkeypatch.setattr(wire, "dumps", lambda obj: pickled.append(obj) or real(obj))
    blobs = wire.FunctionBlobs()
    fn = functools.partial(add, 1)
    jobs = [real((blobs(fn), {"b": k}, TaskContext("add", 1))) for k in range(5)]
    assert pickled == [fn]
    monkeypatch.setattr(wire, "_LOADED", {})
    outs = [wire.received(wire.run_job(job, "w", "Dask worker"), None, 0.0, "w") for job in jobs]
    assert [o.value for o in outs] == [1, 2, 3, 4, 5]
    assert list(wire._LOADED.values()) == [wire._LOADED[blobs(fn)]]   # one function loaded
    assert {o.worker for o in outs} == {"w"}


def test_a_job_that_does_not_load_fails_with_the_place_named():
    out = wire.received(wire.run_job(b"not a pickle", "w", "Dask worker"), None, 0.0, "w")
    assert not out.ok
    assert ("nbflow: the task could not be loaded on its Dask worker: it refers to a module "
            "or object the Dask worker cannot import (install it there).") in out.error.__notes__
