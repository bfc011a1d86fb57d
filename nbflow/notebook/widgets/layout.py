"""What the dashboard's DAG view shows, as Graphviz DOT.

The tasks of a map (``flow.map``: ``clean[0]``, ``clean[1]``, ...) are drawn as one
node, ``clean[N]`` with a bar of their states, until it is opened.  Groups are
clusters, one inside the other, labelled (phases with their number, in order
left to right) and coloured in the browser by their rolled-up state
(``core/rollup.py``); a click on a cluster's label folds it into one node.

Above ``limit`` nodes the view folds: groups first (each top-level group one
node, and an opened group that still has too much folds its subgroups), then
what is left into *units* of one Kahn level (one group's part of a level); when
there are more than ``MAX_UNITS`` levels, runs of consecutive levels fold into
one unit.  Expanding a unit shows its tasks, or, if it holds more than
``limit``, the next finer units: a run of levels opens into levels, a level into
parts of at most ``limit`` nodes, a map into parts of ``limit`` items.  So a
10,000-task flow, wide or deep, never asks the browser to lay out more than a few
hundred nodes.

Node ids are ``t<i>`` for task ``i`` (declaration order) and ``u<key>`` for a
unit (``uL3``, ``uL0-9``, ``uL3.2``, ``ug1_L3`` for group 1's part of level 3,
``uG1`` for folded group 1, ``uM0`` for map 0, ``uM0.2`` for its third part);
clusters are ``cluster_G<k>``.  They are the only names in the DOT that the
browser reads back, and they carry no user data.  Every user string goes
through ``render.dot_label``.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from typing import Any

from ...core.graph import Graph
from ...core.rollup import rollup
from ...render import STATE_COLORS, STATE_INK, base_digraph, dot_label
from .structure import Structure

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
        For each task its group path or None; None when the flow has no groups.
    limit
        The most nodes shown without folding; None never folds (maps fold whatever
        the limit).
    phases
        For each task its phase or None.

    Raises
    ------
    ValueError
        ``limit`` is below 1.
    """

    def __init__(self, title: str, graph: Graph, groups: Sequence[str | None] | None = None,
                 limit: int | None = 300, phases: Sequence[str | None] | None = None):
        if limit is not None and limit < 1:
            raise ValueError(f"collapse_above must be at least 1 (or None to never collapse), "
                             f"got {limit}")
        self.title, self.graph, self.limit = title, graph, limit
        self.groups = list(groups) if groups is not None and any(groups) else None
        self.phases = list(phases) if phases is not None and any(phases) else None
        self.shape = Structure(graph, self.groups, self.phases)
        self.expanded: set[str] = set()
        self.folded: set[str] = set()   # groups the user folded (``fold``)
        self._labels: dict[str, str] = {}
        self._kinds: dict[str, str] = {}
        members: list[list[int]] = [[] for _ in self.shape.paths]
        for i, chain in enumerate(self.shape.chain if self.shape.paths else ()):
            for g in chain:
                members[g].append(i)
        self._members = members
        self._big = [self._too_many(m) for m in members]
        self._big_all = self._too_many(range(len(graph)))
        self._by_rank = (sorted(range(len(graph)), key=self.shape.rank.__getitem__)
                         if self.phases else [i for lv in graph.levels_idx for i in lv])

    def _too_many(self, members) -> bool:
        return self.limit is not None and self.shape.count(members) > self.limit

    def refolded(self, limit: int | None) -> DagLayout:
        """The same graph folded with another ``limit``, nothing expanded."""
        return DagLayout(self.title, self.graph, self.groups, limit, self.phases)

    # -- groups ------------------------------------------------------------------
    def _group_folded(self, g: int) -> bool:
        # A big flow folds by group first: a group is folded when the group (or flow)
        # that holds it has too much to show, until the user opens it.
        key = f"G{g}"
        if key in self.folded:
            return True
        parent = self.shape.parent(g)
        return (self._big_all if parent is None else self._big[parent]) \
            and key not in self.expanded

    def _outer_folded(self, i: int) -> int | None:
        return next((g for g in self.shape.chain[i] if self._group_folded(g)), None)

    def _cluster_of(self, i: int) -> int | None:
        """The innermost open group of task ``i``: the cluster its node is drawn in."""
        if not self.shape.paths:
            return None
        open_ = None
        for g in self.shape.chain[i]:
            if self._group_folded(g):
                break
            open_ = g
        return open_

    # -- levels ------------------------------------------------------------------
    def _level_units(self, tasks: list[int]) -> dict[str, list[int]]:
        by_group: dict[int | None, dict[int, list[int]]] = {}
        rank = self.shape.rank
        if self.shape.paths:
            for i in tasks:
                by_group.setdefault(self._cluster_of(i), {}).setdefault(rank[i], []).append(i)
        else:  # once per view on every task of a big flow: no method call per task
            levels = by_group[None] = {}
            for i in tasks:
                levels.setdefault(rank[i], []).append(i)
        band = math.ceil(sum(len(levels) for levels in by_group.values()) / MAX_UNITS)
        units: dict[str, list[int]] = {}
        for group, levels in by_group.items():
            prefix = "" if group is None else f"g{group}_"
            title = "" if group is None else f"{self.shape.group_label(group)} · "
            order = sorted(levels)
            for k in range(0, len(order), band):
                run = order[k:k + band]
                if len(run) == 1:
                    key, label = f"{prefix}L{run[0]}", f"{title}level {run[0]}"
                else:
                    key = f"{prefix}L{run[0]}-{run[-1]}"
                    label = f"{title}levels {run[0]}–{run[-1]}"
                self._labels[key], self._kinds[key] = label, "levels"
                units[key] = [i for lv in run for i in levels[lv]]
        return units

    def _children(self, key: str, members: list[int]) -> dict[str, list[int]] | None:
        """The units an expanded unit opens into, or None when it shows its tasks."""
        if self.limit is None or not self._too_many(members):
            return None
        if "-" in key:  # a run of levels opens into its levels
            prefix = key[:key.index("L")]
            levels: dict[int, list[int]] = {}
            for i in members:
                levels.setdefault(self.shape.rank[i], []).append(i)
            title = self._labels[key].rpartition("levels ")[0]
            children = {}
            for lv, group_members in levels.items():
                self._labels[f"{prefix}L{lv}"] = f"{title}level {lv}"
                self._kinds[f"{prefix}L{lv}"] = "levels"
                children[f"{prefix}L{lv}"] = group_members
            return children
        # A level opens into parts of at most ``limit`` nodes (a map is one node).
        children: dict[str, list[int]] = {}
        entities = self.shape.entities(members)
        for k in range(0, len(entities), self.limit):
            child = f"{key}.{k // self.limit}"
            self._labels[child] = f"{self._labels[key]} · part {k // self.limit + 1}"
            self._kinds[child] = "levels"
            children[child] = [i for e in entities[k:k + self.limit] for i in e]
        return children

    # -- folding -----------------------------------------------------------------
    def units(self) -> dict[str, list[int]]:
        """Every unit shown now: ``{node id: member task indices}``."""
        shown: dict[str, list[int]] = {}
        rest = [] if self.shape.paths else list(range(len(self.graph)))
        for i in range(len(self.graph)) if self.shape.paths else ():
            g = self._outer_folded(i)
            if g is None:
                rest.append(i)
            else:
                shown.setdefault(f"uG{g}", []).append(i)
                self._labels[f"G{g}"], self._kinds[f"G{g}"] = self.shape.group_label(g), "group"
        if self._too_many(rest):
            for key, members in self._level_units(rest).items():
                self._place(key, members, shown)
        if self.shape.maps:
            placed = {i for members in shown.values() for i in members}
            self._fold_maps([i for i in rest if i not in placed], shown)
        return shown

    def _fold_maps(self, tasks: list[int], shown: dict[str, list[int]]) -> None:
        """The tasks of a map shown one by one fold into one node, ``name[N]``; opened,
        a map of more than ``limit`` opens into parts."""
        items: dict[int, list[int]] = {}
        for i in tasks:
            if self.shape.map_of[i] >= 0:
                items.setdefault(self.shape.map_of[i], []).append(i)
        for k, members in items.items():
            name, everything = self.shape.maps[k]
            key = f"M{k}"
            self._labels[key], self._kinds[key] = f"{name}[{len(everything):,}]", "map"
            if key not in self.expanded:
                shown["u" + key] = members
            elif self.limit is not None and len(members) > self.limit:
                for j in range(0, len(members), self.limit):
                    part = members[j:j + self.limit]
                    child = f"{key}.{j // self.limit}"
                    first, last = everything.index(part[0]), everything.index(part[-1])
                    self._labels[child] = f"{name}[{first}–{last}]"
                    self._kinds[child] = "map"
                    if child not in self.expanded:
                        shown["u" + child] = part

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
        if node[1:] in self.folded:
            self.folded.discard(node[1:])
        else:
            self.expanded.add(node[1:])
        return True

    def fold(self, cluster: str) -> bool:
        """Fold the group drawn as cluster ``cluster`` (``G<k>``) into one node; False
        if no such cluster is drawn now."""
        g = cluster[1:]
        if not cluster.startswith("G") or not g.isdigit() or int(g) >= len(self.shape.paths) \
                or self._group_folded(int(g)) or self._outer_folded(self._members[int(g)][0]) \
                is not None:
            return False
        self.expanded.discard(cluster)
        if not self._group_folded(int(g)):
            self.folded.add(cluster)
        return True

    def collapse_all(self) -> None:
        """Fold every unit again."""
        self.expanded.clear()
        self.folded.clear()

    def unit_label(self, node: str) -> str:
        """A unit's title: ``level 3``, ``levels 0–9``, ``level 3 · part 2``,
        ``group · level 3``, ``clean[5,000]``, ``extract``."""
        return self._labels[node[1:]]

    # -- output ------------------------------------------------------------------
    def view(self) -> dict:
        """What the browser needs: ``{"dot", "units": {node: {"label", "kind",
        "members"}}, "clusters": {G<k>: {"label", "members"}}, "expanded": [unit keys],
        "folded": [groups folded by hand]}``."""
        units = self.units()
        g, clusters = self._digraph(units, None)
        return {"dot": g.source,
                "expanded": sorted(self.expanded), "folded": sorted(self.folded),
                "units": {node: {"label": self.unit_label(node), "kind": self._kinds[node[1:]],
                                 "members": members} for node, members in units.items()},
                "clusters": {f"G{g}": {"label": self.shape.group_label(g),
                                       "members": self._members[g]} for g in clusters if g is not None}}

    def _clusters(self, node_of: list[str]) -> dict[int | None, list[str]]:
        """The nodes drawn in each open group (None: in no group), in rank order."""
        out: dict[int | None, list[str]] = {}
        declared = set()
        for i in self._by_rank:  # a unit is ranked with its first member
            node = node_of[i]
            if node in declared:
                continue
            declared.add(node)
            out.setdefault(self._cluster_of(i), []).append(node)
        for g in [g for g in out if g is not None]:   # the groups that hold those
            parent = self.shape.parent(g)
            while parent is not None and parent not in out:
                out[parent] = []
                parent = self.shape.parent(parent)
        return out

    def _node_of(self, units: dict[str, list[int]]) -> list[str]:
        node_of = [f"t{i}" for i in range(len(self.graph))]
        for node, members in units.items():
            for i in members:
                node_of[i] = node
        return node_of

    def digraph(self, units: dict[str, list[int]] | None = None,
                states: Sequence[str] | None = None):
        """A ``graphviz.Digraph`` of the view: ranks left to right, groups as clusters.

        With ``states`` (one per task) nodes are filled by state, unit labels carry
        their counts and cluster labels their group's rolled-up state, for a static
        picture; without, the browser styles them.
        """
        return self._digraph(self.units() if units is None else units, states)[0]

    def _digraph(self, units: dict[str, list[int]], states: Sequence[str] | None):
        """The digraph and the nodes in each cluster (``_clusters``)."""
        graph = self.graph
        node_of = self._node_of(units)
        clusters = self._clusters(node_of)
        g = base_digraph(self.title)
        g.attr(newrank="true", nodesep="0.15", ranksep="0.45")
        g.attr("node", fontsize="11", height="0.3")
        g.attr("edge", color="#9a9a9a", arrowsize="0.6")
        self._emit(g, None, clusters, units, states)
        # A rank of many nodes wraps into columns of WRAP, so an expanded level of a
        # hundred is a readable grid, not one column a hundred nodes high.  Invisible
        # edges put each column after the one before, and the next rank after the last.
        by_rank: dict[int, list[str]] = {}
        for nodes in clusters.values():
            for node in nodes:
                first = int(node[1:]) if node.startswith("t") else units[node][0]
                by_rank.setdefault(self.shape.rank[first], []).append(node)
        previous = None
        for _rank, nodes in sorted(by_rank.items()):
            nodes.sort(key=lambda node: int(node[1:]) if node.startswith("t") else units[node][0])
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
        return g, clusters

    def _emit(self, parent, group: int | None, clusters: dict[int | None, list[str]],
              units: dict[str, list[int]], states: Sequence[str] | None) -> None:
        """Group ``group``'s nodes and, inside it, its open subgroups, as clusters."""
        # Left to right, Graphviz stacks a rank's nodes upwards in the order it meets
        # them: declared last first, they read top-down in declaration order.
        for node in reversed(clusters.get(group, ())):
            parent.node(node, **self._node_attrs(node, units, states))
        for sub in clusters:
            if sub is None or self.shape.parent(sub) != group:
                continue
            with parent.subgraph(name=f"cluster_G{sub}") as part:
                label = self.shape.group_label(sub)
                attrs = {"style": "rounded,dashed", "color": "#9a9a9a"}
                if sub in self.shape.phase_of:
                    attrs = {"style": "rounded", "color": "#7a7a7a", "penwidth": "1.5"}
                if states is not None:
                    state = rollup(states[i] for i in self._members[sub])
                    label = f"{label} · {state}"
                    attrs["color"] = STATE_COLORS.get(state, "#9a9a9a")
                else:  # the page writes the state in: room for the longest one
                    label = f"{label} · succeeded"
                part.attr(label=dot_label(label), fontname="Helvetica", fontsize="11",
                          labeljust="l", **attrs)
                self._emit(part, sub, clusters, units, states)

    def _node_attrs(self, node: str, units: dict[str, list[int]],
                    states: Sequence[str] | None) -> dict:
        if node in units:
            members = units[node]
            kind = self._kinds[node[1:]]
            lines = [self.unit_label(node),
                     "mapped" if kind == "map" else _count(len(members), "task")]
            if states is not None:
                counts: dict[str, int] = {}
                for i in members:
                    counts[states[i]] = counts.get(states[i], 0) + 1
                lines.append(", ".join(f"{n:,} {s}" for s, n in counts.items()))
            else:
                lines.append(" ")  # room for the state bar the browser draws
            attrs = {"label": _lines(lines), "penwidth": "1.5", "width": "1.6"}
            if kind == "map":   # a stack of cards, as a mapped task reads in Airflow
                attrs["peripheries"] = "2"
            return attrs
        i = int(node[1:])
        name = self.graph.names[i]
        short = name if len(name) <= MAX_LABEL else name[:MAX_LABEL - 1] + "…"
        attrs = {"label": dot_label(short)}
        if states is not None:
            attrs["fillcolor"] = STATE_COLORS.get(states[i], "#ffffff")
            attrs["fontcolor"] = STATE_INK.get(states[i], "#111111")
            attrs["tooltip"] = dot_label(f"{name}: {states[i]}")
        return attrs


def layout_of(title: str, graph: Graph, specs: Sequence[Any], limit: int | None) -> DagLayout:
    """The layout of a flow's graph, with the groups and phases of its ``specs``."""
    return DagLayout(title, graph, [s.group for s in specs], limit, [s.phase for s in specs])


def _lines(lines: list[str]):
    import graphviz
    return graphviz.nohtml("\\n".join(str(dot_label(line)) for line in lines))


def _count(n: int, noun: str) -> str:
    return f"{n:,} {noun}" + ("" if n == 1 else "s")
