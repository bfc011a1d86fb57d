"""A prune killed with SIGKILL at random moments loses nothing it keeps, leaves no
half-deleted run, and the next prune finishes its work."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import textwrap
import time

from sqlalchemy import func, select

import nbflow
from nbflow.store import Store
from nbflow.store.schema import dead_letters, events, logs, prune_queue, results, runs, tasks

PRUNER = textwrap.dedent("""
    import sys
    from nbflow.store import Store
    store = Store(sys.argv[1])
    print("go", flush=True)
    store.prune(keep=1)
""")


def orphans(store) -> dict[str, int]:
    """Rows of each table whose run is gone (a run deleted half-way)."""
    with store.engine.connect() as conn:
        ids = select(runs.c.id)
        return {t.name: conn.execute(select(func.count()).select_from(t)
                                     .where(t.c.run_id.not_in(ids))).scalar()
                for t in (events, tasks, logs, dead_letters, results)}


def test_a_prune_killed_at_random_moments_keeps_what_it_keeps(tmp_path, monkeypatch):
    folder = tmp_path / "results"
    monkeypatch.setenv("NBFLOW_RESULTS", str(folder))
    # Every result to a file, however small (they would travel with their event).
    monkeypatch.setattr("nbflow.results.INLINE_LIMIT", -1)
    path = str(tmp_path / "nbflow.db")
    store = Store(path)
    for version in range(6):
        flow = nbflow.Flow("etl", store=store)
        for i in range(800):
            flow.task(lambda i=i, v=version: (i, v), name=f"t{i}")
        flow.run()
    store.flush()
    newest = store.runs()[0]["id"]
    kept = {ev[7]["key"] + ".pkl" for ev in store.events(newest)
            if ev[5] == "succeeded" and ev[7].get("result") == "file"}
    assert len(kept) == 800
    then = time.time() - 3600
    for f in folder.iterdir():
        os.utime(f, (then, then))
    script = tmp_path / "pruner.py"
    script.write_text(PRUNER)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    chance = random.Random(9)
    kills = 0
    for _ in range(6):
        proc = subprocess.Popen([sys.executable, str(script), path], stdout=subprocess.PIPE,
                                text=True, env=env)
        assert proc.stdout.readline() == "go\n"
        time.sleep(chance.uniform(0, 0.4))
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            kills += 1
        proc.wait(60)
        proc.stdout.close()
        assert orphans(store) == dict.fromkeys(orphans(store), 0)
        assert newest in {r["id"] for r in store.runs()}
        assert kept <= {f.name for f in folder.iterdir()}
        assert [t["state"] for t in store.tasks(newest)] == ["succeeded"] * 800
    assert kills, "no prune was killed: the delays missed it"

    report = store.prune(keep=1)
    assert [r["id"] for r in store.runs()] == [newest]
    assert {f.name for f in folder.iterdir()} == kept
    with store.engine.connect() as conn:
        assert conn.execute(select(prune_queue.c.key)).all() == []
    assert report.skipped == []
