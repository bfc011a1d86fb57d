"""The server extension's REST API against stores that real runs filled."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import textwrap
import time

import pytest
from jupyter_server.auth import Authorizer
from tornado.httpclient import HTTPClientError

import nbflow
from nbflow.store.schema import SCHEMA_VERSION


def fill(root, notebook="work/etl.ipynb", monkeypatch=None, flow="etl", store=None):
    """Run a flow as a kernel of ``notebook`` would: store beside it, cells recorded."""
    path = root / notebook
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("{}")
    monkeypatch.setenv("JPY_SESSION_NAME", str(path))
    f = nbflow.Flow(flow, store=store or str(path.parent / ".nbflow" / "nbflow.db"))
    f.cell_task("load", "print('<b>loaded</b>'); rows = [1, 2]", {}, cell_id="cell-load")
    f.cell_task("check", "raise ValueError('<img src=x onerror=alert(1)>')\nx = rows", {},
                cell_id="cell-check")

    @f.task
    def free():   # declared outside a cell: no cell id
        return 1

    run = f.run()
    f.store.close()
    return run


async def get(jp_fetch, *path, **params):
    response = await jp_fetch("nbflow", "api", *path, params=params)
    assert response.headers["Content-Type"].startswith("application/json")
    return json.loads(response.body)


async def refused(jp_fetch, *path, status, reason, headers=None, **params):
    with pytest.raises(HTTPClientError) as info:
        await jp_fetch("nbflow", "api", *path, params=params, headers=headers)
    assert info.value.code == status
    body = json.loads(info.value.response.body)
    assert body["reason"] == reason, body
    assert "Traceback" not in body["message"] and not body.get("traceback")
    return body["message"]


async def test_every_endpoint_reads_a_real_run(jp_fetch, jp_root_dir, monkeypatch):
    run = fill(jp_root_dir, monkeypatch=monkeypatch)
    listed = await get(jp_fetch, "runs", notebook="work/etl.ipynb")
    assert listed["store"] == "work/.nbflow/nbflow.db"
    [row] = listed["runs"]
    assert row["id"] == run.id and row["state"] == "failed"
    assert row["notebook"] == "work/etl.ipynb" and row["owner_alive"] is None
    assert row["counts"] == {"succeeded": 2, "failed": 1}

    one = (await get(jp_fetch, "runs", run.id, notebook="work/etl.ipynb"))["run"]
    assert [(t["name"], t["cell_id"], t["state"]) for t in one["tasks"]] == [
        ("load", "cell-load", "succeeded"), ("check", "cell-check", "failed"),
        ("free", None, "succeeded")]
    assert one["tasks"][1]["deps"] == ["load"]

    events = await get(jp_fetch, "runs", run.id, "events", store="work/.nbflow/nbflow.db")
    seqs = [e["seq"] for e in events["events"]]
    assert seqs == list(range(len(seqs))) and events["last"] == seqs[-1]
    later = await get(jp_fetch, "runs", run.id, "events", store="work/.nbflow/nbflow.db",
                      since=str(seqs[-3]))
    assert [e["seq"] for e in later["events"]] == seqs[-2:]

    logs = await get(jp_fetch, "runs", run.id, "logs", task="load",
                     store="work/.nbflow/nbflow.db")
    assert [(r["task"], r["stdout"]) for r in logs["logs"]] == [("load", "<b>loaded</b>\n")]

    cells = await get(jp_fetch, "cells", notebook="work/etl.ipynb")
    assert set(cells["cells"]) == {"cell-load", "cell-check"}
    [check] = cells["cells"]["cell-check"]
    assert check["state"] == "failed" and check["error"].startswith("ValueError: <img")


async def test_the_latest_run_of_each_flow_paints_the_cells(jp_fetch, jp_root_dir, monkeypatch):
    first = fill(jp_root_dir, monkeypatch=monkeypatch)
    second = fill(jp_root_dir, monkeypatch=monkeypatch)
    fill(jp_root_dir, notebook="work/other.ipynb", monkeypatch=monkeypatch)
    cells = await get(jp_fetch, "cells", notebook="work/etl.ipynb")
    assert [r["id"] for r in cells["runs"]] == [second.id]
    assert {t["run"] for ts in cells["cells"].values() for t in ts} == {second.id}
    mine = await get(jp_fetch, "runs", notebook="work/etl.ipynb")
    assert [r["id"] for r in mine["runs"]] == [second.id, first.id]
    every = await get(jp_fetch, "runs", notebook="work/etl.ipynb", all="1")
    assert len(every["runs"]) == 3


async def test_requests_without_credentials_are_refused(jp_fetch, jp_root_dir, monkeypatch):
    run = fill(jp_root_dir, monkeypatch=monkeypatch)
    for path in (["runs"], ["runs", run.id], ["runs", run.id, "events"],
                 ["runs", run.id, "logs"], ["cells"]):
        with pytest.raises(HTTPClientError) as info:
            await jp_fetch("nbflow", "api", *path, params={"notebook": "work/etl.ipynb"},
                           headers={"Authorization": ""})
        assert info.value.code == 403


class DenyAll(Authorizer):
    """An authorizer that refuses everything to everyone."""

    def is_authorized(self, handler, user, action, resource) -> bool:
        return False


@pytest.fixture
def deny_all(jp_server_config):
    jp_server_config["ServerApp"]["authorizer_class"] = DenyAll
    return jp_server_config


async def test_a_deny_all_authorizer_refuses_with_credentials(deny_all, jp_fetch, jp_root_dir,
                                                              monkeypatch):
    fill(jp_root_dir, monkeypatch=monkeypatch)
    with pytest.raises(HTTPClientError) as info:
        await jp_fetch("nbflow", "api", "runs", params={"notebook": "work/etl.ipynb"})
    assert info.value.code == 403


@pytest.mark.parametrize("params", [
    {"store": "../outside.db"}, {"store": "/etc/passwd"}, {"store": "work/../../x.db"},
    {"notebook": "../../etc/x.ipynb"}, {"store": "..\\outside.db"}, {"store": "link/nbflow.db"},
])
async def test_paths_outside_the_root_are_refused(jp_fetch, jp_root_dir, tmp_path, params):
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    nbflow.Flow("x", store=str(outside / "nbflow.db")).store.close()
    os.symlink(outside, jp_root_dir / "link")
    message = await refused(jp_fetch, "runs", status=403, reason="outside-root", **params)
    assert message.endswith("relative to the root, as the file browser shows it")


async def test_a_missing_store_is_a_404_and_is_not_created(jp_fetch, jp_root_dir):
    message = await refused(jp_fetch, "runs", status=404, reason="missing",
                            notebook="nb.ipynb")
    assert "no nbflow store at '.nbflow/nbflow.db': run a flow" in message
    assert not (jp_root_dir / ".nbflow").exists()
    await refused(jp_fetch, "cells", status=400, reason="bad-request")
    await refused(jp_fetch, "runs", status=400, reason="bad-request", limit="lots")


async def test_a_missing_run_is_a_404(jp_fetch, jp_root_dir, monkeypatch):
    fill(jp_root_dir, monkeypatch=monkeypatch)
    message = await refused(jp_fetch, "runs", "nope", "events", status=404, reason="no-run",
                            notebook="work/etl.ipynb")
    assert "has no run 'nope'" in message


async def test_damaged_newer_and_locked_stores_get_clear_errors(jp_fetch, jp_root_dir,
                                                                monkeypatch):
    (jp_root_dir / "junk.db").write_bytes(b"this is not a database" * 100)
    message = await refused(jp_fetch, "runs", status=422, reason="corrupt", store="junk.db")
    assert "damaged" in message and "restore it from a backup" in message

    plain = sqlite3.connect(jp_root_dir / "plain.db")
    plain.execute("CREATE TABLE t (x)")
    plain.commit()
    plain.close()
    await refused(jp_fetch, "runs", status=422, reason="corrupt", store="plain.db")

    fill(jp_root_dir, monkeypatch=monkeypatch)
    db = jp_root_dir / "work" / ".nbflow" / "nbflow.db"
    before = db.read_bytes()
    conn = sqlite3.connect(db)
    conn.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'",
                 (str(SCHEMA_VERSION + 1),))
    conn.commit()
    message = await refused(jp_fetch, "runs", status=409, reason="newer",
                            notebook="work/etl.ipynb")
    assert message.endswith("upgrade nbflow in the environment that runs JupyterLab")
    conn.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(SCHEMA_VERSION),))
    conn.commit()
    # A writer in exclusive locking mode keeps even WAL readers out.
    conn.execute("PRAGMA locking_mode = EXCLUSIVE")
    conn.execute("BEGIN EXCLUSIVE")
    conn.execute("UPDATE meta SET value = value")
    try:
        message = await refused(jp_fetch, "runs", status=503, reason="locked",
                                notebook="work/etl.ipynb")
        assert "try again in a moment" in message
    finally:
        conn.rollback()
        conn.close()
    assert len(db.read_bytes()) == len(before)


async def test_an_older_store_reads_with_no_cells(jp_fetch, jp_root_dir, monkeypatch):
    run = fill(jp_root_dir, monkeypatch=monkeypatch)
    conn = sqlite3.connect(jp_root_dir / "work" / ".nbflow" / "nbflow.db")
    conn.execute("ALTER TABLE tasks DROP COLUMN cell_id")
    conn.execute("ALTER TABLE runs DROP COLUMN notebook")
    conn.execute("UPDATE meta SET value = '2' WHERE key = 'schema_version'")
    conn.commit()
    conn.close()
    store = "work/.nbflow/nbflow.db"
    [row] = (await get(jp_fetch, "runs", store=store))["runs"]
    assert row["id"] == run.id and row["notebook"] is None
    tasks = (await get(jp_fetch, "runs", run.id, store=store))["run"]["tasks"]
    assert {t["cell_id"] for t in tasks} == {None}
    assert (await get(jp_fetch, "cells", notebook="work/etl.ipynb")) == {
        "runs": [], "cells": {}, "store": store}
    # Still version 2: the server never upgrades (or otherwise writes) a store.
    conn = sqlite3.connect(jp_root_dir / "work" / ".nbflow" / "nbflow.db")
    assert conn.execute("SELECT value FROM meta").fetchone() == ("2",)
    conn.close()


async def test_text_that_is_not_utf8_does_not_break_an_answer(jp_fetch, jp_root_dir,
                                                              monkeypatch):
    run = fill(jp_root_dir, monkeypatch=monkeypatch)
    conn = sqlite3.connect(jp_root_dir / "work" / ".nbflow" / "nbflow.db")
    conn.execute("UPDATE logs SET stdout = CAST(X'ff00fe41' AS TEXT)")
    conn.commit()
    conn.close()
    logs = await get(jp_fetch, "runs", run.id, "logs", notebook="work/etl.ipynb")
    assert logs["logs"][0]["stdout"] == "\ufffd\x00\ufffdA"


WRITER = textwrap.dedent("""
    import os, sys, time
    import nbflow
    flow = nbflow.Flow("busy", store=sys.argv[1])
    for i in range(int(sys.argv[2])):
        flow.task(lambda: time.sleep(0.002), name=f"t{i}")
    run = flow.run(workers=4)
    print(run.id, flush=True)
""")


@pytest.mark.slow
async def test_a_poller_sees_every_event_exactly_once_while_a_kernel_writes(
        jp_fetch, jp_root_dir):
    import asyncio
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(jp_root_dir / "busy.db"), "300"],
                              env=env, stdout=subprocess.PIPE, text=True)
    seen: list[int] = []
    run_id = None
    try:
        while run_id is None:   # the run appears once the writer created it
            try:
                runs = (await get(jp_fetch, "runs", store="busy.db"))["runs"]
            except HTTPClientError:
                runs = []
            run_id = runs[0]["id"] if runs else None
            await asyncio.sleep(0.01)
        since, polls = -1, 0
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            body = await get(jp_fetch, "runs", run_id, "events", store="busy.db",
                             since=str(since))
            seen += [e["seq"] for e in body["events"]]
            since, polls = body["last"], polls + 1
            if writer.poll() is not None and not body["events"]:
                break
            await asyncio.sleep(0.005)
        assert writer.wait(60) == 0
    finally:
        writer.kill()
    store = nbflow.store.Store(str(jp_root_dir / "busy.db"))
    total = len(store.events(run_id))
    store.close()
    assert polls > 3   # it really polled while the run was being written
    assert seen == list(range(total)) and total >= 300 * 3


def test_no_endpoint_is_left_unauthenticated(jp_serverapp):
    """What jupyter_server checks (and warns about) when the extension adds its routes."""
    from nbflow.server.handlers import routes
    app = jp_serverapp.web_app
    assert [app._check_handler_auth(pattern, handler) for pattern, handler in routes()] == (
        [[]] * len(routes()))
    assert "nbflow" in jp_serverapp.extension_manager.extensions


def test_a_run_whose_kernel_process_ended_is_not_alive_at_once():
    from nbflow.server.reader import OWNER_TTL, owner_alive
    from nbflow.store.leases import host_identity
    ended = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                           capture_output=True, text=True, check=True)
    now = time.time()
    row = {"state": "running", "host": host_identity(), "pid": int(ended.stdout),
           "heartbeat": now}
    assert owner_alive(row, now) is False   # its heartbeat is fresh, but it is gone
    assert owner_alive({**row, "pid": os.getpid()}, now) is True
    elsewhere = {**row, "host": "another machine"}   # there only the heartbeat tells
    assert owner_alive(elsewhere, now) is True
    assert owner_alive({**elsewhere, "heartbeat": now - OWNER_TTL - 1}, now) is False
    assert owner_alive({**row, "state": "succeeded"}, now) is None
