"""A ``%%task`` cell sent to a worker that does not share the notebook
(``executor='dask'``, ``executor='processes'``).

A cell normally runs against the notebook's namespace, live.  One that declares
what it reads and what it assigns (``%%task NAME --reads a,b --assigns c``) can
also run elsewhere: when an attempt is submitted the kernel reads the declared
variables and sends their values with the cell's source; the worker runs the
source in fresh globals holding just those values and sends back the declared
assigns, which the kernel writes into the notebook when the attempt ends
(unless the engine gave the attempt up: it timed out, or its run was cancelled).

The task's function stays the closure that runs the cell in the notebook, so its
result key still digests the cell's code; ``wire.py``'s pickler sends the
cell's :class:`CellCode` in its place.

:class:`ShippedCells` is the one seam the executors that run attempts in
another interpreter share: it refuses, before anything is submitted, the cells
that cannot go (a ``--map`` cell, or one that does not declare both), gives
each attempt of a cell the values it reads, and writes back what it assigned.
"""

from __future__ import annotations

import functools
import linecache
from collections.abc import Callable, Sequence
from typing import Any

from .core.cellvars import CellNames
from .core.safe import safe_repr
from .core.worker import Saved, TaskContext

#: What an attempt of a cell calls with its result to write its assigns back.
Publish = Callable[[Any, TaskContext | None], None]


class CellCode:
    """What a declared cell sends to a worker; called with the values of its reads,
    it returns the values of its assigns."""

    __slots__ = ("assigns", "name", "source")

    def __init__(self, name: str, source: str, assigns: tuple[str, ...]):
        self.name, self.source, self.assigns = name, source, assigns

    def __reduce__(self):
        return CellCode, (self.name, self.source, self.assigns)

    def __call__(self, **values: Any) -> dict[str, Any]:
        filename = f"<task {self.name}>"
        # Lets the worker's traceback show the cell's lines.
        linecache.cache[filename] = (len(self.source), None, self.source.splitlines(True),
                                     filename)
        scratch = dict(values)
        exec(compile(self.source, filename, "exec"), scratch)
        return {k: scratch[k] for k in self.assigns if k in scratch}


def _flag(flag: str, names: tuple[str, ...]) -> str:
    return f"{flag} {','.join(names)}" if names else f'{flag} ""'


class CellTask:
    """The kernel's side of a ``%%task`` cell: its reads and assigns (as declared,
    else as the analysis sees them), the values it sends, what it writes back."""

    def __init__(self, name: str, source: str, namespace: dict[str, Any], names: CellNames,
                 reads: tuple[str, ...] | None, assigns: tuple[str, ...] | None,
                 publish: Callable[..., None]):
        self.name = name
        self.declared = reads is not None and assigns is not None
        self._given = {"--reads": reads, "--assigns": assigns}
        self.reads = tuple(sorted(names.reads)) if reads is None else reads
        self.assigns = names.assigns if assigns is None else assigns
        self.code = CellCode(name, source, self.assigns)
        self._namespace, self._publish = namespace, publish

    def flags_to_add(self) -> str:
        """The ``%%task`` options this cell lacks to be sent to a worker, filled in with
        what the analysis sees it read and assign."""
        seen = {"--reads": self.reads, "--assigns": self.assigns}
        return " ".join(_flag(f, seen[f]) for f, given in self._given.items() if given is None)

    def inputs(self) -> dict[str, Any]:
        """The values of the declared reads, from the notebook now.

        Raises
        ------
        NameError
            a declared read the notebook has no variable for.
        """
        missing = [n for n in self.reads if n not in self._namespace]
        if missing:
            raise NameError(
                f"task {self.name!r} reads {', '.join(map(safe_repr, missing))} (--reads), "
                "but the notebook has no such variable yet: run the cell that defines it, "
                "or have a task cell assign it (--assigns) upstream")
        return {n: self._namespace[n] for n in self.reads}

    def ticket(self) -> int:
        """Taken when an attempt starts: see ``declare._Publisher``."""
        return self._publish.ticket()

    def publish(self, ticket: int, value: Any, ctx: TaskContext | None) -> None:
        """Write what a worker sent back into the notebook, unless the attempt was
        given up meanwhile (its context, the engine's own, is cancelled)."""
        if type(value) is Saved:   # what the run's result wrapper returned
            value = value.value
        self._publish(ticket, value, given_up=ctx is not None and ctx.cancelled)


class ShippedCells:
    """The ``%%task`` cells of a run whose attempts go to ``where`` ("a Dask worker",
    "a worker process"), by task index.

    Raises
    ------
    ValueError
        a cell that can only run in the notebook's namespace (a ``--map`` cell's
        item, or one that does not declare both ``--reads`` and ``--assigns``),
        naming the task and the flags to add.
    """

    def __init__(self, specs: Sequence[Any], where: str):
        mapped = next((s.name for s in specs
                       if s.kind == "cell" and getattr(s.fn, "nbflow_cell", None) is None), None)
        if mapped is not None:
            raise ValueError(
                f"task {mapped!r} belongs to a %%task --map cell, whose items run in the "
                f"notebook's namespace, which {where} does not share. Run this flow "
                f"with executor='threads', or map a function with flow.map(...) instead.")
        cells = {i: s.fn.nbflow_cell for i, s in enumerate(specs) if s.kind == "cell"}
        vague = next((c for c in cells.values() if not c.declared), None)
        if vague is not None:
            raise ValueError(
                f"task {vague.name!r} is a %%task cell that does not declare what it reads "
                f"and assigns, so it can only run in the notebook's namespace, which "
                f"{where} does not share. Add {vague.flags_to_add()} to its %%task line "
                f"(what nbflow sees it read and assign; only --assigns come back into the "
                f"notebook), or run this flow with executor='threads'.")
        self._cells: dict[int, CellTask] = cells

    def start(self, i: int, kwargs: dict[str, Any]) -> tuple[dict[str, Any], Publish | None]:
        """When an attempt of task ``i`` starts: its arguments (a cell's with the values it
        reads, from the notebook now) and what writes its assigns back, if it is a cell.

        Raises
        ------
        NameError
            a read the notebook has no variable for (the attempt fails).
        """
        cell = self._cells.get(i)
        if cell is None:
            return kwargs, None
        return {**kwargs, **cell.inputs()}, functools.partial(cell.publish, cell.ticket())

    def reads(self, i: int) -> tuple[str, ...]:
        """The variables task ``i`` reads from the notebook (none unless it is a cell)."""
        cell = self._cells.get(i)
        return () if cell is None else cell.reads
