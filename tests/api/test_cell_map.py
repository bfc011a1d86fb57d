"""Mapped cells (``Flow.cell_map``, what ``%%task NAME --map ITEMS`` calls), without a
kernel: a dict stands for the notebook's namespace."""

from __future__ import annotations

import nbflow

CELL = "calls.append(path)\nif path == broken:\n    raise ValueError(path)\nsize = len(path)\n"


def declare(store_path: str, ns: dict) -> nbflow.Flow:
    flow = nbflow.Flow("cells", store=store_path)
    flow.cell_map("measure", CELL, ns, ns["files"], bind="path")
    flow.cell_task("report", "total = sum(size)", ns)
    return flow


def test_a_resumed_mapped_cell_restores_its_lists_and_reruns_only_what_is_missing(store_path):
    ns = {"files": ["a", "bb", "ccc"], "calls": [], "broken": "bb"}
    run = declare(store_path, ns).run()
    assert run.state == "failed" and run.task_state("measure") == "upstream_failed"
    assert "size" not in ns   # nothing half-collected reaches the notebook
    fresh = {"files": ["a", "bb", "ccc"], "calls": [], "broken": None}   # a new kernel
    again = declare(store_path, fresh).run(resume=True)
    assert again.state == "succeeded"
    assert fresh["calls"] == ["bb"]   # the items that succeeded were restored
    assert fresh["size"] == [1, 2, 3] and fresh["total"] == 6
    # Resumed once more, nothing runs, and the lists come back from the store.
    last = {"files": ["a", "bb", "ccc"], "calls": [], "broken": None}
    declare(store_path, last).run(resume=True)
    assert last["calls"] == [] and last["size"] == [1, 2, 3] and last["total"] == 6


def test_an_item_that_changed_runs_again_on_resume(store_path):
    ns = {"files": ["a", "bb"], "calls": [], "broken": None}
    declare(store_path, ns).run()
    changed = {"files": ["a", "zz"], "calls": [], "broken": None}
    declare(store_path, changed).run(resume=True)
    assert changed["calls"] == ["zz"] and changed["size"] == [1, 2]
