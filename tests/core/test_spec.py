"""TaskSpec.resolved copies every field but the two it replaces."""

from nbflow.core.spec import TaskSpec


def test_resolved_copies_every_other_field():
    values = {name: object() for name in TaskSpec._fields}
    spec = TaskSpec(**values)
    new = spec.resolved(("dep",), {"x": ("dep", None)})
    assert new is not spec
    assert (new.deps, new.inputs) == (("dep",), {"x": ("dep", None)})
    for name in TaskSpec._fields:
        if name not in ("deps", "inputs"):
            assert getattr(new, name) is values[name], name
