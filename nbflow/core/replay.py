"""Folding the event log into the task table.

The events are the source of truth; a task row is what :func:`apply` makes of
them.  The store's writer maintains the ``tasks`` table with this same function,
so replaying the log reproduces the table by construction, and a test checks it.
"""

from __future__ import annotations

from collections.abc import Iterable

TERMINAL = frozenset({"succeeded", "failed", "skipped", "upstream_failed", "cancelled"})

# A row is a list, in this column order (the writer updates many per commit).
COLUMNS = ("state", "attempt", "started", "finished", "error")


def new_row() -> list:
    return ["pending", 0, None, None, None]


def apply(row: list, event: tuple) -> None:
    """Update ``row`` in place with one event ``(seq, task, attempt, from, to, at, detail)``."""
    _seq, _task, attempt, _frm, to, at, detail = event
    row[0] = to
    row[1] = attempt
    if to == "running":
        row[2], row[3], row[4] = at, None, None
    elif to in TERMINAL:
        row[3] = at
    if detail and "error" in detail:
        row[4] = detail["error"]


def fold(rows: dict[str, list], events: Iterable[tuple]) -> dict[str, list]:
    """Apply ``events`` to ``rows`` (by task name, created pending on first sight);
    return the rows that changed."""
    changed: dict[str, list] = {}
    for ev in events:
        name = ev[1]
        row = rows.get(name)
        if row is None:
            row = rows[name] = new_row()
        apply(row, ev)
        changed[name] = row
    return changed


def replay(names: Iterable[str], events: Iterable[tuple]) -> dict[str, list]:
    """Task rows of a run with tasks ``names``, from its events in ``seq`` order.

    Every task starts ``pending`` when the run is created, so the log needs no
    creation events.
    """
    rows: dict[str, list] = {name: new_row() for name in names}
    fold(rows, events)
    return rows
