"""The engine on the synchronous executor and a virtual clock.

Only ``test_transitions_happen_on_the_engine_thread`` starts threads (the
default thread pool), and it waits on nothing but ``Engine.run`` returning.
"""

from __future__ import annotations

import traceback

import pytest

from nbflow import Flow
from nbflow.core.clock import VirtualClock
from nbflow.core.engine import TaskTimeout
from nbflow.core.events import AT, ATTEMPT, DETAIL, TASK, TO
from nbflow.core.worker import Outcome, capturing
from nbflow.executors import make_executor
from nbflow.executors.threads import ThreadExecutor


def test_results_flow_to_dependents(spec, run, final_states):
    engine, rec = run([
        spec("load", lambda: [3, 1, 2]),
        spec("clean", lambda load: sorted(load), inputs=["load"]),
        spec("report", lambda clean, load: f"{clean} from {load}", inputs=["clean", "load"]),
    ])
    assert engine.results == [[3, 1, 2], [1, 2, 3], "[1, 2, 3] from [3, 1, 2]"]
    assert final_states(engine) == dict.fromkeys(["load", "clean", "report"], "succeeded")
    assert rec.of("clean") == [("pending", "ready"), ("ready", "running"),
                               ("running", "succeeded")]
    assert rec.finished == [None]


def test_eager_starts_a_task_as_soon_as_its_dependencies_allow(spec, run):
    # b outranks c and d, so in eager mode it starts as soon as a is done (ties
    # break by ready order, which would put it after c and d)
    specs = [spec("a"), spec("b", after=["a"], priority=1), spec("c"), spec("d")]
    assert run(specs)[1].starts() == ["a", "b", "c", "d"]   # eager is the default
    # levels: b (level 1) waits behind the barrier until c and d (level 0) are done
    assert run(specs, mode="levels")[1].starts() == ["a", "c", "d", "b"]


def test_priority_then_declaration_order_and_fifo(spec, run):
    specs = [spec("low"), spec("high", priority=5), spec("mid", priority=1), spec("low2")]
    assert run(specs)[1].starts() == ["high", "mid", "low", "low2"]
    assert run(specs, policy="fifo")[1].starts() == ["low", "high", "mid", "low2"]


def test_a_failure_fails_its_descendants_and_other_branches_go_on(spec, run, final_states):
    def boom():
        raise ValueError("bad row")

    engine, rec = run([
        spec("a", boom), spec("b", after=["a"]), spec("c", after=["b"]),
        spec("d"), spec("e", after=["d"]), spec("f", after=["a", "d"]),
    ])
    assert final_states(engine) == {
        "a": "failed", "b": "upstream_failed", "c": "upstream_failed",
        "d": "succeeded", "e": "succeeded", "f": "upstream_failed"}
    assert rec.starts() == ["a", "d", "e"]
    assert rec.of("c") == [("pending", "upstream_failed")]


class Boom(Exception):
    pass


def user_code(n):
    raise Boom(f"bad input {n}")


def test_the_users_exception_and_traceback_are_kept(spec, run):
    engine, rec = run([spec("parse", lambda: user_code(42))])
    err = engine.errors[0]
    assert type(err) is Boom and err.args == ("bad input 42",)
    frames = traceback.extract_tb(err.__traceback__)
    # engine and worker frames are trimmed: the first frame is the task's own code
    assert frames[0].name == "<lambda>" and frames[-1].name == "user_code"
    assert not any("/nbflow/" in f.filename for f in frames)
    failed = [ev for ev in rec.log if ev[TO] == "failed"][0]
    detail = failed[DETAIL]
    assert detail["error"] == "Boom: bad input 42"
    assert 'raise Boom(f"bad input {n}")' in detail["traceback"]
    assert "nbflow/core" not in detail["traceback"]


def flaky(failures: int):
    """A task function that fails its first ``failures`` calls."""
    calls = []

    def fn():
        calls.append(1)
        if len(calls) <= failures:
            raise RuntimeError(f"attempt {len(calls)} failed")
        return len(calls)
    return fn


def test_retries_with_back_off_on_the_virtual_clock(spec, run):
    clock = VirtualClock(start=100.0)
    engine, rec = run([spec("fetch", flaky(2), retries=2, retry_delay=5.0)], clock=clock)
    assert engine.state[0].value == "succeeded"
    assert engine.attempt[0] == 3 and engine.results[0] == 3
    assert rec.of("fetch") == [
        ("pending", "ready"), ("ready", "running"), ("running", "retrying"),
        ("retrying", "ready"), ("ready", "running"), ("running", "retrying"),
        ("retrying", "ready"), ("ready", "running"), ("running", "succeeded")]
    assert [ev[AT] for ev in rec.log if ev[TO] == "running"] == [100.0, 105.0, 110.0]
    assert [ev[ATTEMPT] for ev in rec.log if ev[TO] == "running"] == [1, 2, 3]
    assert clock.now() == 110.0


def test_retries_exhausted(spec, run):
    engine, rec = run([spec("fetch", flaky(5), retries=1), spec("use", after=["fetch"])])
    assert [s.value for s in engine.state] == ["failed", "upstream_failed"]
    assert engine.attempt[0] == 2
    assert str(engine.errors[0]) == "attempt 2 failed"
    retrying = [ev for ev in rec.log if ev[TO] == "retrying"][0]
    assert retrying[DETAIL]["error"] == "RuntimeError: attempt 1 failed"


class Hanging:
    """An executor whose attempts never finish on their own; cancelling one makes
    it report a late success, as a worker that finishes after a timeout would."""

    workers = 2

    def start(self, report):
        self.report = report
        self.submitted = []

    def submit(self, token, fn, kwargs, ctx):
        self.submitted.append(token)

    def cancel(self, token):
        self.report((token, Outcome(True, "late", None, None, 0.0, 0.0, "", "", "w")))

    def shutdown(self):
        pass


def test_timeout_fails_the_attempt_and_a_late_result_is_ignored(spec, run):
    clock = VirtualClock()
    ex = Hanging()
    engine, rec = run([spec("slow", timeout=2.0, retries=1)], executor=ex, clock=clock)
    assert ex.submitted == [(0, 1), (0, 2)]
    assert engine.state[0].value == "failed" and engine.results == [None]
    assert isinstance(engine.errors[0], TaskTimeout)
    assert str(engine.errors[0]) == "task 'slow' exceeded its timeout of 2s"
    assert [ev[DETAIL]["error"] for ev in rec.log if ev[TO] in ("retrying", "failed")] == \
        ["TaskTimeout: task 'slow' exceeded its timeout of 2s"] * 2
    assert clock.now() == 4.0


def test_cancel_from_a_task_stops_what_has_not_started(spec, engine_for, final_states):
    def first():
        engine.cancel("enough")
        return 1

    engine, rec = engine_for([spec("a", first), spec("b", after=["a"]),
                              spec("c", after=["b"]), spec("d")])
    engine.run()
    # a was already running: it finishes; nothing else starts
    assert final_states(engine) == {"a": "succeeded", "b": "cancelled", "c": "cancelled",
                                    "d": "cancelled"}
    assert rec.starts() == ["a"]
    assert rec.finished == ["enough"] and engine.cancelled == "enough"


def test_every_cancelled_event_carries_the_reason(spec, engine_for):
    def first():
        engine.cancel("enough")

    engine, rec = engine_for([spec("a", first), spec("b", after=["a"]), spec("c", after=["b"])])
    engine.run()
    assert [(ev[TASK], ev[DETAIL]) for ev in rec.log if ev[TO] == "cancelled"] == \
        [("b", {"reason": "enough"}), ("c", {"reason": "enough"})]


def test_an_interrupt_cancels_the_run_and_propagates(spec, engine_for, final_states):
    def interrupted():
        raise KeyboardInterrupt

    engine, rec = engine_for([spec("a", interrupted), spec("b", after=["a"]), spec("c")])
    with pytest.raises(KeyboardInterrupt):
        engine.run()
    assert final_states(engine) == dict.fromkeys("abc", "cancelled")
    assert rec.finished == ["interrupted"]


def test_a_sink_that_raises_is_dropped_and_the_run_goes_on(spec, engine_for):
    class Broken:
        def events(self, batch):
            raise OSError("widget gone")

        def logs(self, batch):
            pass

    engine, rec = engine_for([spec("a"), spec("b", after=["a"])])
    engine.sinks.insert(0, Broken())
    with pytest.warns(RuntimeWarning, match=r"nbflow: dropped sink .* after it raised "
                                            r"OSError\('widget gone'\)"):
        engine.run()
    assert len(engine.sinks) == 1 and rec.starts() == ["a", "b"]


def test_a_sink_added_while_running_gets_a_snapshot_then_the_rest(spec, engine_for):
    late = type("Late", (), {})()
    late.snapshot_rows, late.seen, late.ended = None, [], []
    late.snapshot = lambda rows: setattr(late, "snapshot_rows", rows)
    late.events = late.seen.extend
    late.logs = lambda batch: None
    late.finish = late.ended.append

    def a():
        engine.add_sink(late)
        return 1

    engine, rec = engine_for([spec("a", a), spec("b", after=["a"])])
    engine.run()
    assert late.snapshot_rows == [("a", "running", 1), ("b", "pending", 0)]
    assert [(ev[TASK], ev[TO]) for ev in late.seen] == [
        ("a", "succeeded"), ("b", "ready"), ("b", "running"), ("b", "succeeded")]
    assert late.ended == [None]
    # after the run: the final snapshot and finish at once
    after = type("After", (), {})()
    after.snapshot = lambda rows: setattr(after, "rows", rows)
    after.finish = lambda reason: setattr(after, "reason", reason)
    engine.add_sink(after)
    assert after.rows == [("a", "succeeded", 1), ("b", "succeeded", 1)] and after.reason is None


def test_a_sink_added_before_the_run_starts_gets_every_event(spec, engine_for):
    early = type("Early", (), {})()
    early.seen = []
    early.snapshot = lambda rows: setattr(early, "rows", rows)
    early.events = early.seen.extend
    early.logs = lambda batch: None
    engine, rec = engine_for([spec("a"), spec("b", after=["a"])])
    engine.add_sink(early)
    engine.run()
    # a dashboard shown before flow.run: nothing to read from the store first
    assert early.rows == [("a", "pending", 0), ("b", "pending", 0)]
    assert early.seen == rec.log and rec.log[0][TO] == "ready"


def test_an_empty_flow_ends_at_once(run):
    engine, rec = run([])
    assert rec.log == [] and rec.finished == [None]


def test_task_output_is_captured_per_task(spec, run, capsys):
    def talk():
        print("to stdout")
        import sys
        print("to stderr", file=sys.stderr)

    with capturing():
        print("the cell's own print")
        _, rec = run([spec("talk", talk)])
    assert rec.output == [("talk", 1, "to stdout\n", "to stderr\n", ())]
    assert capsys.readouterr() == ("the cell's own print\n", "")


def test_bad_mode_and_policy(spec, engine_for):
    with pytest.raises(ValueError, match=r"^Engine\(\): mode must be one of 'eager', 'levels', "
                                         r"got 'level'\.$"):
        engine_for([spec("a")], mode="level")
    with pytest.raises(ValueError, match=r"^Engine\(\): policy must be one of 'aging', "
                                         r"'critical_path', 'edf', 'fifo', 'priority', 'sjf', "
                                         r"or a policy object"):
        engine_for([spec("a")], policy="lifo")


def test_the_virtual_clock_refuses_to_wait_for_nothing():
    import queue
    with pytest.raises(RuntimeError, match="waiting for a message that nothing will send"):
        VirtualClock().wait(queue.SimpleQueue(), None)


def test_the_thread_pool_is_the_default_executor():
    assert Flow("f").executor == "threads"
    assert isinstance(make_executor("threads", 2), ThreadExecutor)
    with pytest.raises(ValueError,
                       match=r"^make_executor\(\): executor must be one of 'threads', "
                             r"'processes', 'sync', 'dask', or an executor object .*, got 'thread'\.$"):
        make_executor("thread")
