"""Four processes, each driving its own runs of 2,000 tasks, on one store at once.

Every event is persisted exactly once, no "database is locked" (or any other
error) reaches a user, and ``nbflow runs`` keeps answering while they write.
The timing of the same load is ``python -m benchmarks.scale --only shared``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))   # benchmarks/ is not installed

from benchmarks.load import shared_store
from nbflow.store import Store

PROCS, RUNS, TASKS = 4, 2, 2000


@pytest.mark.slow
def test_four_processes_share_one_store(backend_url):
    done = shared_store(backend_url, procs=PROCS, runs=RUNS, tasks=TASKS)
    for report in done["reports"]:
        assert report["returncode"] == 0, report["stderr"]
        assert "locked" not in report["stderr"].lower(), report["stderr"]
        assert report["result"]["states"] == ["succeeded"] * RUNS
    reads = done["reads"]
    while reads and "there is no nbflow store" in reads[0][1]:   # before a driver made it
        reads = reads[1:]
    assert len(reads) > 5, "the readers hardly ran while the writers wrote"
    for code, text in reads:
        assert code == 0 and "locked" not in text.lower(), text

    store = Store(backend_url)
    ids = [r for report in done["reports"] for r in report["result"]["runs"]]
    listed = {row["id"]: row for row in store.runs(limit=100)}
    assert sorted(listed) == sorted(ids)
    for run_id in ids:
        assert listed[run_id]["state"] == "succeeded"
        assert listed[run_id]["counts"] == {"succeeded": TASKS}
        log = store.events(run_id)
        # 3 events a task (ready, running, succeeded), numbered without gap or repeat
        assert [ev[1] for ev in log] == list(range(3 * TASKS))
        per_task: dict[str, list[str]] = {}
        for ev in log:
            per_task.setdefault(ev[2], []).append(ev[5])
        assert len(per_task) == TASKS
        assert set(map(tuple, per_task.values())) == {("ready", "running", "succeeded")}


OPEN_AT = """
import sys, time
time.sleep(max(float(sys.argv[2]) - time.time(), 0))
from nbflow.store import Store
Store(sys.argv[1]).close()
"""


@pytest.mark.slow
def test_processes_creating_one_new_store_at_the_same_moment_all_open_it(backend_url):
    import subprocess
    import time
    at = time.time() + 3   # past every interpreter's start-up, so they all open together
    procs = [subprocess.Popen([sys.executable, "-c", OPEN_AT, backend_url, str(at)],
                              stderr=subprocess.PIPE, text=True) for _ in range(6)]
    errors = [p.communicate(timeout=120)[1] for p in procs]
    assert [p.returncode for p in procs] == [0] * 6, "\n".join(errors)
    assert Store(backend_url).runs() == []
