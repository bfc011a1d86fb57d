"""The DAG: Kahn levels, cycles, unknown and duplicate names, graph queries.

Level cases are data: a graph in, its levels out (graphlib's test style).
"""

from __future__ import annotations

import pytest

from nbflow import Flow
from nbflow.core.graph import Graph, close_names
from nbflow.errors import CycleError, DuplicateTaskError, UnknownDependencyError

LEVELS = [
    ({}, []),
    ({"a": []}, [["a"]]),
    ({"a": [], "b": [], "c": []}, [["a", "b", "c"]]),
    ({"a": [], "b": ["a"], "c": ["b"]}, [["a"], ["b"], ["c"]]),
    # diamond
    ({"a": [], "b": ["a"], "c": ["a"], "d": ["b", "c"]}, [["a"], ["b", "c"], ["d"]]),
    # a level is the longest path from a root, not the shortest
    ({"a": [], "b": ["a"], "c": ["a", "b"]}, [["a"], ["b"], ["c"]]),
    # declaration order inside a level, whatever order the dependencies are listed in
    ({"z": [], "y": [], "x": ["y", "z"], "w": ["z", "y"]}, [["z", "y"], ["x", "w"]]),
    # dependents declared before their dependencies
    ({"report": ["clean"], "clean": ["load"], "load": []}, [["load"], ["clean"], ["report"]]),
    # a dependency listed twice counts once
    ({"a": [], "b": ["a", "a"]}, [["a"], ["b"]]),
]


@pytest.mark.parametrize("mapping, levels", LEVELS)
def test_levels(mapping, levels):
    g = Graph.from_mapping(mapping)
    assert g.levels() == levels
    for i, name in enumerate(g.names):
        assert all(g.level[p] < g.level[i] for p in g.preds[i]), name


def test_edges_are_stored_both_ways_without_repeats():
    g = Graph.from_mapping({"a": [], "b": ["a", "a"], "c": ["a", "b"]})
    assert g.preds == [(), (0,), (0, 1)]
    assert [tuple(s) for s in g.succs] == [(1, 2), (2,), ()]


@pytest.mark.parametrize("mapping, message, cycle", [
    ({"load": ["clean"], "clean": ["load"]},
     "the tasks form a cycle: load -> clean -> load", ["load", "clean", "load"]),
    ({"clean": ["load"], "load": ["clean"]},
     "the tasks form a cycle: clean -> load -> clean", ["clean", "load", "clean"]),
    ({"x": ["x"]}, "the tasks form a cycle: x -> x", ["x", "x"]),
    # tasks behind the cycle are not part of the chain, nor are the ones before it
    ({"root": [], "c": ["b", "root"], "a": ["c"], "b": ["a"], "tail": ["a"]},
     "the tasks form a cycle: c -> a -> b -> c", ["c", "a", "b", "c"]),
])
def test_cycle_error_names_the_cycle(mapping, message, cycle):
    with pytest.raises(CycleError, match=f"^{message}\\. Remove one of these dependencies"
                                         r" \(an `after=`/`--after` entry"):
        Graph.from_mapping(mapping)
    try:
        Graph.from_mapping(mapping)
    except CycleError as e:
        assert e.cycle == cycle
        for before, after in zip(e.cycle, e.cycle[1:]):
            assert before in mapping[after], f"{after} does not depend on {before}"


def test_unknown_dependency_names_the_task_and_suggests_close_names():
    with pytest.raises(UnknownDependencyError,
                       match=r"^task 'clean' depends on 'laod', which is not a task\. "
                             r"Did you mean 'load'\? Declare it with @flow\.task or %%task, "
                             r"or remove it from the `after` of 'clean'\.$") as info:
        Graph.from_mapping({"load": [], "clean": ["laod"]})
    assert (info.value.task, info.value.missing, info.value.suggestions) == \
        ("clean", "laod", ["load"])


def test_unknown_dependency_lists_several_suggestions_or_none():
    with pytest.raises(UnknownDependencyError, match="Did you mean 'load_a', 'load_b' or"):
        Graph.from_mapping({"load_a": [], "load_b": [], "load_c": [], "x": ["load_"]})
    with pytest.raises(UnknownDependencyError, match="which is not a task. Declare it") as info:
        Graph.from_mapping({"load": [], "x": ["zzzz"]})
    assert "Did you mean" not in str(info.value)


def test_duplicate_names_are_rejected():
    with pytest.raises(DuplicateTaskError,
                       match="^two tasks are named 'a'. Task names must be unique in a flow: "
                             "rename one of them.$"):
        Graph(["a", "b", "a"], [[], [], []])


def test_names_and_dependency_lists_must_pair_up():
    with pytest.raises(ValueError, match="2 names but 1 dependency lists"):
        Graph(["a", "b"], [[]])


def test_ancestors_and_descendants():
    g = Graph.from_mapping({"a": [], "b": ["a"], "c": ["b"], "d": ["a"], "e": []})
    assert g.descendants("a") == {"b", "c", "d"}
    assert g.descendants("c") == set()
    assert g.ancestors("c") == {"a", "b"}
    assert g.ancestors("e") == set()


def test_critical_path():
    g = Graph.from_mapping({"a": [], "b": ["a"], "c": ["a"], "d": ["b", "c"]})
    assert g.critical_path({"a": 1, "b": 5, "c": 2, "d": 1}) == (7, ["a", "b", "d"])
    assert g.critical_path([1, 1, 9, 1]) == (11, ["a", "c", "d"])
    assert Graph([], []).critical_path({}) == (0.0, [])


def test_close_names():
    assert close_names("claen", ["load", "clean", "report"]) == ["clean"]
    assert close_names("xyz", ["load", "clean"]) == []
    # ties keep declaration order; a name offered twice is suggested once
    assert close_names("load_", ["load_b", "load_a", "load_b"]) == ["load_b", "load_a"]


# -- the same checks reached through Flow declarations ------------------------

def test_flow_cycle_through_parameters_and_after():
    flow = Flow("f")

    @flow.task(after=["clean"])
    def load():
        return 1

    @flow.task
    def clean(load):
        return load

    with pytest.raises(CycleError, match="cycle: load -> clean -> load"):
        flow.build()


def test_flow_parameter_without_default_that_matches_no_task():
    flow = Flow("f")

    @flow.task
    def load():
        return 1

    @flow.task
    def clean(laod, scale=2):
        return laod * scale

    with pytest.raises(UnknownDependencyError,
                       match=r"^task 'clean' has a parameter 'laod' that matches no task\. "
                             r"Did you mean 'load'\? Declare a task named 'laod', rename the "
                             r"parameter, or give it a default value\.$"):
        flow.build()


def test_flow_parameter_with_a_default_is_not_a_dependency():
    flow = Flow("f")

    @flow.task
    def load(path="data.csv"):
        return path

    graph, specs = flow.build()
    assert specs[0].deps == () and specs[0].inputs == {}


def test_flow_duplicate_task_names():
    flow = Flow("f")

    def one():
        return 1

    def two():
        return 2

    flow.task(one, name="load")
    with pytest.raises(DuplicateTaskError,
                       match=r"^a task named 'load' is already declared \(.*test_graph\.py:\d+\); "
                             r"this one comes from .*test_graph\.py:\d+\. Give one of them "
                             r"another name .* or remove the old one with "
                             r"flow\.remove\('load'\)\.$"):
        flow.task(two, name="load")
    assert flow.tasks == ["load"]
    # re-running the declaring cell (same function) is allowed
    flow.task(one, name="load")
    assert flow.tasks == ["load"]


