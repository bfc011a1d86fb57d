"""``inputs=``: data into tasks whose names are made up, as in a flow built in a loop."""

from __future__ import annotations

import pytest

import nbflow
from nbflow.errors import UnknownDependencyError


def loop_flow(store_path: str, files: list[str]) -> nbflow.Flow:
    flow = nbflow.Flow("loop", store=store_path)

    def fetch(path):
        return f"rows of {path}"

    def clean(raw):
        return raw.upper()

    def combine(parts, first=None):
        return {"parts": parts, "first": first}

    for f in files:
        flow.task(lambda f=f: fetch(f), name=f"fetch-{f}")
        flow.task(clean, name=f"clean-{f}", inputs={"raw": f"fetch-{f}"})
    flow.task(combine, name="combine",
              inputs={"parts": [f"clean-{f}" for f in files], "first": f"fetch-{files[0]}"})
    return flow


def test_generated_tasks_pass_data_by_inputs(store_path):
    files = ["b.csv", "a.csv", "c.csv"]
    flow = loop_flow(store_path, files)
    assert flow.levels() == [[f"fetch-{f}" for f in files], [f"clean-{f}" for f in files],
                             ["combine"]]
    run = flow.run()
    assert run.result("clean-a.csv") == "ROWS OF A.CSV"
    # A list of tasks gives the list of their results, in the order given.
    assert run.result("combine") == {"parts": ["ROWS OF B.CSV", "ROWS OF A.CSV",
                                               "ROWS OF C.CSV"],
                                     "first": "rows of b.csv"}


def test_inputs_results_are_restored_on_resume(store_path):
    flow = loop_flow(store_path, ["x", "y"])
    flow.run()
    again = loop_flow(store_path, ["x", "y"]).run(resume=True)
    assert again.status()["cached"].all()
    assert again.result("combine")["parts"] == ["ROWS OF X", "ROWS OF Y"]


def test_an_input_from_a_task_that_does_not_exist_is_named(store_path):
    flow = nbflow.Flow("bad", store=store_path)
    flow.task(lambda raw: raw, name="clean-1", inputs={"raw": "fetch-l"})
    flow.task(lambda: 1, name="fetch-1")
    with pytest.raises(UnknownDependencyError,
                       match=r"task 'clean-1' takes an input from 'fetch-l', which is not a "
                             r"task\. Did you mean 'fetch-1'\? Declare it with @flow.task or "
                             r"%%task, or fix the `inputs=` of 'clean-1'\."):
        flow.build()


@pytest.mark.parametrize("inputs, message", [
    ({"nope": "a"}, r"inputs= names 'nope', which is not a parameter of its function "
                    r"\(its parameters: raw\)"),
    ({"raw": 3}, r"task 't': inputs must be a dict of parameter names to a task name or a list "
                 r"of task names, got \{'raw': 3\}; e.g. inputs="),
    ({"raw": ["a", None]}, r"got \{'raw': \['a', None\]\}"),
    (["raw"], r"got \['raw'\]"),
])
def test_bad_inputs_are_refused_at_declaration(inputs, message):
    flow = nbflow.Flow("bad")
    with pytest.raises(TypeError, match=message):
        flow.task(lambda raw: raw, name="t", inputs=inputs)


def test_a_function_taking_any_keyword_may_be_given_any_input(store_path):
    flow = nbflow.Flow("kw", store=store_path)
    flow.task(lambda: 2, name="two")
    flow.task(lambda **kw: kw, name="all", inputs={"n": "two", "ns": ["two", "two"]})
    assert flow.run().result("all") == {"n": 2, "ns": [2, 2]}
