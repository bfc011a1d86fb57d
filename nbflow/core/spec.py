"""What the engine needs to know about one task, independent of how it was declared."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(slots=True)
class TaskSpec:
    """One declared task.

    ``inputs`` maps a keyword argument of ``fn`` to ``(upstream task, key)``: the
    argument receives that task's result, or ``result[key]`` when ``key`` is not
    None (cell tasks return a dict of the variables they assign).  Every upstream
    task named in ``inputs`` is also in ``deps``.
    """

    name: str
    fn: Callable[..., Any]
    deps: tuple[str, ...] = ()
    inputs: Mapping[str, tuple[str, str | None]] = field(default_factory=dict)
    retries: int = 0
    retry_delay: float = 0.0
    timeout: float | None = None
    priority: int = 0
    tags: tuple[str, ...] = ()
    kind: str = "function"      # "function" or "cell"
    origin: str = ""            # where it was declared, for messages ("cell 3", "etl.py:12")

    def resolved(self, deps: tuple[str, ...], inputs: Mapping[str, tuple[str, str | None]]
                 ) -> TaskSpec:
        """A copy with resolved ``deps`` and ``inputs`` (cheaper than dataclasses.replace)."""
        return TaskSpec(self.name, self.fn, deps, inputs, self.retries, self.retry_delay,
                        self.timeout, self.priority, self.tags, self.kind, self.origin)
