"""``flow.map`` and ``flow.each``: fan-out over items, fan-in of their results."""

from __future__ import annotations

import itertools
import pathlib

import pytest

import nbflow
from nbflow.errors import NoSuchTask


def etl(store_path: str, files: list, calls: list) -> nbflow.Flow:
    flow = nbflow.Flow("mapped", store=store_path)

    def fetch(path):
        calls.append(f"fetch {path}")
        return f"rows of {path}"

    def clean(raw, suffix="!"):
        calls.append(f"clean {raw}")
        if "bad" in raw:
            raise ValueError(f"cannot clean {raw}")
        return raw.upper() + suffix

    def report(parts):
        return " | ".join(p or "-" for p in parts)

    flow.map(fetch, over=files)
    flow.map(clean, over=flow.each("fetch"))
    flow.task(report, inputs={"parts": flow.each("clean")}, trigger="all_done")
    return flow


def test_map_fans_out_and_each_fans_in_in_order(store_path):
    calls: list[str] = []
    files = ["c.csv", "a.csv", "b.csv"]
    flow = etl(store_path, files, calls)
    assert flow.levels() == [["fetch[0]", "fetch[1]", "fetch[2]"],
                             ["clean[0]", "clean[1]", "clean[2]"], ["report"]]
    run = flow.run()
    assert run.result("report") == "ROWS OF C.CSV! | ROWS OF A.CSV! | ROWS OF B.CSV!"
    assert run.result("fetch[1]") == "rows of a.csv"


def test_a_failed_item_follows_the_trigger_rules(store_path):
    calls: list[str] = []
    run = etl(store_path, ["a", "bad", "c"], calls).run()
    assert run.failed == ["clean[1]"]
    # all_done: the fan-in runs, and a failed item's place holds None
    assert run.result("report") == "ROWS OF A! | - | ROWS OF C!"


def test_an_item_that_changed_is_not_restored(store_path):
    calls: list[str] = []
    etl(store_path, ["a", "b"], calls).run()
    calls.clear()
    # same names, same code; the second item changed
    run = etl(store_path, ["a", "z"], calls).run(resume=True)
    assert sorted(calls) == ["clean rows of z", "fetch z"]
    assert run.result("report") == "ROWS OF A! | ROWS OF Z!"


def test_items_that_are_objects_count_by_value(store_path):
    flow = nbflow.Flow("paths", store=store_path)
    seen = []
    flow.map(lambda p: seen.append(p) or p.name, over=[pathlib.Path("/x/one")], name="n")
    flow.run()
    again = nbflow.Flow("paths", store=store_path)
    again.map(lambda p: seen.append(p) or p.name, over=[pathlib.Path("/x/two")], name="n")
    assert again.run(resume=True).result("n[0]") == "two"


def test_mapping_again_with_fewer_items_removes_the_extra_tasks():
    def up(text):
        return text.upper()

    flow = nbflow.Flow("shrink")
    flow.map(up, over=["a", "b", "c"])
    flow.map(up, over=["a"])
    assert flow.tasks == ["up[0]"] and list(flow.each("up")) == ["up[0]"]


def test_map_options_apply_to_each_item(store_path):
    flow = nbflow.Flow("opts", store=store_path)
    tries: dict = {}

    def flaky(n):
        tries[n] = tries.get(n, 0) + 1
        if tries[n] < 2:
            raise ConnectionError("again")
        return n

    flow.map(flaky, over=[1, 2], retries=1)
    run = flow.run()
    assert run.state == "succeeded" and tries == {1: 2, 2: 2}


@pytest.mark.parametrize("over, message", [
    ("abc", r"map 'f': over= must be a list \(or other iterable\) of items"),
    (3, r"got int"),
])
def test_bad_over_is_refused(over, message):
    def f(x):
        return x
    with pytest.raises(TypeError, match=message):
        nbflow.Flow("bad").map(f, over=over)


def test_an_endless_or_too_long_over_is_refused_within_the_bound(monkeypatch):
    def f(x):
        return x
    flow = nbflow.Flow("endless")
    with pytest.raises(ValueError, match=r"map 'f': over= has more than 100,000 items \(an "
                                         r"endless iterator, such as itertools.count\(\)\?\)"):
        flow.map(f, over=itertools.count())
    monkeypatch.setenv("NBFLOW_MAX_MAP", "3")
    flow.map(f, over=iter(range(3)))   # exactly the bound
    with pytest.raises(ValueError, match=r"has more than 3 items.*set NBFLOW_MAX_MAP"):
        flow.map(f, over=range(4))
    monkeypatch.setenv("NBFLOW_MAX_MAP", "lots")
    with pytest.raises(ValueError, match=r"NBFLOW_MAX_MAP='lots' is not a whole number"):
        flow.map(f, over=[1])
    assert flow.tasks == ["f[0]", "f[1]", "f[2]"]


def test_paired_maps_must_have_the_same_length():
    flow = nbflow.Flow("pairs")

    def f(x):
        return x

    def g(a, b):
        return a, b

    flow.map(f, over=[1, 2], name="f")
    with pytest.raises(TypeError, match=r"map 'g' has 3 items but flow.each\('f'\) has 2 "
                                        r"tasks"):
        flow.map(g, over=[1, 2, 3], inputs={"b": flow.each("f")})


def test_each_of_an_unknown_map_says_to_declare_it_first():
    with pytest.raises(NoSuchTask, match=r"flow 'm' has no map named 'x' \(its maps: none "
                                         r"yet\); declare it with flow.map"):
        nbflow.Flow("m").each("x")


def test_a_function_without_a_parameter_cannot_be_mapped():
    def nothing():
        return 1
    with pytest.raises(TypeError, match=r"'nothing' has no parameter to receive the item"):
        nbflow.Flow("m").map(nothing, over=[1])


def test_a_map_inside_a_phase_and_a_group_is_in_them(tmp_path):
    flow = nbflow.Flow("scoped map", store=f"sqlite:///{tmp_path}/s.db")
    with flow.phase("extract"), flow.group("api"):
        flow.map(lambda x: x, over=[1, 2], name="clean")
    _graph, specs = flow.build()
    assert [(s.phase, s.group) for s in specs] == [("extract", "extract/api")] * 2
