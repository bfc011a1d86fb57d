"""TaskSpec.resolved copies every field but the two it replaces."""

from dataclasses import fields

from nbflow.core.spec import TaskSpec


def test_resolved_copies_every_other_field():
    values = {f.name: object() for f in fields(TaskSpec)}
    spec = TaskSpec(**values)
    new = spec.resolved(("dep",), {"x": ("dep", None)})
    assert new is not spec
    assert (new.deps, new.inputs) == (("dep",), {"x": ("dep", None)})
    for f in fields(TaskSpec):
        if f.name not in ("deps", "inputs"):
            assert getattr(new, f.name) is values[f.name], f.name
