"""A ``%%task`` cell sent to a worker that does not share the notebook (``executor='dask'``).

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
"""

from __future__ import annotations

import linecache
from collections.abc import Callable
from typing import Any

from .core.cellvars import CellNames
from .core.safe import safe_repr
from .core.worker import Saved, TaskContext


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
