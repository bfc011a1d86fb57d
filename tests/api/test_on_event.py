"""``run.on_event(callback)``: every event once, in order, throttled, on its own thread."""

from __future__ import annotations

import itertools
import threading
import time

import pytest

import nbflow


def gated(store_path, n: int):
    flow = nbflow.Flow("listened", store=store_path, workers=4)
    gate = threading.Event()
    flow.task(lambda: gate.wait(30), name="first")
    for k in range(n):
        flow.task(lambda: None, name=f"t{k}", after=["first"])
    return flow, gate


def test_every_event_arrives_once_in_order_in_few_calls_on_the_listener_thread(store_path):
    flow, gate = gated(store_path, 2000)
    calls: list[tuple[float, str, list[dict]]] = []
    run = flow.run(background=True)
    listener = run.on_event(
        lambda events: calls.append((time.monotonic(), threading.current_thread().name, events)))
    gate.set()
    run.wait(60)
    assert listener.join(30) and listener.done
    events = [e for _at, _thread, batch in calls for e in batch]
    stored = run.store.events(run.id)
    seqs = [e["seq"] for e in events]
    assert seqs == sorted(set(seqs)) and seqs[-1] == stored[-1][1]
    # From the moment of subscription on: the tail of the stored log, exactly.
    assert seqs == [e[1] for e in stored[-len(seqs):]]
    assert len(seqs) > 3 * 2000 - 10
    assert {thread for _at, thread, _batch in calls} == {"nbflow-listener"}
    gaps = [b - a for (a, _t, _e), (b, _u, _f) in itertools.pairwise(calls)]
    assert all(gap >= 0.09 for gap in gaps), min(gaps)
    last = events[-1]
    assert set(last) == {"run", "seq", "task", "attempt", "from", "to", "at", "detail"}
    assert last["run"] == run.id and last["to"] in ("succeeded", "failed")
    done = [e for e in events if e["task"] == "t7" and e["to"] == "succeeded"]
    assert len(done) == 1 and done[0]["detail"]["worker"].startswith("nbflow-worker-")


def test_a_failing_callback_warns_once_and_the_run_goes_on(store_path):
    flow, gate = gated(store_path, 50)
    run = flow.run(background=True)
    seen = []

    def broken(events):
        seen.append(len(events))
        raise KeyError("oops")

    with pytest.warns(RuntimeWarning, match=r"nbflow: the on_event callback .* raised "
                                            r"KeyError\('oops'\); it keeps being called"):
        listener = run.on_event(broken, interval=0.01)
        gate.set()
        assert run.wait(30).state == "succeeded"
        assert listener.join(30)
    assert sum(seen) >= 100


def test_on_event_needs_a_function(store_path):
    flow, gate = gated(store_path, 1)
    gate.set()
    run = flow.run()
    with pytest.raises(TypeError, match=r"on_event needs a function that takes a list of "
                                        r"events, got str 'print'"):
        run.on_event("print")
