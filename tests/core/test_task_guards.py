"""Nothing a task does crashes the engine: BaseExceptions, hostile exceptions, async
and generator functions, far-away deadlines (synchronous executor, virtual clock;
the same through a Flow and its store: tests/reliability/test_tasks_in_a_flow.py)."""

from __future__ import annotations

import asyncio
import math
import queue
import time

import pytest

import nbflow
from nbflow import Flow
from nbflow.core.clock import RealClock
from nbflow.core.events import DETAIL, TO
from nbflow.core.worker import execute


class Custom(BaseException):
    pass


def raises(exc: BaseException):
    def fn():
        raise exc
    return fn


@pytest.mark.parametrize("exc", [SystemExit(3), GeneratorExit(), asyncio.CancelledError(),
                                 Custom("mine")], ids=lambda e: type(e).__name__)
def test_a_base_exception_fails_its_task_and_the_run_goes_on(exc, spec, run, final_states):
    engine, rec = run([spec("bad", raises(exc), retries=2), spec("after", after=["bad"]),
                       spec("other")])
    assert final_states(engine) == {"bad": "failed", "after": "upstream_failed",
                                    "other": "succeeded"}
    assert engine.errors[0] is exc
    # Exception is what retry_on retries by default: a BaseException fails at once.
    assert [ev[TO] for ev in rec.log if ev[TO] in ("failed", "retrying")] == ["failed"]
    [failed] = [ev for ev in rec.log if ev[TO] == "failed"]
    assert failed[DETAIL]["error"].startswith(type(exc).__name__)


def test_a_keyboard_interrupt_in_a_task_on_the_engine_thread_interrupts_the_run(
        spec, run, final_states):
    # The sync executor runs tasks on the engine's thread, where Ctrl-C lands.
    with pytest.raises(KeyboardInterrupt):
        engine, _ = run([spec("a", raises(KeyboardInterrupt())), spec("b", after=["a"])])


def test_execute_reports_every_base_exception():
    for exc in (KeyboardInterrupt(), GeneratorExit(), Custom()):
        out = execute(raises(exc), {})
        assert not out.ok and out.error is exc and type(exc).__name__ in out.error_text


class Hostile(Exception):
    def __str__(self):
        raise RuntimeError("__str__ is broken")


class NotAString(Exception):
    def __str__(self):
        return 42


@pytest.mark.parametrize("exc, text", [
    (Hostile(), "Hostile: <Hostile object: its __str__ raised RuntimeError>"),
    (NotAString(), "NotAString: <NotAString object: its __str__ raised TypeError>"),
])
def test_an_exception_whose_str_fails_fails_its_task_not_the_engine(exc, text, spec, run,
                                                                    final_states):
    engine, rec = run([spec("bad", raises(exc)), spec("other")])
    assert final_states(engine) == {"bad": "failed", "other": "succeeded"}
    [failed] = [ev for ev in rec.log if ev[TO] == "failed"]
    assert failed[DETAIL]["error"] == text
    assert type(exc).__name__ in failed[DETAIL]["traceback"]


def test_a_skip_whose_str_fails_still_skips(spec, run, final_states):
    class BadSkip(nbflow.SkipTask):
        def __str__(self):
            raise ValueError

    engine, rec = run([spec("s", raises(BadSkip()))])
    assert final_states(engine) == {"s": "skipped"}


def test_a_generator_function_is_refused_at_declaration():
    def rows():
        yield 1

    async def arows():
        yield 1

    flow = Flow("gen")
    for fn in (rows, arows):
        with pytest.raises(TypeError, match=rf"^task '{fn.__name__}': '.*{fn.__name__}' is a "
                                            r"generator function \(it uses yield\), so calling "
                                            r"it runs none of its body\. Return a list "):
            flow.task(fn)
    assert len(flow) == 0


def test_the_real_clock_waits_for_a_far_deadline_without_overflowing():
    inbox = queue.SimpleQueue()
    inbox.put("message")
    clock = RealClock()
    assert clock.wait(inbox, time.time() + 1e20) == "message"
    inbox.put("again")
    assert clock.wait(inbox, math.inf) == "again"


class Refusing(type):
    def __instancecheck__(cls, obj):
        raise RuntimeError("no isinstance for you")


class Picky(Exception, metaclass=Refusing):
    pass


def test_a_retry_on_class_whose_isinstance_raises_does_not_stop_the_engine(spec, run,
                                                                           final_states):
    engine, rec = run([spec("t", raises(ValueError("x")), retries=3, retry_on=(Picky,)),
                       spec("other")])
    assert final_states(engine) == {"t": "failed", "other": "succeeded"}
    assert [ev[TO] for ev in rec.log if ev[TO] in ("failed", "retrying")] == ["failed"]
