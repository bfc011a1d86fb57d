"""The executor contract: what the engine asks of whatever runs its attempts.

An executor only executes.  It holds no scheduling state: the engine decides
what runs, when an attempt has run too long, whether a failure is retried.
A new executor is one class that meets :class:`Executor`; the contract suite
in ``tests/executors/test_contract.py`` checks it by inheritance.

It lives in ``core`` (standard library only), not in ``nbflow.executors``,
because the engine names it and ``core`` imports nothing above itself.

The rules the engine relies on
------------------------------
* **Exactly one outcome per submit, even after cancel.**  Every
  ``submit(token, ...)`` ends in exactly one ``report((token, outcome))``: the
  task's own outcome, or a failed one whose error is ``TaskCancelled`` (a
  cancelled attempt) or says why the worker could not run it.  The engine
  counts an abandoned attempt's worker as busy until that outcome arrives, so
  an executor that drops one loses a worker for the rest of the run, and one
  that reports twice ends an attempt that is not running.
* ``report`` may be called from any thread (a worker, a callback thread of a
  cluster client); it only puts into the engine's inbox and never blocks.
* ``cancel(token)`` is a request, from the engine's thread, and must return at
  once.  It may stop the attempt (kill its process) or do nothing (a thread
  cannot be stopped: the attempt's ``ctx.cancelled`` is already set, which a
  cooperative task sees through ``check_cancelled()``).  Either way the one
  outcome above still comes.  Cancelling a token that already reported is a
  no-op.
* ``workers`` is read on every dispatch: the engine never has more than
  ``workers`` attempts running (abandoned ones included) plus ``lookahead``
  queued.  An executor whose capacity changes (an adaptive cluster) may change
  it between turns.
* ``start`` is called once per run before the first ``submit``; ``shutdown``
  once when the run ends, however it ends.  Attempts the run abandoned may
  still be running then: shutdown stops them or leaves them to end on their
  own, and their outcomes are no longer read.  An executor may be started
  again for another run after ``shutdown``.

What ``ctx`` promises
---------------------
``ctx`` is the attempt's :class:`nbflow.core.worker.TaskContext`, passed on to
:func:`nbflow.core.worker.execute`.  In the engine's process it is the very
object the engine holds, so its ``cancelled`` flag, set on the engine's thread
at a timeout or a cancel, is seen by the task at once.  An executor that runs
attempts elsewhere (another process, a cluster) ships a copy: ``name``,
``attempt``, ``run_id`` and ``key`` arrive, ``cancelled`` starts False and is
not updated, so cancelling there means stopping the worker, or nothing.

Optional members (read with the helpers below, which give the defaults)
-----------------------------------------------------------------------
``lookahead``
    How many ready attempts the engine may queue here while every worker is
    busy (default 0), read once the executor has started.  A worker should
    take the oldest queued attempt right after reporting an outcome: that is
    when the engine counts it as started (and starts its timeout).  A worker
    that takes another one (a cluster's scheduler decides) is tolerated: an
    outcome for an attempt still counted as queued starts it then.
``replaces_abandoned``
    True when the executor gives the run another worker for an attempt the
    engine abandoned (a timed-out thread that cannot be stopped), so that
    attempt no longer counts against ``workers`` (default False).
``shares_memory``
    Whether tasks run in the engine's own interpreter (default True).  A
    ``%%task`` cell runs in the notebook's namespace and needs it.
``prepare(specs)``
    Called by ``Flow.run`` before anything is recorded: raise (naming the task
    and the fix) for a flow this executor cannot run, so it fails before the
    first submit rather than in the middle of a run.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol

from .worker import Outcome, TaskContext

Token = tuple[int, int]   # (task index, attempt number)
#: How an executor posts ``(token, outcome)`` to the engine's inbox.
Report = Callable[[tuple[Token, Outcome]], None]
#: One attempt as an executor queues it: what ``submit`` was given.
Job = tuple[Token, Callable[..., Any], dict[str, Any], TaskContext | None]


class Executor(Protocol):
    """Runs attempts and reports how each ended; knows nothing of scheduling."""

    workers: int

    def start(self, report: Report) -> None:
        """Get ready for a run; ``report((token, outcome))`` posts to the engine's inbox."""

    def submit(self, token: Token, fn: Callable[..., Any], kwargs: dict[str, Any],
               ctx: TaskContext) -> None:
        """Run ``execute(fn, kwargs, ctx)`` somewhere; return without waiting for it."""

    def cancel(self, token: Token) -> None:
        """Ask that the attempt ``token`` stop, if it can; returns at once."""

    def shutdown(self) -> None:
        """Release what :meth:`start` and the attempts took."""


def lookahead(executor: Any) -> int:
    """How many attempts may wait in ``executor`` behind its busy workers."""
    return getattr(executor, "lookahead", 0)


def shares_memory(executor: Any) -> bool:
    """Whether ``executor`` runs tasks in the engine's interpreter."""
    return getattr(executor, "shares_memory", True)


def check_runnable(executor: Any, specs: Sequence[Any]) -> None:
    """Refuse, before anything runs, a flow that ``executor`` cannot run.

    Raises
    ------
    ValueError
        a ``%%task`` cell with an executor that does not share memory, or
        whatever the executor's own ``prepare(specs)`` raises.
    """
    prepare = getattr(executor, "prepare", None)
    if prepare is not None:
        prepare(specs)
    elif not shares_memory(executor):
        cell = next((s.name for s in specs if s.kind == "cell"), None)
        if cell is not None:
            raise ValueError(
                f"task {cell!r} is a %%task cell: it runs in the notebook's namespace, "
                f"which a worker process does not share. Run this flow with "
                f"executor='threads', or declare {cell!r} as a function with @flow.task.")
