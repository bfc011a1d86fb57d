"""What the dashboard gets for maps, groups, phases and pools: the view, the pool slots each
task holds, the static picture, and the same after a kernel restart (a run from the store)."""

from __future__ import annotations

import shutil

import pytest

import nbflow
from nbflow.notebook.widgets import Dashboard


def declare(store_path: str) -> nbflow.Flow:
    flow = nbflow.Flow("parts", store=store_path, workers=2)
    flow.pool("db", slots=2)
    with flow.phase("extract"):
        flow.map(lambda x: 1 / 0 if x == 3 else x, over=range(8), name="clean")
    with flow.phase("load"):
        flow.task(lambda: None, name="load", resources={"db": 2}, trigger="all_done")
    return flow


def test_the_dashboard_gets_maps_clusters_and_pool_slots(comms, store_path):
    run = declare(store_path).run()
    dash = Dashboard(run)
    assert dash._bridge.join(30)
    view, graph = dash._view, dash._graph
    assert view["units"]["uM0"]["label"] == "clean[8]" and view["units"]["uM0"]["kind"] == "map"
    assert {c["label"] for c in view["clusters"].values()} == {"phase 1 · extract",
                                                              "phase 2 · load"}
    assert graph["pools"] == {"db": 2} and graph["resources"] == {8: {"db": 2}}
    assert graph["rollup"][0] == ("failed", "any", ("failed", "upstream_failed"))
    dash.fold("G1")
    assert "uG1" in dash._view["units"] and dash._view["folded"] == ["G1"]
    dash.collapse()
    assert "uG1" not in dash._view["units"]


@pytest.mark.skipif(shutil.which("dot") is None, reason="needs Graphviz's dot")
def test_the_static_picture_shows_the_map_as_one_node_with_its_counts(comms, store_path):
    run = declare(store_path).run()
    dash = Dashboard(run)
    assert dash._bridge.join(30)
    page = dash.static_html()
    assert "clean[8]" in page and "7 succeeded, 1 failed" in page
    assert "phase 1 · extract · failed" in page and "phase 2 · load · succeeded" in page
    assert page.count('class="node"') == 2


def test_a_new_kernel_s_dashboard_folds_and_clusters_the_stored_run_the_same(comms,
                                                                            store_path):
    declare(store_path).run()
    fresh = nbflow.Flow("parts", store=store_path)   # what a restarted kernel declares first
    dash = Dashboard(flow=fresh)
    assert dash._graph["run"] is not None
    assert set(dash._view["units"]) == {"uM0"}
    assert {c["label"] for c in dash._view["clusters"].values()} == {"phase 1 · extract",
                                                                    "phase 2 · load"}
    assert dash._graph["resources"] == {8: {"db": 2}}
