"""The store's contract, run on a SQLite file and on a real PostgreSQL server.

Every test here takes ``backend_url`` (``tests/store/conftest.py``), so each
runs once per backend; ``-m "not postgres"`` keeps only the SQLite half.
"""

from __future__ import annotations

import threading

import pytest
from flowgen import failing, plans
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import create_engine, inspect, text

from nbflow import CycleError, Flow, StoreVersionError, UnknownDependencyError
from nbflow.core.replay import COLUMNS, replay
from nbflow.store import Store
from nbflow.store.open import locate
from nbflow.store.schema import SCHEMA_VERSION


class EventLog(list):
    """A sink that keeps the events exactly as the engine made them."""

    def events(self, batch):
        self.extend(batch)

    def logs(self, batch):
        pass


def etl_flow(url: str) -> Flow:
    flow = Flow("etl", store=url, executor="sync")

    @flow.task
    def load():
        print("loading 2 rows")
        return [1, 2]

    @flow.task
    def parse(load):
        raise ValueError(f"bad row {load[0]}")

    @flow.task
    def report(parse):
        return parse

    @flow.task(after=["load"])
    def audit():
        return "ok"

    return flow


def table_rows(store: Store, run_id: str) -> dict[str, list]:
    return {t["name"]: [t[c] for c in COLUMNS] for t in store.tasks(run_id)}


def dump(url: str) -> dict[str, list[str]]:
    """Every row of every table, to compare a database before and after."""
    engine = create_engine(locate(url).url)
    try:
        with engine.connect() as conn:
            return {t: sorted(repr(tuple(r)) for r in conn.execute(text(f'SELECT * FROM "{t}"')))
                    for t in sorted(inspect(conn).get_table_names())}
    finally:
        engine.dispose()


def test_a_run_is_recorded(backend_url):
    log = EventLog()
    flow = etl_flow(backend_url)
    run = flow.run(sinks=[log])
    store = flow.store
    [summary] = store.runs()
    assert (summary["id"], summary["flow"], summary["state"]) == (run.id, "etl", "failed")
    assert summary["counts"] == {"succeeded": 2, "failed": 1, "upstream_failed": 1}
    assert summary["finished"] is not None

    tasks = {t["name"]: t for t in store.tasks(run.id)}
    assert list(tasks) == ["load", "parse", "report", "audit"]
    assert {n: (t["state"], t["attempt"], t["level"]) for n, t in tasks.items()} == {
        "load": ("succeeded", 1, 0), "parse": ("failed", 1, 1),
        "report": ("upstream_failed", 0, 2), "audit": ("succeeded", 1, 1)}
    assert tasks["parse"]["error"] == "ValueError: bad row 1"
    assert tasks["report"]["deps"] == '["parse"]'

    # the log as stored is the log as the engine made it, details included
    assert store.events(run.id) == log
    assert table_rows(store, run.id) == replay(run.names, log)
    assert run.logs("load") == "loading 2 rows\n" and run.logs("audit") == ""

    status = run.status().set_index("task")
    assert status.loc["parse", "error"] == "ValueError: bad row 1"
    assert status.loc["report", "state"] == "upstream_failed"

    # a second connection (another kernel, the CLI) reads the same
    other = Store(backend_url)
    assert other.tasks(run.id) == store.tasks(run.id)
    assert other.events(run.id) == log


def test_the_users_exception_is_kept_and_reraised(backend_url):
    run = etl_flow(backend_url).run()
    with pytest.raises(ValueError, match="^bad row 1\n") as info:  # the note follows
        run.reraise()
    assert f"nbflow: raised by task 'parse' in run {run.id}" in info.value.__notes__
    with pytest.raises(ValueError, match="^bad row 1\n"):
        run.result("parse")
    assert run.result("audit") == "ok"


@pytest.mark.parametrize("mode", ["eager", "levels"])
def test_replaying_the_log_reproduces_the_task_table(backend_url, mode):
    # One flow and store for the whole property: each example is a new run.
    flow = Flow("property", store=backend_url, executor="sync")
    # "<lambda>" is refused even as an explicit name (api.py: reported)
    names = st.text(st.characters(codec="utf-8", exclude_characters="\x00"), min_size=1,
                    max_size=12).filter(lambda name: name != "<lambda>")

    @settings(max_examples=25, deadline=None)
    @given(plans(names=names), st.integers(1, 3))
    def check(plan, workers):
        flow.clear()
        for name in plan.order:
            flow.task(failing(plan.failures[name]), name=name, after=plan.deps[name],
                      retries=plan.retries[name])
        run = flow.run(mode=mode, workers=workers)
        rows = table_rows(flow.store, run.id)
        assert rows == replay(plan.order, flow.store.events(run.id))
        assert {n: (r[0], r[1]) for n, r in rows.items()} == plan.expected()

    check()


def test_two_stores_write_at_once(backend_url):
    """Two kernels recording runs into one database at the same time."""
    gate = threading.Barrier(2)
    flows = [Flow(f"f{k}", store=backend_url, executor="threads", workers=2) for k in range(2)]
    for flow in flows:
        for k in range(20):
            flow.task(lambda k=k: gate.wait(30) if k == 0 else k, name=f"t{k}",
                      after=[f"t{k - 1}"] if k % 2 else [])
    runs = [flow.run(background=True) for flow in flows]
    for run in runs:
        run.wait(60)
    for flow, run in zip(flows, runs):
        assert [t["state"] for t in flow.store.tasks(run.id)] == ["succeeded"] * 20
        assert table_rows(flow.store, run.id) == replay(run.names, flow.store.events(run.id))
    assert {r["flow"] for r in Store(backend_url).runs()} == {"f0", "f1"}


@pytest.mark.parametrize("mistake, error", [
    (lambda flow: flow.remove("load") or flow.task(lambda: [1], name="load", after=["report"]),
     CycleError),
    (lambda flow: flow.task(lambda laod: laod, name="extra"), UnknownDependencyError),
], ids=["cycle", "unknown parameter"])
def test_a_bad_flow_fails_before_touching_the_store(backend_url, mistake, error):
    flow = etl_flow(backend_url)
    flow.run()
    before = dump(backend_url)
    mistake(flow)
    with pytest.raises(error):
        flow.run()
    assert dump(backend_url) == before


def bump_schema_version(url: str, version: int) -> None:
    engine = create_engine(locate(url).url)
    with engine.begin() as conn:
        conn.execute(text("UPDATE meta SET value = :v WHERE key = 'schema_version'"),
                     {"v": str(version)})
    engine.dispose()


def test_a_newer_schema_is_refused_and_nothing_is_changed(backend_url):
    etl_flow(backend_url).run()
    bump_schema_version(backend_url, SCHEMA_VERSION + 1)
    before = dump(backend_url)
    message = (f"has schema version {SCHEMA_VERSION + 1}, written by a newer nbflow; this "
               f"nbflow understands up to version {SCHEMA_VERSION}. Upgrade nbflow "
               r"\(pip install -U nbflow\); the file was left untouched\.$")
    with pytest.raises(StoreVersionError, match=message):
        Store(backend_url)
    flow = Flow("later", store=backend_url, executor="sync")
    ran = []
    flow.task(lambda: ran.append(1), name="work")
    with pytest.raises(StoreVersionError, match=message):
        flow.run()
    assert ran == [] and dump(backend_url) == before
