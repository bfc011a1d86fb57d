"""What the engine needs to know about one task, independent of how it was declared."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any, NamedTuple

from .options import DEFAULTS

#: The default ``inputs`` and ``resources``: one shared mapping, so read-only.
NOTHING: Mapping[str, Any] = MappingProxyType({})


class TaskSpec(NamedTuple):
    """One declared task.

    ``inputs`` maps a keyword argument of ``fn`` to ``(upstream task, key)``: the
    argument receives that task's result, or ``result[key]`` when ``key`` is not
    None (cell tasks return a dict of the variables they assign).  The upstream
    may also be a tuple of task names (``inputs={"parts": [...]}``, key None):
    the argument receives the list of their results.  Every upstream task named
    in ``inputs`` is also in ``deps``.

    Retries: attempt ``k`` (1-based) that fails with one of ``retry_on`` is
    retried while ``k <= retries``, after ``retry.backoff_delay`` seconds.
    ``trigger`` is the rule deciding from the dependencies' end states whether
    the task runs (``triggers.py``); ``run_if``, called with the task's inputs
    once the rule says run, may skip it.  ``compensate(result)`` undoes a
    success when the run fails or is cancelled with ``on_failure="compensate"``.
    ``cache``: reuse a stored result with the same key (code and inputs) from
    any run, not only from the run being resumed.

    Scheduling (``scheduler.py``, ``policies.py``): ``expected`` seconds it
    usually takes, ``deadline`` (seconds after the run starts, or a datetime),
    ``resources`` (``{pool: slots}`` it holds while it runs), ``group`` (a
    ``/``-separated path for roll-ups) and ``phase`` (set by ``flow.phase``).

    Immutable: a flow's specs are shared by all its runs until a declaration
    changes (a run gets its wrapped functions through ``Engine(fns=...)``).
    A named tuple rather than a frozen dataclass: every declaration makes one,
    and a frozen dataclass sets each of its 25 fields through
    ``object.__setattr__`` (5 us a task, a third of what declaring cost), where a
    tuple is made in one call and its fields read as fast as slots.
    """

    name: str
    fn: Callable[..., Any]
    deps: tuple[str, ...] = ()
    inputs: Mapping[str, tuple[str | tuple[str, ...], str | None]] = NOTHING
    # Defaults from the options table (``options.py``), which also checks values.
    retries: int = DEFAULTS["retries"]
    retry_delay: float = DEFAULTS["retry_delay"]
    backoff: float = DEFAULTS["backoff"]           # delay multiplier per further attempt
    max_delay: float | None = DEFAULTS["max_delay"]  # ceiling of one delay, jitter included
    jitter: float = DEFAULTS["jitter"]             # +/- this fraction of the delay, at random
    retry_on: tuple[type[BaseException], ...] = DEFAULTS["retry_on"]
    timeout: float | None = DEFAULTS["timeout"]
    priority: int = DEFAULTS["priority"]
    tags: tuple[str, ...] = DEFAULTS["tags"]
    trigger: str = DEFAULTS["trigger"]
    run_if: Callable[..., bool] | None = DEFAULTS["run_if"]
    compensate: Callable[[Any], Any] | None = DEFAULTS["compensate"]
    cache: bool = DEFAULTS["cache"]
    expected: float | None = DEFAULTS["expected"]  # seconds it usually takes (policies)
    deadline: Any = DEFAULTS["deadline"]           # seconds after the start, or a datetime
    resources: Mapping[str, int] = NOTHING         # pool -> slots held
    group: str | None = DEFAULTS["group"]          # "extract/api": for roll-ups
    phase: str | None = DEFAULTS["phase"]          # phases run one after the other
    kind: str = "function"      # "function" or "cell"
    origin: str = ""            # where it was declared, for messages ("cell 3", "etl.py:12")

    def resolved(self, deps: tuple[str, ...],
                 inputs: Mapping[str, tuple[str | tuple[str, ...], str | None]]
                 ) -> TaskSpec:
        """A copy with resolved ``deps`` and ``inputs``."""
        return self._replace(deps=deps, inputs=inputs)
