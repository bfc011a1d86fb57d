"""Folding the DAG view: which nodes show, their labels, and the DOT they make."""

from __future__ import annotations

import pytest

from nbflow.core.graph import Graph
from nbflow.notebook.widgets.layout import MAX_UNITS, DagLayout
from nbflow.render import STATE_COLORS


def chain_of_levels(levels: int, width: int) -> Graph:
    """``levels`` Kahn levels of ``width`` tasks, each task after one of the level before."""
    names = [f"n{lv}_{k}" for lv in range(levels) for k in range(width)]
    deps = [[f"n{lv - 1}_{k}"] if lv else [] for lv in range(levels) for k in range(width)]
    return Graph(names, deps)


@pytest.mark.parametrize("n, limit", [(3, 3), (40, None), (5, 300)])
def test_small_or_unlimited_graphs_show_every_task(n, limit):
    layout = DagLayout("f", chain_of_levels(n, 1), limit=limit)
    assert layout.units() == {}
    dot = layout.view()["dot"]
    assert all(f"t{i} " in dot for i in range(n)) and "->" in dot


def test_levels_fold_and_expand_into_tasks_or_parts():
    layout = DagLayout("f", chain_of_levels(3, 5), limit=4)
    assert {k: len(v) for k, v in layout.units().items()} == {"uL0": 5, "uL1": 5, "uL2": 5}
    assert layout.unit_label("uL1") == "level 1"
    assert layout.expand("uL1") and set(layout.units()) == {"uL0", "uL1.0", "uL1.1", "uL2"}
    assert layout.unit_label("uL1.1") == "level 1 · part 2"
    assert [len(layout.units()[k]) for k in ("uL1.0", "uL1.1")] == [4, 1]
    assert layout.expand("uL1.1") and "uL1.1" not in layout.units()
    assert not layout.expand("uL1") and not layout.expand("t3") and not layout.expand("nope")
    view = layout.view()
    assert view["expanded"] == ["L1", "L1.1"]
    assert view["units"]["uL0"] == {"label": "level 0", "members": [0, 1, 2, 3, 4]}
    assert 'uL0 -> "uL1.0"' in view["dot"] and "uL0 -> t9" in view["dot"]
    layout.collapse_all()
    assert set(layout.units()) == {"uL0", "uL1", "uL2"}


def test_many_levels_fold_into_runs_that_open_into_levels():
    layout = DagLayout("deep", chain_of_levels(2 * MAX_UNITS, 3), limit=100)
    units = layout.units()
    assert len(units) == MAX_UNITS and "uL0-1" in units and len(units["uL0-1"]) == 6
    assert layout.unit_label("uL0-1") == "levels 0–1"
    assert layout.expand("uL0-1") and "uL0-1" not in layout.units()
    assert all(f"t{i} " in layout.view()["dot"] for i in range(6))  # 6 tasks <= limit

    wide = DagLayout("deep", chain_of_levels(2 * MAX_UNITS, 30), limit=50)
    assert wide.expand("uL0-1") and {"uL0", "uL1"} <= set(wide.units())
    assert wide.unit_label("uL1") == "level 1"


def test_groups_are_clusters_and_fold_per_group():
    graph = Graph([f"x{i}" for i in range(6)], [[] for _ in range(6)])
    groups = ["<load>"] * 3 + ["train"] * 3
    layout = DagLayout("g", graph, groups=groups, limit=4)
    assert set(layout.units()) == {"ug0_L0", "ug1_L0"}
    assert layout.unit_label("ug0_L0") == "<load> · level 0"
    dot = DagLayout("g", graph, groups=groups, limit=None).view()["dot"]
    assert "subgraph cluster_0" in dot and 'label="<load>"' in dot and "newrank=true" in dot


def test_user_strings_are_plain_dot_labels():
    graph = Graph(["<img src=x onerror=alert(1)>", "back\\slash", "q\"uote"], [[], [], []])
    dot = DagLayout("<b>", graph).digraph(states=["failed", "succeeded", "pending"]).source
    assert 'label="<img src=x onerror=alert(1)>"' in dot and "label=<" not in dot
    assert 'label="back\\\\slash"' in dot and 'label="q\\"uote"' in dot
    assert f'fillcolor="{STATE_COLORS["failed"]}"' in dot


def test_limit_is_checked():
    with pytest.raises(ValueError, match="collapse_above must be at least 1"):
        DagLayout("f", chain_of_levels(2, 2), limit=0)


@pytest.mark.parametrize("flip", [False, True])
def test_independent_tasks_read_top_down_in_declaration_order(flip):
    pytest.importorskip("graphviz")
    import shutil
    if shutil.which("dot") is None:
        pytest.skip("needs Graphviz's dot (apt-get install graphviz)")
    names = [f"z{k}" for k in range(5)]  # names that sort against declaration order, too
    names = names[::-1] if flip else names
    layout = DagLayout("f", Graph(names, [[] for _ in names]), limit=None)
    plain = layout.digraph().pipe(format="plain", encoding="utf-8")
    y = {line.split()[1]: float(line.split()[3]) for line in plain.splitlines()
         if line.startswith("node ")}
    # Graphviz's y grows upwards: the first declared task is the highest.
    assert sorted(y, key=lambda node: -y[node]) == [f"t{i}" for i in range(5)]


def test_tasks_without_edges_keep_declaration_order_beside_connected_ones():
    import shutil
    if shutil.which("dot") is None:
        pytest.skip("needs Graphviz's dot (apt-get install graphviz)")
    names = ["flaky", "source", "z1", "z2", "z3", "z4", "sink"]
    deps = [[], [], [], [], [], [], ["source"]]
    layout = DagLayout("f", Graph(names, deps), limit=None)
    plain = layout.digraph().pipe(format="plain", encoding="utf-8")
    y = {line.split()[1]: float(line.split()[3]) for line in plain.splitlines()
         if line.startswith("node ")}
    alone = ["t0", "t2", "t3", "t4", "t5"]
    assert sorted(alone, key=lambda node: -y[node]) == alone


def test_an_expanded_level_of_a_hundred_tasks_is_a_grid_not_one_column():
    import shutil
    if shutil.which("dot") is None:
        pytest.skip("needs Graphviz's dot (apt-get install graphviz)")
    layout = DagLayout("f", chain_of_levels(3, 100), limit=150)
    assert layout.expand("uL1")
    plain = layout.digraph().pipe(format="plain", encoding="utf-8")
    nodes = {line.split()[1]: (float(line.split()[2]), float(line.split()[3]))
             for line in plain.splitlines() if line.startswith("node ")}
    level1 = [nodes[f"t{i}"] for i in range(100, 200)]
    columns = {round(x, 1) for x, _y in level1}
    assert len(columns) >= 8
    # The graph stays about as wide as it is high, and the folded levels sit outside it.
    _graph, _scale, width, height = plain.splitlines()[0].split()
    assert float(width) < 4 * float(height) and float(height) < 4 * float(width)
    xs = [x for x, _y in level1]
    assert nodes["uL0"][0] < min(xs) and nodes["uL2"][0] > max(xs)
