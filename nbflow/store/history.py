"""Task durations across runs: what ``sjf``, ``edf`` and ``critical_path`` expect.

When a run ends, the seconds its succeeded attempts ran go into one row of
``durations`` (``schema.py``): the names, the code hashes and the seconds as
three columns, in one order.  Only a flow's latest :data:`KEEP` rows are kept.  A
task's expected duration is the median of its durations with its current code
in those runs: editing a task starts its history afresh.

The names and codes are the same from run to run until a declaration changes,
so a :class:`History` encodes them once per graph, and a run's row costs one
``array`` of floats (10,000 tasks: about a millisecond, where a JSON object per
run cost 20).  It reads a flow's rows once per kernel and then keeps them
current with the runs it records (runs of other kernels meanwhile are seen by
the next kernel).
"""

from __future__ import annotations

import json
import math
from array import array
from collections import deque
from collections.abc import Mapping, Sequence

from sqlalchemy.exc import DBAPIError

from .sql import translate_error

#: How many of a flow's latest runs keep their durations.
KEEP = 5
#: Hex digits of a task's code hash (``results.task_base``) kept: 64 bits are
#: identity enough.
CODE = 16


class History:
    """The durations of ``flow``'s tasks in ``store``: the latest :data:`KEEP` runs'
    rows, read on first use, then kept current by :meth:`record`."""

    def __init__(self, store, flow: str):
        self.store, self.flow = store, flow
        self._runs: deque[tuple[str, str, array]] | None = None  # (names, codes, seconds)
        self._encoded: tuple = (None, "", "")   # (graph, names JSON, codes)

    def expected(self, graph, bases: Mapping[str, str]) -> dict[str, float]:
        """``{task: median seconds}`` for the tasks of ``graph`` that ran, with the
        code they have now (``bases``: their code hashes), in the kept runs."""
        names_json, codes = self._encode(graph, bases)
        names = graph.names
        values: list[list[float]] = [[] for _ in names]
        for run_names, run_codes, seconds in self._load():
            if run_names == names_json and run_codes == codes:
                # The same tasks with the same code, in the same order (the usual
                # case): column by column, no lookup.
                for column, s in zip(values, seconds):
                    if s == s:   # NaN: did not run
                        column.append(s)
                continue
            where = {n: k for k, n in enumerate(json.loads(run_names))}
            for k, name in enumerate(names):
                j = where.get(name)
                if j is not None and run_codes[j * CODE:(j + 1) * CODE] == \
                        codes[k * CODE:(k + 1) * CODE] and seconds[j] == seconds[j]:
                    values[k].append(seconds[j])
        return {name: _median(v) for name, v in zip(names, values) if v}

    def record(self, run_id: str, graph, bases: Mapping[str, str],
               took: Sequence[float | None]) -> None:
        """Store how long each task of ``graph`` ran in run ``run_id`` (None: it did
        not run), ``bases`` being the tasks' code hashes; then remember it.

        Raises
        ------
        StoreError
            the store refused the write (translated, with what to do).
        """
        names_json, codes = self._encode(graph, bases)
        seconds = array("d", [math.nan if t is None else t for t in took])
        p = _mark(self.store)
        try:
            with self.store.engine.begin() as conn:
                conn.exec_driver_sql(
                    f"INSERT INTO durations (flow, run_id, names, codes, seconds) "
                    f"VALUES ({p}, {p}, {p}, {p}, {p})",
                    (self.flow, run_id, names_json, codes, seconds.tobytes()))
                # Run ids sort by creation time (``api.new_run_id``).
                oldest = conn.exec_driver_sql(
                    f"SELECT run_id FROM durations WHERE flow = {p} ORDER BY run_id DESC "
                    f"LIMIT 1 OFFSET {KEEP - 1}", (self.flow,)).scalar()
                if oldest is not None:
                    conn.exec_driver_sql(
                        f"DELETE FROM durations WHERE flow = {p} AND run_id < {p}",
                        (self.flow, oldest))
        except DBAPIError as exc:
            raise translate_error(exc, self.store.label) from exc
        if self._runs is not None:
            self._runs.append((names_json, codes, seconds))

    def _encode(self, graph, bases: Mapping[str, str]) -> tuple[str, str]:
        # Once per graph: a flow's graph is rebuilt whenever a declaration changes.
        if self._encoded[0] is not graph:
            self._encoded = (graph, json.dumps(graph.names),
                             "".join([bases[n][:CODE] for n in graph.names]))
        return self._encoded[1], self._encoded[2]

    def _load(self) -> deque:
        if self._runs is None:
            with self.store._reading() as conn:
                rows = conn.exec_driver_sql(
                    f"SELECT names, codes, seconds FROM durations WHERE flow = "
                    f"{_mark(self.store)} ORDER BY run_id", (self.flow,)).all()
            self._runs = deque(maxlen=KEEP)
            for names, codes, blob in rows:
                seconds = array("d")
                seconds.frombytes(bytes(blob))
                self._runs.append((names, codes, seconds))
        return self._runs


def _median(values: list[float]) -> float:
    values = sorted(values)
    mid = len(values) // 2
    return values[mid] if len(values) % 2 else (values[mid - 1] + values[mid]) / 2


def _mark(store) -> str:
    return "?" if store.engine.dialect.paramstyle == "qmark" else "%s"
