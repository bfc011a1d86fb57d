"""The task state machine, written down once as a table.

A task starts ``pending`` and waits for its dependencies.  When they are done and
the trigger rule lets it run it becomes ``ready`` (queued for a worker), then
``running``.  A run of the task is an *attempt*; it ends ``succeeded`` or, on an
error, ``retrying`` (a timer will make it ``ready`` again) while it has retries
left and ``failed`` after its last one.  ``upstream_failed`` and ``skipped`` are
decided instead of running it (a task may also skip itself while running);
``cancelled`` is what a cancelled run leaves.  When a failed or cancelled run
compensates, a succeeded task with a compensation goes ``compensating`` and
ends ``compensated`` (or ``failed`` if undoing it failed).

Every change of state in the engine goes through :func:`transition`; nothing
assigns a state directly.  A guarded entry (``Guarded``) picks its target from a
fact the caller passes, so the decision stays in this table too.
"""

from __future__ import annotations

import enum
import json
import sys
from typing import NamedTuple

from ..errors import IllegalTransition


class State(str, enum.Enum):
    """Lifecycle state of one task in one run (strings go through JSON and SQL unchanged)."""

    PENDING = "pending"
    READY = "ready"
    RUNNING = "running"
    RETRYING = "retrying"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    SKIPPED = "skipped"
    UPSTREAM_FAILED = "upstream_failed"
    CANCELLED = "cancelled"
    COMPENSATING = "compensating"
    COMPENSATED = "compensated"

    def __str__(self) -> str:
        return self.value


class Trigger(str, enum.Enum):
    """What happened to a task; the table maps (state, trigger) to the next state."""

    DEPS_MET = "deps_met"          # all dependencies done and the trigger rule says run
    START = "start"                # handed to a worker
    SUCCEED = "succeed"
    FAIL = "fail"                  # guard: retries_left
    RETRY = "retry"                # the back-off timer fired
    SKIP = "skip"                  # the trigger rule or a condition says do not run
    UPSTREAM_FAIL = "upstream_fail"
    CANCEL = "cancel"
    RESTORE = "restore"            # result restored from a cache or an earlier run
    COMPENSATE = "compensate"      # undo a success (saga)
    MISS_DEADLINE = "miss_deadline"  # its deadline passed before it ended: noted, no change

    def __str__(self) -> str:
        return self.value


class Guarded(NamedTuple):
    """A table entry whose target depends on a boolean fact named ``guard``."""

    guard: str
    if_true: State
    if_false: State


S, T = State, Trigger

TERMINAL = frozenset({S.SUCCEEDED, S.FAILED, S.SKIPPED, S.UPSTREAM_FAILED, S.CANCELLED,
                      S.COMPENSATED})

# How each state looks in every view: (fill, ink), the ink being the text colour that
# reads on the fill.  Based on Okabe and Ito's palette, whose colours stay apart for the
# common colour-vision deficiencies; greys only for "nothing happened yet" (light) and
# "cancelled" (dark), so no two states are two similar greys or two similar oranges, and
# every fill stands out on a light and on a dark background.  The dashboard's front end
# gets this table from the kernel and spells no colour of its own.
APPEARANCE: dict[State, tuple[str, str]] = {
    S.PENDING: ("#d4d4d4", "#111111"),
    S.READY: ("#56b4e9", "#111111"),
    S.RUNNING: ("#0072b2", "#ffffff"),
    S.RETRYING: ("#f0e442", "#111111"),
    S.SUCCEEDED: ("#009e73", "#ffffff"),
    S.FAILED: ("#d55e00", "#ffffff"),
    S.SKIPPED: ("#cc79a7", "#111111"),
    S.UPSTREAM_FAILED: ("#e69f00", "#111111"),
    S.CANCELLED: ("#5f5f5f", "#ffffff"),
    S.COMPENSATING: ("#9900ee", "#ffffff"),
    S.COMPENSATED: ("#773311", "#ffffff"),
}

TABLE: dict[tuple[State, Trigger], State | Guarded] = {
    (S.PENDING, T.DEPS_MET): S.READY,
    (S.PENDING, T.SKIP): S.SKIPPED,
    (S.PENDING, T.UPSTREAM_FAIL): S.UPSTREAM_FAILED,
    (S.PENDING, T.CANCEL): S.CANCELLED,
    (S.PENDING, T.RESTORE): S.SUCCEEDED,
    (S.READY, T.START): S.RUNNING,
    (S.READY, T.SKIP): S.SKIPPED,
    (S.READY, T.CANCEL): S.CANCELLED,
    (S.READY, T.RESTORE): S.SUCCEEDED,
    (S.RUNNING, T.SUCCEED): S.SUCCEEDED,
    (S.RUNNING, T.FAIL): Guarded("retries_left", S.RETRYING, S.FAILED),
    (S.RUNNING, T.SKIP): S.SKIPPED,
    (S.RUNNING, T.CANCEL): S.CANCELLED,
    (S.RETRYING, T.RETRY): S.READY,
    (S.RETRYING, T.CANCEL): S.CANCELLED,
    (S.SUCCEEDED, T.COMPENSATE): S.COMPENSATING,
    (S.COMPENSATING, T.SUCCEED): S.COMPENSATED,
    (S.COMPENSATING, T.FAIL): S.FAILED,
    # A missed deadline is an event (with the lateness), not a state of its own.
    (S.PENDING, T.MISS_DEADLINE): S.PENDING,
    (S.READY, T.MISS_DEADLINE): S.READY,
    (S.RUNNING, T.MISS_DEADLINE): S.RUNNING,
    (S.RETRYING, T.MISS_DEADLINE): S.RETRYING,
}


#: One colour per state, the same in every view (HTML, DOT, widgets, the lab extension).
COLORS: dict[str, str] = {state.value: fill for state, (fill, _ink) in APPEARANCE.items()}


def vocabulary() -> dict[str, list[str] | dict[str, str]]:
    """The states as the front ends read them (``labextension/src/states.json`` is this,
    written by ``python -m nbflow.core.states``; a test keeps the two equal)."""
    return {"states": [s.value for s in State],
            "terminal": [s.value for s in State if s in TERMINAL],
            "colors": {s.value: COLORS[s.value] for s in State}}


def transition(state: State, trigger: Trigger, task: str | None = None, **facts: bool) -> State:
    """Return the state that ``trigger`` leads to from ``state``.

    Raises
    ------
    IllegalTransition
        if the table has no entry for the pair.
    KeyError
        if the entry is guarded and the caller did not pass the guard's fact.
    """
    try:
        return PLAIN[state, trigger]
    except KeyError:
        pass
    try:
        target = _GUARDED[state, trigger]
    except KeyError:
        raise IllegalTransition(state.value, trigger.value, task) from None
    return target.if_true if facts[target.guard] else target.if_false


# TABLE split by kind of entry, so that transition() needs no check of the kind
# (an isinstance per transition cost the engine 1.5% of its instructions).
PLAIN = {k: v for k, v in TABLE.items() if isinstance(v, State)}
_GUARDED = {k: v for k, v in TABLE.items() if isinstance(v, Guarded)}


if __name__ == "__main__":
    json.dump(vocabulary(), sys.stdout, indent=2)
    sys.stdout.write("\n")
