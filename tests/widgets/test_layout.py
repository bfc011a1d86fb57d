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
    assert view["units"]["uL0"] == {"label": "level 0", "kind": "levels",
                                     "members": [0, 1, 2, 3, 4]}
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


def test_groups_are_clusters_and_a_big_flow_folds_by_group_first():
    graph = Graph([f"x{i}" for i in range(6)], [[] for _ in range(6)])
    groups = ["<load>"] * 3 + ["train"] * 3
    layout = DagLayout("g", graph, groups=groups, limit=4)
    assert set(layout.units()) == {"uG0", "uG1"}
    assert layout.unit_label("uG0") == "<load>"
    assert layout.expand("uG0") and set(layout.units()) == {"uG1"}
    view = layout.view()
    assert set(view["clusters"]) == {"G0"} and view["clusters"]["G0"]["members"] == [0, 1, 2]
    dot = DagLayout("g", graph, groups=groups, limit=None).view()["dot"]
    assert "subgraph cluster_G0" in dot and 'label="<load> · ' in dot and "newrank=true" in dot


def test_a_group_too_big_when_opened_folds_its_subgroups_then_its_levels():
    names = [f"x{i}" for i in range(12)]
    groups = ["etl/a"] * 4 + ["etl/b"] * 4 + ["etl"] * 4
    layout = DagLayout("g", Graph(names, [[] for _ in names]), groups=groups, limit=3)
    assert set(layout.units()) == {"uG0"}
    assert layout.expand("uG0")
    units = layout.units()
    assert {"uG1", "uG2"} <= set(units) and layout.unit_label("uG1") == "a"
    assert sorted(units["ug0_L0"]) == [8, 9, 10, 11]  # etl's own tasks, by level
    dot = layout.view()["dot"]
    assert "subgraph cluster_G0" in dot and "cluster_G1" not in dot


def test_a_cluster_folds_by_hand_and_opens_again():
    names = [f"x{i}" for i in range(4)]
    groups = ["p/a", "p/a", "p", None]
    layout = DagLayout("g", Graph(names, [[], ["x0"], ["x1"], []]), groups=groups)
    assert layout.units() == {}
    dot = layout.view()["dot"]
    assert dot.index("cluster_G0") < dot.index("cluster_G1")  # nested: a inside p
    assert layout.fold("G1") and layout.units() == {"uG1": [0, 1]}
    assert not layout.fold("G1") and not layout.fold("G9") and not layout.fold("x")
    assert "uG1 -> t2" in layout.view()["dot"]
    assert layout.expand("uG1") and layout.units() == {}
    assert layout.fold("G0") and layout.units() == {"uG0": [0, 1, 2]}
    layout.collapse_all()
    assert layout.units() == {}


def test_mapped_tasks_fold_into_one_node_that_unfolds():
    names = ["fetch"] + [f"clean[{k}]" for k in range(7)] + ["join"]
    deps = [[]] + [["fetch"]] * 7 + [[f"clean[{k}]" for k in range(7)]]
    layout = DagLayout("m", Graph(names, deps), limit=3)
    assert layout.units() == {"uM0": list(range(1, 8))}
    view = layout.view()
    assert view["units"]["uM0"]["label"] == "clean[7]" and view["units"]["uM0"]["kind"] == "map"
    assert "t0 -> uM0" in view["dot"] and "uM0 -> t8" in view["dot"]
    assert "peripheries=2" in view["dot"]
    assert layout.expand("uM0")  # 7 items > limit 3: parts of 3
    assert set(layout.units()) == {"uM0.0", "uM0.1", "uM0.2"}
    assert layout.unit_label("uM0.1") == "clean[3–5]"
    assert layout.expand("uM0.2") and set(layout.units()) == {"uM0.0", "uM0.1"}
    unlimited = DagLayout("m", Graph(names, deps), limit=None)
    assert set(unlimited.units()) == {"uM0"}
    assert unlimited.expand("uM0") and unlimited.units() == {}


def test_a_five_thousand_task_map_is_one_node_not_a_folded_level():
    names = ["fetch"] + [f"clean[{k}]" for k in range(5000)] + ["join"]
    deps = [[]] + [["fetch"]] * 5000 + [[f"clean[{k}]" for k in range(5000)]]
    view = DagLayout("m", Graph(names, deps)).view()
    assert set(view["units"]) == {"uM0"} and view["units"]["uM0"]["label"] == "clean[5,000]"
    assert view["dot"].count("->") - view["dot"].count("style=invis") == 2


def test_phases_are_drawn_in_order():
    # b runs in phase 2, after a's phase, though no edge says so: it is ranked after.
    names = ["a0", "a1", "b0", "free"]
    layout = DagLayout("p", Graph(names, [[], ["a0"], [], []]),
                       groups=["one", "one", "two", None], phases=["one", "one", "two", None])
    assert layout.shape.rank == [0, 1, 2, 0]
    dot = layout.view()["dot"]
    assert 'label="phase 1 · one · ' in dot and 'label="phase 2 · two · ' in dot


def test_a_static_picture_labels_clusters_with_their_rolled_up_state():
    graph = Graph(["a", "b", "c"], [[], [], []])
    layout = DagLayout("g", graph, groups=["x", "x", "y"], limit=None)
    dot = layout.digraph(states=["failed", "succeeded", "succeeded"]).source
    assert 'label="x · failed"' in dot and 'label="y · succeeded"' in dot
    assert f'color="{STATE_COLORS["failed"]}"' in dot


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
