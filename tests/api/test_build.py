"""``Flow.build``: the graph and specs are resolved once, until a declaration changes."""

from __future__ import annotations

from nbflow import Flow


def test_build_is_reused_until_a_declaration_changes(tmp_path):
    flow = Flow("cached", store=str(tmp_path / "s.db"))
    flow.task(lambda: 1, name="a")
    flow.task(lambda a: a + 1, name="b")
    graph1, specs1 = flow.build()
    graph2, specs2 = flow.build()
    assert graph2 is graph1                      # not resolved again
    assert specs2[0] is specs1[0]                # nor the specs: a run leaves them as they are
    fn = specs1[0].fn
    assert flow.run().state == "succeeded"
    assert flow.build()[1][0].fn is fn
    flow.task(lambda b: b, name="c")
    assert flow.levels() == [["a"], ["b"], ["c"]]
    flow.remove("c")
    assert flow.levels() == [["a"], ["b"]]
    flow.clear()
    assert flow.levels() == []
