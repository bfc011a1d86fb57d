"""Task durations across runs: what ``sjf``, ``edf`` and ``critical_path`` expect.

When a run ends, its succeeded tasks' durations go into one row of
``durations``: ``{task: [code hash, seconds]}`` as JSON, keyed by flow and run.
Only a flow's latest :data:`KEEP` rows are kept.  A task's expected duration is
the median of its durations with its current code in those runs: editing a task
starts its history afresh.

A :class:`History` reads a flow's rows once per kernel, then keeps them current
with the runs it records (runs from other kernels meanwhile are seen by the
next kernel).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence

from sqlalchemy.exc import DBAPIError

from .sql import translate_error

#: How many of a flow's latest runs keep their durations.
KEEP = 5


def record(store, flow: str, run_id: str, rows: Sequence[tuple[str, str, float]]) -> None:
    """Store ``(task, code, seconds)`` of a run's succeeded tasks, one transaction,
    and drop the flow's rows older than its latest :data:`KEEP`.

    Raises
    ------
    StoreError
        the store refused the write (translated, with what to do).
    """
    if not rows:
        return
    text = json.dumps({task: [code, seconds] for task, code, seconds in rows})
    p = _mark(store)
    try:
        with store.engine.begin() as conn:
            conn.exec_driver_sql(f"INSERT INTO durations (flow, run_id, tasks) "
                                 f"VALUES ({p}, {p}, {p})", (flow, run_id, text))
            # Run ids sort by creation time (``api.new_run_id``).
            oldest = conn.exec_driver_sql(
                f"SELECT run_id FROM durations WHERE flow = {p} ORDER BY run_id DESC "
                f"LIMIT 1 OFFSET {KEEP - 1}", (flow,)).scalar()
            if oldest is not None:
                conn.exec_driver_sql(f"DELETE FROM durations WHERE flow = {p} AND run_id < {p}",
                                     (flow, oldest))
    except DBAPIError as exc:
        raise translate_error(exc, store.label) from exc


class History:
    """The durations of ``flow``'s tasks in ``store``, read on first use."""

    def __init__(self, store, flow: str):
        self.store, self.flow = store, flow
        self._known: dict[str, tuple[str, list[float]]] | None = None

    def medians(self, codes: Mapping[str, str]) -> dict[str, float]:
        """``{task: median seconds}`` for the tasks of ``codes`` (task -> code hash)
        that have a history with that code."""
        known = self._load()
        out = {}
        for task, code in codes.items():
            entry = known.get(task)
            if entry is not None and entry[0] == code:
                out[task] = _median(entry[1])
        return out

    def record(self, run_id: str, rows: Sequence[tuple[str, str, float]]) -> None:
        """Store a run's ``(task, code, seconds)`` (:func:`record`) and remember them."""
        record(self.store, self.flow, run_id, rows)
        if self._known is not None:
            self._add(rows)

    def _load(self) -> dict:
        if self._known is None:
            with self.store._reading() as conn:
                texts = conn.exec_driver_sql(
                    f"SELECT tasks FROM durations WHERE flow = {_mark(self.store)} "
                    "ORDER BY run_id", (self.flow,)).scalars().all()
            self._known = {}
            for text in texts:
                self._add([(task, code, s) for task, (code, s) in json.loads(text).items()])
        return self._known

    def _add(self, rows: Sequence[tuple[str, str, float]]) -> None:
        # Per task, the durations of its latest code, oldest first, at most KEEP.
        known = self._known
        for task, code, seconds in rows:
            entry = known.get(task)
            if entry is None or entry[0] != code:
                known[task] = (code, [seconds])
            else:
                entry[1].append(seconds)
                del entry[1][:-KEEP]


#: Characters of a task's code hash (``results.task_base``) stored per task: 64
#: bits are identity enough, in a quarter of the bytes.
CODE = 16


def _median(values: list[float]) -> float:
    values = sorted(values)
    mid = len(values) // 2
    return values[mid] if len(values) % 2 else (values[mid - 1] + values[mid]) / 2


def _mark(store) -> str:
    return "?" if store.engine.dialect.paramstyle == "qmark" else "%s"
