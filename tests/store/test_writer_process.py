"""The writer process of a SQLite store: its life, and what happens when it dies."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading

import pytest
from processes import alive, wait_until

from nbflow import Flow
from nbflow.core.replay import COLUMNS, replay
from nbflow.store.writerproc import receive, send


def table(store, run_id) -> dict[str, list]:
    return {r["name"]: [r[c] for c in COLUMNS] for r in store.tasks(run_id)}


def test_a_sqlite_store_writes_from_a_child_process_that_ends_with_the_store(store_path):
    flow = Flow("child", store=store_path)
    flow.task(lambda: 1, name="one")
    assert flow.store.writer_pid is None   # nothing written yet, nothing started
    run = flow.run()
    pid = flow.store.writer_pid
    assert pid is not None and pid != os.getpid() and alive(pid)
    assert [r["state"] for r in flow.store.tasks(run.id)] == ["succeeded"]
    flow.store.close()
    assert not alive(pid)


def test_a_killed_writer_process_is_replaced_and_the_run_record_stays_whole(store_path):
    flow = Flow("killed", store=store_path)
    gate = threading.Event()
    flow.task(lambda: 1, name="first")
    flow.task(lambda first: gate.wait(30) and first + 1, name="second")
    flow.task(lambda second: second + 1, name="third")
    run = flow.run(background=True)
    # The writer process has committed the run's start; the transaction it
    # would have run next fails with it, and goes to the process after it.
    wait_until(lambda: table(flow.store, run.id).get("second", [None])[0] == "running")
    pid = flow.store.writer_pid
    os.kill(pid, signal.SIGKILL)
    wait_until(lambda: not alive(pid))
    gate.set()
    run.wait(30)
    assert run.state == "succeeded" and run.result("third") == 3
    assert flow.store.writer_pid not in (None, pid)
    events = flow.store.events(run.id)
    assert [e[1] for e in events] == list(range(len(events)))   # nothing lost or doubled
    assert table(flow.store, run.id) == replay(run.names, events)
    assert table(flow.store, run.id)["second"][2] is not None   # started, by the first process


def test_ctrl_c_in_the_terminal_leaves_the_writer_process_running(store_path):
    flow = Flow("sigint", store=store_path)
    flow.task(lambda: 1, name="one")
    flow.run()
    pid = flow.store.writer_pid
    os.kill(pid, signal.SIGINT)   # what a terminal sends to its whole process group
    run = flow.run()
    assert flow.store.writer_pid == pid and alive(pid)
    assert table(flow.store, run.id)["one"][0] == "succeeded"


def test_the_writer_process_ends_when_its_kernel_is_killed(store_path):
    script = textwrap.dedent(f"""
        import sys, time
        from nbflow import Flow
        flow = Flow("orphan", store={store_path!r})
        flow.task(lambda: 1, name="one")
        flow.run()
        print(flow.store.writer_pid, flush=True)
        time.sleep(60)
    """)
    kernel = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        pid = int(kernel.stdout.readline())
        assert alive(pid)
        kernel.kill()
        kernel.wait()
        wait_until(lambda: not alive(pid), timeout=10)
    finally:
        kernel.kill()


class Name(str):
    """A str subclass (numpy.str_ is one): marshal refuses it."""


@pytest.mark.parametrize("message", [
    [("events", "run", [("run", 0, "a", 1, "pending", "ready", 1.5, None),
                        ("run", 1, "a", 1, "ready", "running", 2.5, {"worker": "w", "n": [1]})])],
    [("tasks", "run", [(Name("a"), 0, 0, "[]", "function")])],
    OSError("disk full"),
    None,
], ids=["events", "str subclass", "exception", "none"])
def test_what_crosses_the_pipe_comes_back_equal(message):
    r, w = os.pipe()
    with os.fdopen(w, "wb") as out:
        send(out, message)
    with os.fdopen(r, "rb") as inp:
        got = receive(inp)
        with pytest.raises(EOFError):
            receive(inp)
    if isinstance(message, Exception):
        assert type(got) is OSError and got.args == message.args
    else:
        assert got == message
