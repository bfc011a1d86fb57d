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
from collections.abc import Iterable, Mapping, Sequence

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
        # (names, codes, seconds, whether every task ran: no NaN in seconds)
        self._runs: deque[tuple[str, str, array, bool]] | None = None
        self._encoded: tuple = (None, "", "")   # (graph, names JSON, codes)

    def expected(self, graph, bases: Mapping[str, str]) -> dict[str, float]:
        """``{task: median seconds}`` for the tasks of ``graph`` that ran, with the
        code they have now (``bases``: their code hashes), in the kept runs."""
        names_json, codes = self._encode(graph, bases)
        names = graph.names
        runs = self._load()
        if all(n == names_json and c == codes and whole for n, c, _s, whole in runs):
            # The same tasks with the same code, in the same order, every one of
            # them run (the usual case): one row of seconds per task, no lookup.
            return _medians(names, zip(*[seconds for _n, _c, seconds, _w in runs]))
        values: list[list[float]] = [[] for _ in names]
        for run_names, run_codes, seconds, _whole in runs:
            if run_names == names_json and run_codes == codes:
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
        return _medians(names, values)

    def record(self, run_id: str, graph, bases: Mapping[str, str],
               took: Sequence[float | None]) -> None:
        """Queue how long each task of ``graph`` ran in run ``run_id`` (None: it did
        not run), ``bases`` being the tasks' code hashes; then remember it.

        The row goes through the store's writer, so it is committed with the
        run's last events (``Store.finish_run`` waits for them) rather than in a
        transaction of its own on the kernel's thread; a row the database
        refuses is reported and dropped by the writer, like any other.
        """
        names_json, codes = self._encode(graph, bases)
        seconds = array("d", [math.nan if t is None else t for t in took])
        self.store.record_durations(run_id, (self.flow, names_json, codes, seconds.tobytes(),
                                             KEEP))
        if self._runs is not None:
            self._runs.append((names_json, codes, seconds, None not in took))

    def _encode(self, graph, bases: Mapping[str, str]) -> tuple[str, str]:
        # Once per graph: a flow's graph is rebuilt whenever a declaration changes.
        if self._encoded[0] is not graph:
            self._encoded = (graph, json.dumps(graph.names),
                             "".join([bases[n][:CODE] for n in graph.names]))
        return self._encoded[1], self._encoded[2]

    def _load(self) -> deque:
        if self._runs is None:
            with self.store._reading() as conn:
                # In the order the runs were created (their ids sort by it only to
                # the second), as the writer keeps the latest.
                rows = conn.exec_driver_sql(
                    f"SELECT d.names, d.codes, d.seconds FROM durations d JOIN runs r ON "
                    f"r.id = d.run_id WHERE d.flow = {_mark(self.store)} "
                    f"ORDER BY r.created, d.run_id", (self.flow,)).all()
            self._runs = deque(maxlen=KEEP)
            for names, codes, blob in rows:
                seconds = array("d")
                seconds.frombytes(bytes(blob))
                self._runs.append((names, codes, seconds, not any(map(math.isnan, seconds))))
        return self._runs


def _medians(names: Sequence[str], rows: Iterable[Sequence[float]]) -> dict[str, float]:
    """``{name: the median of its row of seconds}``, for the names whose row is not empty."""
    out = {}
    for name, row in zip(names, map(sorted, rows)):
        k = len(row)
        if k:
            out[name] = row[k // 2] if k % 2 else (row[k // 2 - 1] + row[k // 2]) / 2
    return out


def _mark(store) -> str:
    return "?" if store.engine.dialect.paramstyle == "qmark" else "%s"
