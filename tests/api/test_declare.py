"""One TaskSpec per declaration: what ``flow.task`` builds is what the run uses."""

from __future__ import annotations

import pytest

import nbflow
from nbflow.core.options import DEFAULTS, TASK_OPTIONS
from nbflow.errors import UnknownDependencyError


def parts_sum(parts=()):
    return sum(parts) + 1


def test_a_run_uses_the_spec_its_declaration_made(store_path):
    flow = nbflow.Flow("one-spec", store=store_path)
    flow.task(lambda: 1, name="a")
    flow.task(lambda: 2, name="b")
    flow.task(parts_sum, name="c", after=["a"], inputs={"parts": ["a", "b"]})
    declared = [flow._decls[n].spec for n in flow.tasks]
    _graph, specs = flow.build()
    assert all(s is d for s, d in zip(specs, declared, strict=True))
    assert specs[2].deps == ("a", "b")     # after=, then the inputs' tasks, each once
    assert specs[2].inputs == {"parts": (("a", "b"), None)}
    assert flow.run().result("c") == 4


def test_an_undeclared_option_is_the_tables_default():
    flow = nbflow.Flow("defaults", retries=2)
    flow.task(lambda: 1, name="a", priority=5)
    spec = flow.build()[1][0]
    expected = {n: DEFAULTS[n] for n in TASK_OPTIONS} | {"retries": 2, "priority": 5}
    assert {n: getattr(spec, n) for n in TASK_OPTIONS} == expected


def test_a_parameter_named_after_a_task_resolves_without_changing_the_declaration(store_path):
    flow = nbflow.Flow("by-name", store=store_path)

    def total(raw, parts=()):
        return raw + sum(parts)

    flow.task(total, name="total", inputs={"parts": ["x"]})
    flow.task(lambda: 10, name="x")
    with pytest.raises(UnknownDependencyError, match="parameter"):
        flow.build()        # nothing is named raw yet
    flow.task(lambda: 5, name="raw")
    declared = flow._decls["total"].spec
    spec = flow.build()[1][0]
    assert spec is not declared and declared.deps == ("x",)
    assert spec.deps == ("x", "raw")
    assert spec.inputs == {"parts": (("x",), None), "raw": ("raw", None)}
    assert flow.run().result("total") == 15


def test_an_unknown_after_is_named_before_an_unknown_input():
    flow = nbflow.Flow("order")
    flow.task(parts_sum, name="c", after=["nope"], inputs={"parts": ["gone"]})
    with pytest.raises(UnknownDependencyError, match=r"'nope'") as caught:
        flow.build()
    assert "inputs=" not in str(caught.value)
    flow = nbflow.Flow("order")
    flow.task(parts_sum, name="c", after=["c0"], inputs={"parts": ["gone"]})
    flow.task(lambda: 1, name="c0")
    with pytest.raises(UnknownDependencyError, match=r"'gone'.*inputs="):
        flow.build()
