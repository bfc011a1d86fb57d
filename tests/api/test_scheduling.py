"""Scheduling through the public API: pools, groups and phases as declared, the
options' errors, the roll-up, the durations history, and the policy settings.

Real SQLite stores in the test's folder; the sync executor unless a test needs
threads.
"""

from __future__ import annotations

import json
import math
import threading
from datetime import datetime, timedelta

import pytest

import nbflow
from nbflow.core.rollup import by_group, rollup
from nbflow.policies import Aging


@pytest.fixture
def flow(store_path):
    return nbflow.Flow("sched", store=store_path, executor="sync")


def test_groups_and_phases_nest_into_one_path(flow):
    with flow.phase("extract"):
        flow.task(lambda: 1, name="a")
        with flow.group("api"):
            flow.task(lambda: 1, name="b")
            flow.task(lambda: 1, name="c", group="pages")
    flow.task(lambda: 1, name="d", group="misc/x")
    flow.task(lambda: 1, name="e")
    _, specs = flow.build()
    assert [(s.group, s.phase) for s in specs] == [
        ("extract", "extract"), ("extract/api", "extract"), ("extract/api/pages", "extract"),
        ("misc/x", None), (None, None)]
    assert flow.to_networkx().nodes["c"]["group"] == "extract/api/pages"


def test_bad_groups_and_phases_say_how_to_fix_them(flow):
    for bad in ("", "a//b", "/a", "  ", 3, "tab\there"):
        with pytest.raises(ValueError, match=r"^flow.group\(\): group must be a name, or names "
                                             r"joined by '/'"):
            with flow.group(bad):
                pass
        with pytest.raises(ValueError, match=r"^task 't': group must be a name, or names joined"):
            flow.task(lambda: 1, name="t", group=bad)
    with pytest.raises(ValueError, match=r"^flow.phase: 'a/b' has a '/': a phase is one name"):
        with flow.phase("a/b"):
            pass
    with flow.phase("load"):
        with pytest.raises(ValueError, match=r"^flow.phase\('more'\) inside flow.phase\('load'\): "
                                             r"phases do not nest, they run one after another "
                                             r"at the top. Close the phase first, or use "
                                             r"flow.group\('more'\) for a part of it$"):
            with flow.phase("more"):
                pass
        with pytest.raises(ValueError, match=r"^task 'x': phase='other' inside "
                                             r"flow.phase\('load'\); a task is in one phase"):
            flow.task(lambda: 1, name="x", phase="other")
    with flow.group("g"):
        with pytest.raises(ValueError, match=r"^flow.phase\('p'\) inside flow.group\('g'\)"):
            with flow.phase("p"):
                pass
    assert flow._scope == []   # every with block left cleanly, raising or not


@pytest.mark.parametrize("option, value, message", [
    ("expected", -1, r"expected must be a number of seconds from 0 to 31536000, or None, got -1; "
                     r"use None to let the store's history tell\."),
    ("expected", float("inf"), "expected must be a number of seconds from 0 to 31536000"),
    ("expected", "5", "expected must be a number of seconds from 0 to 31536000"),
    ("deadline", 0, r"deadline must be seconds after the run starts \(above 0, at most a year\), "
                    r"a datetime, or None, got 0"),
    ("deadline", "soon", "deadline must be seconds after"),
    ("resources", ["db"], r"resources must be a dict of pool name to slots, e\.g\. \{'db': 1\}"),
    ("resources", {"db": 0}, r"resources must be a dict of pool name to slots, e\.g\. "
                             r"\{'db': 1\} \(slots are whole numbers >= 1\), got \{'db': 0\}; "
                             r"declare the pool with flow\.pool"),
    ("resources", {"db": True}, r"resources must .*, got \{'db': True\}"),
    ("resources", {"": 1}, r"resources must .*, got \{'': 1\}"),
])
def test_bad_scheduling_options_name_the_task_and_the_fix(flow, option, value, message):
    with pytest.raises(ValueError, match=rf"^task 't': {message}"):
        flow.task(lambda: 1, name="t", **{option: value})


def test_an_unknown_option_lists_the_known_ones(flow):
    with pytest.raises(TypeError, match=r"unexpected keyword argument 'resource'"):
        flow.task(lambda: 1, name="t", resource={"db": 1})
    with pytest.raises(TypeError, match=r"^task 't' got unknown option\(s\) resource; the "
                                        r"options are: .*expected, deadline, resources, group"):
        flow.cell_task("t", "x = 1", {}, resource={"db": 1})


def test_pools_are_checked_before_the_run_is_recorded(flow):
    with pytest.raises(ValueError, match=r"^flow.pool: the name must be a non-empty printable"):
        flow.pool("", slots=1)
    for slots in (0, -2, 1.5, True, "2"):
        with pytest.raises(ValueError, match=rf"^pool 'db': slots must be a whole number >= 1, "
                                             rf"got {slots!r}; e.g. flow.pool\('db', slots=2\)$"):
            flow.pool("db", slots=slots)
    flow.task(lambda: 1, name="load", resources={"db": 2, "dbb": 1})
    flow.pool("db", slots=2)
    with pytest.raises(ValueError, match=r"^task 'load' asks for pool 'dbb', which does not "
                                         r"exist \(pools: db \(2 slots\)\)"):
        flow.run()
    flow.pool("dbb", slots=1)
    flow.pool("db", slots=1)
    with pytest.raises(ValueError, match=r"^task 'load' asks for 2 slots of pool 'db', which "
                                         r"has 1"):
        flow.run()
    assert flow.store.runs() == []   # nothing was recorded
    flow.pool("db", slots=2)
    assert flow.run().state == "succeeded"


def test_a_pool_holds_threads_back(store_path):
    flow = nbflow.Flow("pooled", store=store_path)
    flow.pool("db", slots=2)
    lock, now, peak = threading.Lock(), [0], [0]
    barrier = threading.Event()

    def use():
        with lock:
            now[0] += 1
            peak[0] = max(peak[0], now[0])
        barrier.wait(0.05)
        with lock:
            now[0] -= 1

    for k in range(8):
        flow.task(use, name=f"q{k}", resources={"db": 1})
    run = flow.run(workers=6)
    assert run.state == "succeeded" and peak[0] == 2


def test_status_shows_groups_pools_expected_and_lateness(flow):
    flow.pool("db", slots=1)
    with flow.phase("extract"):
        flow.task(lambda: 1, name="a", resources={"db": 1}, expected=2.5)
        flow.task(lambda: 1, name="b", group="x")
    with flow.phase("load"):
        flow.task(lambda: 1, name="late", deadline=datetime.now() - timedelta(seconds=5))
        flow.task(lambda: 1, name="early", deadline=3600)
    run = flow.run(policy="sjf")
    df = run.status()
    assert list(df["group"]) == ["extract", "extract/x", "load", "load"]
    assert list(df["resources"]) == ["db=1", "", "", ""]
    assert list(df["expected"]) == [2.5, 1.0, 1.0, 1.0]
    assert df["late"][2] >= 5 and math.isnan(df["late"][3]) and math.isnan(df["late"][0])
    missed = [ev for ev in run.store.events(run.id) if ev[4] == ev[5]]
    assert [(ev[2], ev[5]) for ev in missed] == [("late", "pending")]
    assert missed[0][7]["late"] >= 5
    groups = run.status(by="group")
    assert list(groups["group"]) == ["extract", "extract/x", "load"]
    assert list(groups["state"]) == ["succeeded"] * 3 and list(groups["tasks"]) == [2, 1, 2]
    with pytest.raises(ValueError, match=r"^status\(by='tag'\): by must be None"):
        run.status(by="tag")
    params = json.loads(run.store.run(run.id)["params"])
    assert params["groups"] == {"a": "extract", "b": "extract/x", "late": "load",
                                "early": "load"}
    assert params["pools"] == {"db": 1} and params["policy"] == "sjf"


@pytest.mark.parametrize("states, rolled", [
    (["succeeded", "failed", "running"], "failed"),
    (["succeeded", "upstream_failed"], "failed"),
    (["succeeded", "running"], "running"),
    (["retrying", "pending"], "running"),
    (["succeeded", "pending"], "running"),
    (["cancelled", "succeeded"], "cancelled"),
    (["pending", "ready"], "pending"),
    (["succeeded", "skipped"], "succeeded"),
    (["skipped", "skipped"], "skipped"),
    ([], "pending"),
])
def test_the_roll_up_rule(states, rolled):
    assert rollup(states) == rolled


def test_by_group_counts_each_task_in_every_parent_group():
    rows = by_group(["a/b", "a", None, "a/b/c"], ["failed", "succeeded", "succeeded", "running"])
    assert rows == [
        {"group": "a", "state": "failed", "tasks": 3, "failed": 1, "succeeded": 1, "running": 1},
        {"group": "a/b", "state": "failed", "tasks": 2, "failed": 1, "running": 1},
        {"group": "(no group)", "state": "succeeded", "tasks": 1, "succeeded": 1},
        {"group": "a/b/c", "state": "running", "tasks": 1, "running": 1}]


def test_sjf_learns_durations_from_the_store_and_forgets_edited_code(flow):
    import time
    flow.task(lambda: time.sleep(0.05), name="slow")
    flow.task(lambda: None, name="quick")
    for _ in range(2):
        flow.run()
    run = flow.run(policy="sjf")
    info = run._engine.info
    assert info.source == ["history", "history"]
    assert info.expected[0] >= 0.05 > info.expected[1]
    assert run.status()["expected"][0] == info.expected[0]
    # fifo would start slow first (declared first); sjf starts quick
    assert [e[2] for e in run.store.events(run.id) if e[5] == "running"] == ["quick", "slow"]
    flow.task(lambda: time.sleep(0.01), name="slow")   # edited: same name, other code
    assert flow.run(policy="sjf")._engine.info.source == ["default", "history"]


def test_only_the_latest_runs_keep_their_durations(flow):
    from sqlalchemy import func, select

    from nbflow.store.history import KEEP
    from nbflow.store.schema import durations
    flow.task(lambda: None, name="t")
    for _ in range(KEEP + 3):
        flow.run()
    with flow.store.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(durations)).scalar() == KEEP


def test_expected_durations_are_the_medians_of_the_runs_each_task_ran_in(flow):
    import statistics

    from nbflow.store.history import KEEP, History
    failing = {"now": True}

    def flaky():
        if failing["now"]:
            raise ValueError("not this time")

    flow.task(lambda: None, name="steady")
    flow.task(flaky, name="flaky")
    graph = flow.build()[0]

    def medians(took):   # by hand, over the runs each task succeeded in
        return {name: statistics.median(ts) for name, ts in
                zip(graph.names, [[t for t in col if t is not None] for col in zip(*took)]) if ts}

    took = []
    for fail in (True, False, True, False, False):   # flaky did not run in two of them
        failing["now"] = fail
        took.append(list(flow.run()._engine.took))
    assert flow.history.expected(graph, flow._bases) == medians(took)
    # Read back from the store by another kernel's History: the same.
    assert History(flow.store, flow.name).expected(graph, flow._bases) == medians(took)
    for _ in range(KEEP):   # every task ran in every kept run
        took.append(list(flow.run()._engine.took))
    assert flow.history.expected(graph, flow._bases) == medians(took[-KEEP:])
    assert History(flow.store, flow.name).expected(graph, flow._bases) == medians(took[-KEEP:])


def test_a_runs_durations_are_written_by_the_store_writer_not_the_kernel(flow):
    from sqlalchemy import event, func, select

    from nbflow.store.schema import durations
    flow.task(lambda: None, name="t")
    flow.run()   # opens the store
    seen = []

    def statement(_conn, _cursor, sql, *_args):
        seen.append(sql)

    event.listen(flow.store.engine, "before_cursor_execute", statement)
    try:
        flow.run()
    finally:
        event.remove(flow.store.engine, "before_cursor_execute", statement)
    assert seen, "the kernel's connection wrote the run's row and its end"
    assert not [sql for sql in seen if "durations" in sql]
    with flow.store.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(durations)).scalar() == 2


def test_policy_settings_flow_run_and_environment(flow, monkeypatch):
    flow.task(lambda: 1, name="t")
    runs = flow.store.run
    assert json.loads(runs(flow.run().id)["params"])["policy"] == "priority"
    monkeypatch.setenv("NBFLOW_POLICY", "fifo")
    assert json.loads(runs(flow.run().id)["params"])["policy"] == "fifo"
    flow.policy = Aging(rate=2.0)
    params = json.loads(runs(flow.run(inherit_priority=True).id)["params"])
    assert (params["policy"], params["inherit_priority"]) == ("Aging(rate=2, cap=None)", True)
    assert json.loads(runs(flow.run(policy="edf").id)["params"])["policy"] == "edf"
    monkeypatch.setenv("NBFLOW_POLICY", "lifo")
    flow.policy = None
    with pytest.raises(ValueError, match=r"^run of flow 'sched': policy must be one of 'aging', "
                                         r"'critical_path', 'edf', 'fifo', 'priority', 'sjf', "
                                         r"or a policy object .*, got 'lifo'"):
        flow.run()
    with pytest.raises(ValueError, match=r"^Flow 'x': policy must be one of .*, got 'shortest'"):
        nbflow.Flow("x", policy="shortest")
    with pytest.raises(TypeError, match=r"^Flow 'x': policy must be one of .*, got 3"):
        nbflow.Flow("x", policy=3)


def test_levels_mode_and_phases_do_not_mix(flow):
    with flow.phase("p"):
        flow.task(lambda: 1, name="t")
    with pytest.raises(ValueError, match="^mode='levels' cannot run phases"):
        flow.run(mode="levels")
    assert flow.store.runs() == []


@pytest.mark.postgres
def test_the_durations_history_on_postgresql(new_pg_url):
    import time
    flow = nbflow.Flow("pg-sched", store=new_pg_url, executor="sync")
    flow.task(lambda: time.sleep(0.03), name="slow")
    flow.task(lambda: None, name="quick")
    flow.run()
    fresh = nbflow.Flow("pg-sched", store=new_pg_url, executor="sync")   # another kernel
    fresh.task(lambda: time.sleep(0.03), name="slow")
    fresh.task(lambda: None, name="quick")
    run = fresh.run(policy="sjf")
    assert run._engine.info.source == ["history", "history"]
    assert [e[2] for e in run.store.events(run.id) if e[5] == "running"] == ["quick", "slow"]
