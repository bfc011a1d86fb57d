"""What the dashboard's DAG view shows, as Graphviz DOT.

Up to ``limit`` tasks the view shows every task.  Above it, tasks are folded into
*units*, summary nodes drawn with a count of their tasks and, in the browser, a
bar of their states.  A unit is one Kahn level (one group's part of a level once
the core has groups); when there are more than ``MAX_UNITS`` levels, runs of
consecutive levels fold into one unit.  Expanding a unit shows its tasks, or, if
it holds more than ``limit``, the next finer units: a run of levels opens into
levels, a level into chunks of at most ``limit`` tasks.  So a 10,000-task flow,
wide or deep, never asks the browser to lay out more than a few hundred nodes.

Node ids are ``t<i>`` for task ``i`` (declaration order) and ``u<key>`` for a
unit (``uL3``, ``uL0-9``, ``uL3.2``, ``ug1_L3`` for group 1); they are the only
names in the DOT that the browser reads back, and they carry no user data.
Every user string goes through ``render.dot_label``.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

from ...core.graph import Graph
from ...render import STATE_COLORS, STATE_INK, base_digraph, dot_label

MAX_LABEL = 48  # longer task names are cut in the node; hover and the table show them whole
MAX_UNITS = 60  # top-level units at most, before runs of levels fold together
WRAP = 12       # nodes in one column of a level at most; more wrap into the next column


class DagLayout:
    """The folding state of one DAG view and the DOT for it.

    Parameters
    ----------
    title
        The graph's name (the flow's name).
    graph
        The flow's DAG.
    groups
        For each task its group name or None; None when the flow has no groups.
    limit
        The most tasks shown without folding; None never folds.

    Raises
    ------
    ValueError
        ``limit`` is below 1.
    """

    def __init__(self, title: str, graph: Graph, groups: Sequence[str | None] | None = None,
                 limit: int | None = 300):
        if limit is not None and limit < 1:
            raise ValueError(f"collapse_above must be at least 1 (or None to never collapse), "
                             f"got {limit}")
        self.title, self.graph, self.limit = title, graph, limit
        self.groups = list(groups) if groups is not None and any(groups) else None
        self.expanded: set[str] = set()
        self._labels: dict[str, str] = {}
        self._top = self._top_units()

    def _top_units(self) -> dict[str, list[int]]:
        if self.limit is None or len(self.graph) <= self.limit:
            return {}
        names = list(dict.fromkeys(g for g in self.groups or () if g is not None))
        by_group: dict[str | None, dict[int, list[int]]] = {}
        for lv in self.graph.levels_idx:
            for i in lv:
                group = self.groups[i] if self.groups else None
                by_group.setdefault(group, {}).setdefault(self.graph.level[i], []).append(i)
        band = math.ceil(sum(len(levels) for levels in by_group.values()) / MAX_UNITS)
        units: dict[str, list[int]] = {}
        for group, levels in by_group.items():
            prefix = "" if group is None else f"g{names.index(group)}_"
            title = "" if group is None else f"{group} · "
            order = sorted(levels)
            for k in range(0, len(order), band):
                run = order[k:k + band]
                if len(run) == 1:
                    key, label = f"{prefix}L{run[0]}", f"{title}level {run[0]}"
                else:
                    key = f"{prefix}L{run[0]}-{run[-1]}"
                    label = f"{title}levels {run[0]}–{run[-1]}"
                self._labels[key] = label
                units[key] = [i for lv in run for i in levels[lv]]
        return units

    def _children(self, key: str, members: list[int]) -> dict[str, list[int]] | None:
        """The units an expanded unit opens into, or None when it shows its tasks."""
        if self.limit is None or len(members) <= self.limit:
            return None
        if "-" in key:  # a run of levels opens into its levels
            prefix = key[:key.index("L")]
            levels: dict[int, list[int]] = {}
            for i in members:
                levels.setdefault(self.graph.level[i], []).append(i)
            title = self._labels[key].rpartition("levels ")[0]
            children = {}
            for lv, group_members in levels.items():
                self._labels[f"{prefix}L{lv}"] = f"{title}level {lv}"
                children[f"{prefix}L{lv}"] = group_members
            return children
        children = {}
        for k in range(0, len(members), self.limit):
            child = f"{key}.{k // self.limit}"
            self._labels[child] = f"{self._labels[key]} · part {k // self.limit + 1}"
            children[child] = members[k:k + self.limit]
        return children

    # -- folding -----------------------------------------------------------------
    def units(self) -> dict[str, list[int]]:
        """Every unit shown now: ``{node id: member task indices}``."""
        shown: dict[str, list[int]] = {}
        for key, members in self._top.items():
            self._place(key, members, shown)
        return shown

    def _place(self, key: str, members: list[int], shown: dict[str, list[int]]) -> None:
        if key not in self.expanded:
            shown["u" + key] = members
            return
        for child, child_members in (self._children(key, members) or {}).items():
            self._place(child, child_members, shown)

    def expand(self, node: str) -> bool:
        """Show what unit ``node`` holds; False if ``node`` is not a folded unit shown now."""
        if node not in self.units():
            return False
        self.expanded.add(node[1:])
        return True

    def collapse_all(self) -> None:
        """Fold every unit again."""
        self.expanded.clear()

    def unit_label(self, node: str) -> str:
        """A unit's title: ``level 3``, ``levels 0–9``, ``level 3 · part 2``, ``group · level 3``."""
        return self._labels[node[1:]]

    # -- output ------------------------------------------------------------------
    def view(self) -> dict:
        """What the browser needs: ``{"dot", "units": {node: {"label", "members"}},
        "expanded": [unit keys]}``."""
        units = self.units()
        return {"dot": self.digraph(units).source, "expanded": sorted(self.expanded),
                "units": {node: {"label": self.unit_label(node), "members": members}
                          for node, members in units.items()}}

    def digraph(self, units: dict[str, list[int]] | None = None,
                states: Sequence[str] | None = None):
        """A ``graphviz.Digraph`` of the view: levels as ranks, groups as clusters.

        With ``states`` (one per task) nodes are filled by state and unit labels
        carry their counts, for a static picture; without, the browser styles them.
        """
        units = self.units() if units is None else units
        graph = self.graph
        node_of = [f"t{i}" for i in range(len(graph))]
        for node, members in units.items():
            for i in members:
                node_of[i] = node
        g = base_digraph(self.title)
        g.attr(newrank="true", nodesep="0.15", ranksep="0.45")
        g.attr("node", fontsize="11", height="0.3")
        g.attr("edge", color="#9a9a9a", arrowsize="0.6")
        by_level: dict[int, list[str]] = {}
        by_group: dict[str | None, list[str]] = {}
        declared = set()
        for level, tasks in enumerate(graph.levels_idx):
            for i in tasks:  # a unit is ranked with its first level
                node = node_of[i]
                if node in declared:
                    continue
                declared.add(node)
                by_level.setdefault(level, []).append(node)
                by_group.setdefault(self.groups[i] if self.groups else None, []).append(node)
        for k, (group, nodes) in enumerate(by_group.items()):
            with g.subgraph(name=f"cluster_{k}" if group is not None else None) as part:
                if group is not None:
                    part.attr(label=dot_label(group), style="rounded,dashed", color="#9a9a9a",
                              fontname="Helvetica", fontsize="11")
                # Left to right, Graphviz stacks a rank's nodes upwards in the order it
                # meets them: declared last first, they read top-down in declaration order.
                for node in reversed(nodes):
                    part.node(node, **self._node_attrs(node, units, states))
        # A level of many tasks wraps into columns of WRAP, so an expanded level of a
        # hundred is a readable grid, not one column a hundred nodes high.  Invisible
        # edges put each column after the one before, and the next level after the last.
        previous = None
        for _level, nodes in sorted(by_level.items()):
            columns = [nodes[k:k + WRAP] for k in range(0, len(nodes), WRAP)]
            for column in columns:
                with g.subgraph() as rank:
                    rank.attr(rank="same")
                    for node in reversed(column):
                        rank.node(node)
                # Crossing minimisation would reorder a column as it likes (sibling tasks
                # upside down): invisible edges within the rank fix declaration order, top
                # down (left to right, a flat edge puts its tail above its head).
                for earlier, later in itertools.pairwise(column):
                    g.edge(earlier, later, style="invis")
                if previous is not None:
                    g.edge(previous, column[0], style="invis")
                previous = column[0]
        edges = dict.fromkeys((node_of[p], node_of[i])
                              for i, preds in enumerate(graph.preds) for p in preds)
        for a, b in edges:
            if a != b:
                g.edge(a, b)
        return g

    def _node_attrs(self, node: str, units: dict[str, list[int]],
                    states: Sequence[str] | None) -> dict:
        if node in units:
            members = units[node]
            lines = [self.unit_label(node), _count(len(members), "task")]
            if states is not None:
                counts: dict[str, int] = {}
                for i in members:
                    counts[states[i]] = counts.get(states[i], 0) + 1
                lines.append(", ".join(f"{n:,} {s}" for s, n in counts.items()))
            else:
                lines.append(" ")  # room for the state bar the browser draws
            return {"label": _lines(lines), "penwidth": "1.5", "width": "1.6"}
        i = int(node[1:])
        name = self.graph.names[i]
        short = name if len(name) <= MAX_LABEL else name[:MAX_LABEL - 1] + "…"
        attrs = {"label": dot_label(short)}
        if states is not None:
            attrs["fillcolor"] = STATE_COLORS.get(states[i], "#ffffff")
            attrs["fontcolor"] = STATE_INK.get(states[i], "#111111")
            attrs["tooltip"] = dot_label(f"{name}: {states[i]}")
        return attrs


def _lines(lines: list[str]):
    import graphviz
    return graphviz.nohtml("\\n".join(str(dot_label(line)) for line in lines))


def _count(n: int, noun: str) -> str:
    return f"{n:,} {noun}" + ("" if n == 1 else "s")
