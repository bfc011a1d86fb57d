"""Ready-queue policies: which ready task a free worker gets next.

Ties always break by declaration order (the task's index), so a run's order is
the same from one run to the next.
"""

from __future__ import annotations

import heapq
from collections import deque
from collections.abc import Sequence


class Fifo:
    """First ready, first started."""

    name = "fifo"

    def __init__(self, priorities: Sequence[int] = ()):
        self._q: deque[int] = deque()
        self.push = self._q.append
        self.pop = self._q.popleft

    def __len__(self) -> int:
        return len(self._q)


class Priority:
    """Highest ``priority`` first; equal priorities in declaration order."""

    name = "priority"

    def __init__(self, priorities: Sequence[int] = ()):
        self._prio = list(priorities)
        self._heap: list[tuple[int, int]] = []

    def push(self, i: int) -> None:
        heapq.heappush(self._heap, (-self._prio[i], i))

    def pop(self) -> int:
        return heapq.heappop(self._heap)[1]

    def __len__(self) -> int:
        return len(self._heap)


POLICIES = {cls.name: cls for cls in (Fifo, Priority)}


def make_policy(name: str, priorities: Sequence[int]):
    """Instantiate the policy called ``name``.

    Raises
    ------
    ValueError
        naming the known policies, if ``name`` is not one of them.
    """
    try:
        cls = POLICIES[name]
    except KeyError:
        raise ValueError(
            f"unknown policy {name!r}; choose one of: {', '.join(sorted(POLICIES))}") from None
    return cls(priorities)
