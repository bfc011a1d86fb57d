"""Attempts queued behind busy workers (``ThreadExecutor(lookahead=...)``).

While every worker is busy the engine queues up to ``lookahead`` ready attempts
in the pool, so a worker that finishes starts the next at once.  A queued
attempt is still ``ready``: it becomes ``running`` (and its timeout starts)
when a worker takes it, and one cancelled while queued never runs.  These run
real threads on the real clock.  What did not happen is read once the engine
waits with nothing left to do (:class:`WatchedClock`), never after a sleep.
"""

from __future__ import annotations

import threading
import time

import pytest
from flowgen import check_run, failing, plans
from hypothesis import given, settings
from hypothesis import strategies as st

from nbflow.core.clock import RealClock
from nbflow.core.events import AT, TASK, TO
from nbflow.executors.threads import ThreadExecutor

WAIT = 10.0   # seconds a test waits for something that should happen at once


def blocker():
    """A task function that runs until ``release`` is set, and the events around it."""
    started, release = threading.Event(), threading.Event()

    def fn(**_):
        started.set()
        if not release.wait(WAIT):
            raise TimeoutError("the test never released the blocking task")
    return fn, started, release


class WatchedClock(RealClock):
    """The real clock, counting the engine's waits begun with an empty inbox: at
    such a wait every message so far is handled and every attempt the engine
    could hand out is handed out, so what has not happened by then will not
    happen until a new message (an outcome, a cancel) comes."""

    def __init__(self):
        self._turn = threading.Condition()
        self.idle = 0   # such waits so far

    def wait(self, inbox, deadline):
        if inbox.empty():
            with self._turn:
                self.idle += 1
                self._turn.notify_all()
        return super().wait(inbox, deadline)

    def until_idle(self, after: int = 0) -> int:
        """Wait for the engine's idle wait number ``after + 1`` (or later); its number."""
        with self._turn:
            assert self._turn.wait_for(lambda: self.idle > after, WAIT), \
                "the engine never came to wait with nothing to do"
            return self.idle


def run_in_thread(engine) -> threading.Thread:
    t = threading.Thread(target=engine.run, name="engine")
    t.start()
    return t


def test_queued_attempts_stay_ready_until_a_worker_takes_them(spec, engine_for, final_states):
    fn, started, release = blocker()
    calls: list[str] = []
    specs = [spec("a", fn), spec("b", lambda: calls.append("b")),
             spec("c", lambda: calls.append("c"))]
    executor, clock = ThreadExecutor(1, lookahead=2), WatchedClock()
    engine, rec = engine_for(specs, executor=executor, clock=clock)
    t = run_in_thread(engine)
    assert started.wait(WAIT)
    clock.until_idle()
    assert executor._jobs.qsize() == 2   # b and c wait in the pool's queue...
    assert rec.starts() == ["a"] and calls == []   # ...still ready, not running
    release.set()
    t.join(WAIT)
    assert final_states(engine) == {"a": "succeeded", "b": "succeeded", "c": "succeeded"}
    assert rec.starts() == ["a", "b", "c"] and calls == ["b", "c"]
    # one worker: each starts after the one before it ended
    at = {(ev[TASK], ev[TO]): ev[AT] for ev in rec.log}
    assert at["a", "succeeded"] <= at["b", "running"] <= at["b", "succeeded"] \
        <= at["c", "running"]


def test_without_lookahead_nothing_waits_in_the_queue(spec, engine_for, final_states):
    fn, started, release = blocker()
    executor, clock = ThreadExecutor(1, lookahead=0), WatchedClock()
    engine, rec = engine_for([spec("a", fn), spec("b")], executor=executor, clock=clock)
    t = run_in_thread(engine)
    assert started.wait(WAIT)
    clock.until_idle()
    assert executor._jobs.qsize() == 0 and rec.starts() == ["a"]
    release.set()
    t.join(WAIT)
    assert rec.starts() == ["a", "b"]


def test_an_attempt_cancelled_while_queued_never_runs(spec, engine_for, final_states):
    fn, started, release = blocker()
    calls: list[str] = []
    specs = [spec("a", fn), spec("b", lambda: calls.append("b")),
             spec("c", lambda: calls.append("c")), spec("d", after=["b"])]
    executor, clock = ThreadExecutor(1, lookahead=2), WatchedClock()
    engine, rec = engine_for(specs, executor=executor, clock=clock)
    t = run_in_thread(engine)
    assert started.wait(WAIT)
    turn = clock.until_idle()
    assert executor._jobs.qsize() == 2   # b and c queued behind a
    engine.cancel("stop")
    clock.until_idle(after=turn)   # the cancel is handled before a ends
    release.set()
    t.join(WAIT)
    assert not t.is_alive()
    assert calls == []
    assert final_states(engine) == {"a": "succeeded", "b": "cancelled", "c": "cancelled",
                              "d": "cancelled"}
    assert rec.of("b") == [("pending", "ready"), ("ready", "cancelled")]
    assert rec.starts() == ["a"]


def test_a_timeout_counts_from_the_start_not_from_the_queue(spec, engine_for, final_states):
    # b waits 0.3 s behind a in the queue; its 0.2 s timeout must not run meanwhile
    # (b itself takes no time: only its wait in the queue could exceed the timeout).
    specs = [spec("a", lambda: time.sleep(0.3)), spec("b", lambda: None, timeout=0.2)]
    engine, rec = engine_for(specs, executor=ThreadExecutor(1, lookahead=1),
                              clock=RealClock())
    engine.run()
    assert final_states(engine) == {"a": "succeeded", "b": "succeeded"}


def test_queued_attempts_of_a_fail_fast_run_are_cancelled_and_the_workers_go_on(spec, engine_for, final_states):
    # three workers, three queued: the failure cancels the queued ones; later
    # outcomes still free their workers (the run must end, not wait forever).
    specs = [spec("bad", failing(1))] + \
            [spec(f"t{k}", lambda: time.sleep(0.02)) for k in range(8)]
    engine, rec = engine_for(specs, executor=ThreadExecutor(3, lookahead=3),
                              clock=RealClock(), fail_fast=True)
    t = run_in_thread(engine)
    t.join(WAIT)
    assert not t.is_alive()
    final = final_states(engine)
    assert final["bad"] == "failed"
    assert all(s in ("succeeded", "cancelled") for s in final.values() if s != "failed")


def test_a_bad_lookahead_is_refused():
    with pytest.raises(ValueError, match="lookahead must be 0 or more, got -1"):
        ThreadExecutor(2, lookahead=-1)



@settings(max_examples=40, deadline=None)
@given(plans(), st.integers(1, 3), st.integers(0, 4))
def test_random_runs_with_queued_attempts(spec, engine_for, final_states, plan, workers,
                                          lookahead):
    """The engine's invariants (``flowgen.check_run``) hold with real threads and
    any lookahead."""
    order, deps = plan.order, plan.deps
    specs = [spec(n, failing(plan.failures[n]), after=deps[n], retries=plan.retries[n],
                       retry_delay=0.0) for n in order]
    engine, rec = engine_for(specs, executor=ThreadExecutor(workers, lookahead=lookahead),
                              clock=RealClock())
    engine.run()
    check_run(plan, rec.log, workers)


class NewestFirst:
    """One worker thread that takes the newest queued attempt first, as a cluster's
    scheduler may: the engine must not lose an outcome of an attempt it still
    counts as queued."""

    workers, lookahead = 1, 3

    def start(self, report):
        self._report, self._jobs, self._ready = report, [], threading.Condition()
        self._thread = threading.Thread(target=self._work, name="newest-first", daemon=True)
        self._thread.start()

    def _work(self):
        from nbflow.core.worker import execute
        # The first job waits until the engine has handed out all it may (one
        # running, lookahead queued): the newest is then one it counts as queued.
        with self._ready:
            self._ready.wait_for(lambda: len(self._jobs) > self.lookahead)
        while True:
            with self._ready:
                self._ready.wait_for(lambda: self._jobs)
                job = self._jobs.pop()
            if job is None:
                return
            token, fn, kwargs, ctx = job
            self._report((token, execute(fn, kwargs, ctx)))

    def submit(self, token, fn, kwargs, ctx=None):
        with self._ready:
            self._jobs.append((token, fn, kwargs, ctx))
            self._ready.notify()

    def cancel(self, token):
        pass

    def shutdown(self):
        with self._ready:
            self._jobs.append(None)
            self._ready.notify()
        self._thread.join(WAIT)


def test_an_outcome_of_an_attempt_still_queued_counts(spec, engine_for, final_states):
    specs = [spec(f"t{i}") for i in range(8)]
    engine, rec = engine_for(specs, executor=NewestFirst(), clock=RealClock())
    t = run_in_thread(engine)
    t.join(WAIT)
    assert not t.is_alive(), "the engine waited for an outcome it had thrown away"
    assert set(final_states(engine).values()) == {"succeeded"}
    for name in engine.graph.names:   # each started before it ended
        tos = [ev[TO] for ev in rec.log if ev[TASK] == name]
        assert tos == ["ready", "running", "succeeded"]


def test_starts_follow_the_policy_despite_the_pools_lookahead(spec, engine_for):
    # While "a" holds the only worker, b and c wait ready.  When a ends, d (after
    # a) is ready too and is the shortest: sjf must start it before c and b.  Had
    # b and c been queued in the pool behind a (its lookahead), they would go first.
    started, release = threading.Event(), threading.Event()

    def hold():
        started.set()
        assert release.wait(WAIT)

    specs = [spec("a", hold, expected=0.0), spec("b", expected=5.0), spec("c", expected=1.0),
             spec("d", after=["a"], expected=0.1)]
    executor, clock = ThreadExecutor(1, lookahead=2), WatchedClock()
    engine, rec = engine_for(specs, executor=executor, clock=clock, policy="sjf")
    t = run_in_thread(engine)
    assert started.wait(WAIT)
    clock.until_idle()
    assert executor._jobs.qsize() == 0   # nothing queued ahead: d may still outrank b, c
    release.set()
    t.join(WAIT)
    assert rec.starts() == ["a", "d", "c", "b"]
    # where nothing can outrank the queued tasks (fifo), the lookahead still queues
    started.clear()
    release.clear()
    executor, clock = ThreadExecutor(1, lookahead=2), WatchedClock()
    engine, rec = engine_for(specs, executor=executor, clock=clock, policy="fifo")
    t = run_in_thread(engine)
    assert started.wait(WAIT)
    clock.until_idle()
    assert executor._jobs.qsize() == 2
    release.set()
    t.join(WAIT)
    assert rec.starts() == ["a", "b", "c", "d"]
