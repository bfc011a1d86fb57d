"""Through ``Flow`` and its store: a task whose exception cannot be printed is
stored as failed, and ``async def`` tasks run to completion (the sync executor;
the store's writer is a thread, hence not in tests/core)."""

from __future__ import annotations

import asyncio

import pytest

import nbflow
from nbflow import Flow


class Unprintable(Exception):
    def __str__(self):
        raise RuntimeError("__str__ is broken")


def hostile():
    raise Unprintable()


def test_an_exception_whose_str_fails_is_stored_as_failed(store_path):
    flow = Flow("hostile", store=store_path, executor="sync")
    flow.task(hostile, name="bad")
    run = flow.run()
    assert run.state == "failed"
    [row] = flow.store.tasks(run.id)
    assert (row["state"], row["error"]) == (
        "failed", "Unprintable: <Unprintable object: its __str__ raised RuntimeError>")
    assert flow.store.run(run.id)["state"] == "failed"


async def fetch(n=2):
    await asyncio.sleep(0)
    print("fetched in", nbflow.current_task().name)
    return n * 10


def test_an_async_task_runs_to_completion(store_path):
    flow = Flow("aio", store=store_path, executor="sync")
    flow.task(fetch)
    flow.task(lambda fetch: fetch + 1, name="use")
    run = flow.run()
    assert (run.result("fetch"), run.result("use")) == (20, 21)
    assert run.logs("fetch") == "fetched in fetch\n"


def test_an_async_task_runs_in_a_thread_that_already_runs_a_loop(store_path):
    # A notebook's main thread runs an event loop; the sync executor runs tasks there.
    flow = Flow("aio", store=store_path, executor="sync")
    flow.task(fetch)

    async def main():
        return flow.run()

    run = asyncio.run(main())
    assert run.result("fetch") == 20
    assert run.logs("fetch") == "fetched in fetch\n"


def test_an_async_task_that_raises_fails_with_its_error(store_path):
    async def broken():
        await asyncio.sleep(0)
        raise ValueError("async boom")

    flow = Flow("aio", store=store_path, executor="sync")
    flow.task(broken)
    run = flow.run()
    with pytest.raises(ValueError, match="async boom"):
        run.result("broken")
