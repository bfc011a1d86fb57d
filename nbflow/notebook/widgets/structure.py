"""What the DAG view groups tasks by, beyond their Kahn levels: maps, groups, phases.

* **Maps**: the tasks of ``flow.map`` are named ``name[0]``, ``name[1]``, ...
  (``mapping.item_name``); two or more tasks named so fold into one node, as
  Airflow draws a mapped task.  Read from the names, so a run read back from the
  store (a new kernel) folds the same way.
* **Groups**: a task's group path ``"extract/api"`` puts it in the clusters
  ``extract`` and ``extract/api``, one inside the other.  A phase is the outermost
  group of its tasks (``api.Flow.phase``).
* **Ranks**: where a task is drawn, left to right.  Its Kahn level, except that
  phases are join points the graph has no edges for: every task of a phase is
  drawn after the tasks of the phase before, so phases read in order.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from ...core.graph import Graph

_ITEM = re.compile(r"(.+)\[(\d+)\]")


class Structure:
    """The maps, groups and ranks of one graph's tasks.

    ``maps``: ``[(name, [task indices])]`` in declaration order, ``map_of[i]``
    the map of task ``i`` or -1.  ``paths``: every group path and parent path in
    first-declared order, ``chain[i]`` the indices of task ``i``'s groups, outermost
    first.  ``phase_of``: group index -> phase number, for the groups that are phases.
    """

    def __init__(self, graph: Graph, groups: Sequence[str | None] | None = None,
                 phases: Sequence[str | None] | None = None):
        n = len(graph)
        found: dict[str, list[int]] = {}
        names = graph.names
        for i in [i for i, name in enumerate(names) if name[-1:] == "]"]:
            match = _ITEM.fullmatch(names[i])
            if match:
                found.setdefault(match[1], []).append(i)
        self.maps = [(name, members) for name, members in found.items() if len(members) > 1]
        self.map_of = [-1] * n
        for k, (_name, members) in enumerate(self.maps):
            for i in members:
                self.map_of[i] = k
        self.paths: list[str] = []
        index: dict[str, int] = {}
        self.chain: list[tuple[int, ...]] = [()] * n
        for i, path in enumerate(groups or ()):
            if not path:
                continue
            parts = path.split("/")
            chain = []
            for depth in range(1, len(parts) + 1):
                prefix = "/".join(parts[:depth])
                if prefix not in index:
                    index[prefix] = len(self.paths)
                    self.paths.append(prefix)
                chain.append(index[prefix])
            self.chain[i] = tuple(chain)
        self._parents = [index.get(path.rpartition("/")[0]) for path in self.paths]
        order = list(dict.fromkeys(p for p in phases or () if p))
        self.phase_of = {index[p]: k for k, p in enumerate(order) if p in index}
        self.rank = _ranks(graph, [order.index(p) if p else -1 for p in phases or [None] * n])

    def parent(self, g: int) -> int | None:
        """The group that holds group ``g``, or None for a top-level one."""
        return self._parents[g]

    def group_label(self, g: int) -> str:
        """``extract`` for group ``extract``, ``api`` for ``extract/api``; ``phase 1 · x``."""
        name = self.paths[g].rpartition("/")[2]
        return f"phase {self.phase_of[g] + 1} · {name}" if g in self.phase_of else name

    def count(self, members: Sequence[int]) -> int:
        """How many nodes ``members`` are once nothing else folds them (see ``entities``)."""
        if not self.maps:   # the common case, once per view on every task: kept cheap
            return len(members)
        mapped = {self.map_of[i] for i in members} - {-1}
        return sum(1 for i in members if self.map_of[i] < 0) + len(mapped)

    def entities(self, members: Sequence[int]) -> list[list[int]]:
        """``members`` as what the view draws as one node each once nothing else folds
        them: a task, or the tasks of one map together (at its first)."""
        if not self.maps:
            return [[i] for i in members]
        out: list[list[int]] = []
        at: dict[int, list[int]] = {}
        for i in members:
            k = self.map_of[i]
            if k < 0:
                out.append([i])
            elif k in at:
                at[k].append(i)
            else:
                at[k] = [i]
                out.append(at[k])
        return out


def _ranks(graph: Graph, phase: list[int]) -> list[int]:
    """Kahn levels, with each phase's tasks after every task of the phases before."""
    rank = list(graph.level)
    if max(phase, default=-1) < 1:
        return rank
    # A pass sees the phases' last ranks of the pass before; each settles at least one
    # more phase, so there are at most as many passes as phases.
    for _ in range(max(phase) + 2):
        last = [-1] * (max(phase) + 1)
        for i, k in enumerate(phase):
            if k >= 0:
                last[k] = max(last[k], rank[i])
        changed = False
        for lv in graph.levels_idx:
            for i in lv:
                r = max((rank[p] + 1 for p in graph.preds[i]), default=0)
                if phase[i] > 0:
                    r = max(r, max(last[:phase[i]]) + 1)
                if r != rank[i]:
                    rank[i], changed = r, True
        if not changed:
            break
    return rank
