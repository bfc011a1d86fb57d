"""Task durations across runs: what ``sjf``, ``edf`` and ``critical_path`` expect.

When a run ends, each task that ran and succeeded leaves one row (flow, task,
code hash, run, seconds) in ``durations``; only the flow's latest
:data:`KEEP` runs' rows are kept.  A task's expected duration is the median of
its rows with its current code: editing a task starts its history afresh.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence

from sqlalchemy import delete, insert, select
from sqlalchemy.exc import DBAPIError

from .schema import durations
from .sql import translate_error

#: How many of a flow's latest runs keep their durations.
KEEP = 5


def record(store, flow: str, run_id: str, rows: Sequence[tuple[str, str, float]]) -> None:
    """Store ``(task, code, seconds)`` of a run's succeeded tasks, one transaction.

    Raises
    ------
    StoreError
        the store refused the write (translated, with what to do).
    """
    if not rows:
        return
    recent = (select(durations.c.run_id).where(durations.c.flow == flow).distinct()
              .order_by(durations.c.run_id.desc()).limit(KEEP))
    try:
        with store.engine.begin() as conn:
            conn.execute(insert(durations), [
                {"flow": flow, "task": t, "code": c, "run_id": run_id, "seconds": s}
                for t, c, s in rows])
            # Run ids sort by creation time (``api.new_run_id``).
            keep = [r for (r,) in conn.execute(recent)]
            conn.execute(delete(durations).where(durations.c.flow == flow,
                                                 durations.c.run_id.not_in(keep)))
    except DBAPIError as exc:
        raise translate_error(exc, store.label) from exc


def medians(store, flow: str, codes: Mapping[str, str]) -> dict[str, float]:
    """``{task: median seconds}`` for the tasks of ``codes`` (task -> code hash)
    that have a history with that code."""
    found: dict[str, list[float]] = {}
    q = select(durations.c.task, durations.c.code, durations.c.seconds).where(
        durations.c.flow == flow)
    with store._reading() as conn:
        for task, code, seconds in conn.execute(q):
            if codes.get(task) == code:
                found.setdefault(task, []).append(seconds)
    return {task: statistics.median(values) for task, values in found.items()}
