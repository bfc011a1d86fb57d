"""Folding the event log into the task table.

The events are the source of truth; a task row is what :func:`fold` makes of
them.  The store's writer maintains the ``tasks`` table with this same function,
so replaying the log reproduces the table by construction, and a test checks it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from .sinks import Event

# State is a str enum: its members hash and compare equal to the strings in events.
from .states import TERMINAL

# A row is a list, in this column order (the writer updates many per commit).
COLUMNS = ("state", "attempt", "started", "finished", "error")
Row = list[Any]


def new_row() -> Row:
    """A task as the run creates it: pending, never attempted."""
    return ["pending", 0, None, None, None]


def fold(rows: dict[str, Row], events: Iterable[Event]) -> dict[str, Row]:
    """Apply ``events`` (see ``events.py``) to ``rows`` by task name, in order.

    A task not in ``rows`` starts as :func:`new_row`.  Returns the rows that
    changed.  ``running`` (from another state) sets ``started`` and clears the rest of the attempt;
    a terminal state sets ``finished``; a detail with an ``error`` sets it.
    """
    changed: dict[str, Row] = {}
    terminal = TERMINAL
    for _run, _seq, task, attempt, frm, to, at, detail in events:
        row = rows.get(task)
        if row is None:
            row = rows[task] = new_row()
        row[0] = to
        row[1] = attempt
        if to == "running":
            if frm != to:   # running -> running notes a missed deadline: same attempt
                row[2], row[3], row[4] = at, None, None
        elif to in terminal:
            row[3] = at
        if detail and "error" in detail:
            row[4] = detail["error"]
        changed[task] = row
    return changed


def replay(names: Iterable[str], events: Iterable[Event]) -> dict[str, Row]:
    """Task rows of a run with tasks ``names``, from its events in ``seq`` order.

    Every task starts ``pending`` when the run is created, so the log needs no
    creation events.
    """
    rows: dict[str, Row] = {name: new_row() for name in names}
    fold(rows, events)
    return rows
