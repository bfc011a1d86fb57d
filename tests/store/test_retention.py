"""Retention: ``store.prune()`` / ``flow.prune()`` on real runs, then the rows and files left.

Every test makes its runs with the API on a real store (a SQLite file, or a
database on the session's PostgreSQL server), prunes, and reads the tables
and the results folder directly.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
import time
import warnings
from pathlib import Path

import pytest
from sqlalchemy import select, update

import nbflow
from nbflow.results import INLINE_LIMIT
from nbflow.store import Store, resultdir, vacuum
from nbflow.store.schema import dead_letters, events, logs, prune_queue, results, runs, tasks

HOUR = 3600.0


BIG = INLINE_LIMIT   # items: a pickle of BIG of them is over the inline limit


@pytest.fixture
def folder(tmp_path, monkeypatch) -> Path:
    """The results folder of the test's store, whatever its backend."""
    monkeypatch.setenv("NBFLOW_RESULTS", str(tmp_path / "results"))
    return tmp_path / "results"


@pytest.fixture
def store(backend_url, folder) -> Store:
    return Store(backend_url)


def versioned(store, version: int, name: str = "etl") -> nbflow.Flow:
    """A flow whose ``changing`` and ``cached`` tasks get new keys with each ``version``
    (a notebook whose code changed), while ``fixed`` keeps its key in every run."""
    flow = nbflow.Flow(name, store=store)

    # Results big enough to be saved in files (small ones travel with their event).
    @flow.task
    def fixed():
        return "the same in every run " * BIG

    @flow.task
    def changing(v=version):
        print(f"version {v}")
        return [v] * BIG

    @flow.task(cache=True)
    def cached(changing):
        return [sum(changing)] * BIG

    @flow.task
    def broken(fixed, v=version):
        raise RuntimeError(f"broken {v}")

    return flow


def make_runs(store, n: int, name: str = "etl", start: int = 0) -> list[str]:
    ids = [versioned(store, start + i, name).run().id for i in range(n)]
    store.flush()
    return ids


def age(folder: Path, seconds: float = HOUR) -> None:
    """Make every file in ``folder`` look ``seconds`` old (results of runs long past)."""
    then = time.time() - seconds
    for f in folder.iterdir():
        os.utime(f, (then, then), follow_symlinks=False)


def keys_saved(store, run_id: str) -> set[str]:
    """The keys whose result file ``run_id`` saved."""
    return {ev[7]["key"] for ev in store.events(run_id)
            if ev[5] == "succeeded" and (ev[7] or {}).get("result") == "file"}


def keys_named(store, run_id: str) -> set[str]:
    """The keys the successes of ``run_id`` name, restored ones included."""
    return {ev[7]["key"] for ev in store.events(run_id)
            if ev[5] == "succeeded" and "key" in (ev[7] or {})}


def rows_of(store, run_ids) -> dict[str, int]:
    """Rows per table that belong to ``run_ids``."""
    with store.engine.connect() as conn:
        out = {t.name: len(conn.execute(select(t.c.run_id).where(t.c.run_id.in_(run_ids))).all())
               for t in (events, tasks, logs, dead_letters, results)}
        out["runs"] = len(conn.execute(select(runs.c.id).where(runs.c.id.in_(run_ids))).all())
    return out


def files(folder: Path) -> set[str]:
    return {p.name for p in folder.iterdir()} if folder.exists() else set()


def test_keep_n_deletes_older_runs_rows_and_the_files_only_they_name(store, folder):
    old = make_runs(store, 3)
    kept = make_runs(store, 2, start=3)
    other = make_runs(store, 1, name="other", start=50)
    same_code = make_runs(store, 1, name="same-code", start=1)  # keys do not name the flow
    age(folder)
    before = rows_of(store, old)
    assert before["logs"] and before["dead_letters"] and before["results"], before
    shared = keys_saved(store, old[0]) & keys_saved(store, kept[0])
    assert len(shared) == 1  # the "fixed" task's file, named by old and kept runs alike
    only_old = set().union(*(keys_saved(store, r) for r in old)) - shared \
        - keys_named(store, same_code[0])

    report = store.prune(keep=2)

    assert sorted(r["id"] for r in report.runs) == sorted(old)
    assert rows_of(store, old) == dict.fromkeys(before, 0)
    assert report.rows == before
    assert [r["id"] for r in store.runs()] == [same_code[0], other[0], *reversed(kept)]
    left = files(folder)
    assert not {k + ".pkl" for k in only_old} & left
    for run_id in kept + other + same_code:
        assert {k + ".pkl" for k in keys_saved(store, run_id)} <= left
    assert report.files == len(only_old) and report.file_bytes > 0
    with store.engine.connect() as conn:
        assert conn.execute(select(prune_queue.c.key)).all() == []


def test_a_dry_run_changes_nothing_and_says_what_the_prune_then_does(store, folder):
    make_runs(store, 4)
    age(folder)
    with store.engine.connect() as conn:
        snapshot = {t: conn.execute(select(t)).all() for t in (runs, events, tasks, logs)}
    listing = files(folder)

    dry = store.prune(keep=1, dry_run=True)

    with store.engine.connect() as conn:
        assert {t: conn.execute(select(t)).all() for t in snapshot} == snapshot
    assert files(folder) == listing
    real = store.prune(keep=1)
    assert (dry.dry_run, real.dry_run) == (True, False)
    assert dry.runs == real.runs and len(dry.runs) == 3
    assert dry.rows == real.rows and dry.log_bytes == real.log_bytes > 0
    assert (dry.files, dry.file_bytes) == (real.files, real.file_bytes) != (0, 0)


def test_a_cutoff_deletes_old_runs_and_a_count_with_it_keeps_the_last_n(store, folder):
    ids = make_runs(store, 4)
    with store.engine.begin() as conn:   # the first three ran 40, 39 and 38 days ago
        for i, run_id in enumerate(ids[:3]):
            conn.execute(update(runs).where(runs.c.id == run_id)
                         .values(created=time.time() - (40 - i) * 86400))
    assert store.prune(keep=3, older_than="30d").runs[0]["id"] == ids[0]
    assert [r["id"] for r in store.prune(before="2000-01-01").runs] == []
    report = store.prune(older_than=30 * 86400.0)
    assert [r["id"] for r in report.runs] == [ids[2], ids[1]]
    assert [r["id"] for r in store.runs()] == [ids[3]]


def test_flow_prune_touches_only_its_flow_and_without_options_keeps_the_default(store, folder):
    make_runs(store, 3, name="a")
    b = make_runs(store, 2, name="b")
    flow = versioned(store, 0, name="b")
    report = flow.prune(keep=0)
    assert sorted(r["id"] for r in report.runs) == sorted(b)
    assert {r["flow"] for r in store.runs()} == {"a"}
    # The default keeps the last 50 runs and those of the last 30 days: all of these.
    assert store.prune().runs == []
    assert len(store.runs()) == 3


def test_a_live_run_is_never_touched_and_a_dead_owners_run_goes(store, folder):
    old = make_runs(store, 1)
    go = threading.Event()
    flow = nbflow.Flow("etl", store=store)

    @flow.task
    def waits():
        assert go.wait(60)
        return "done"

    live = flow.run(background=True)
    while live.task_state("waits") != "running":
        time.sleep(0.01)
    # A run another kernel left running: its lease is live while its heartbeat is fresh.
    elsewhere = make_runs(store, 2)
    with store.engine.begin() as conn:
        conn.execute(update(runs).where(runs.c.id == elsewhere[0])
                     .values(state="running", owner="another-engine", host="elsewhere",
                             heartbeat=time.time()))
        conn.execute(update(runs).where(runs.c.id == elsewhere[1])
                     .values(state="running", owner="a-dead-engine", host="elsewhere",
                             heartbeat=time.time() - 10 * store._leases.ttl))
    age(folder)

    report = store.prune(keep=0)

    assert sorted(r["id"] for r in report.runs) == sorted([old[0], elsewhere[1]])
    assert set(report.kept) == {live.id, elsewhere[0]}
    assert "live" in report.kept[live.id]
    go.set()
    assert live.wait(30).state == "succeeded"
    assert live.result("waits") == "done"
    assert [t["state"] for t in store.tasks(live.id)] == ["succeeded"]
    assert rows_of(store, [live.id])["events"] == len(live.events()) > 0


def test_a_run_this_store_is_starting_is_live_before_its_lease_is_held(store, folder):
    """Between ``create_run`` and ``keep_lease`` a run of this Store is not held yet."""
    flow = versioned(store, 0)
    graph, specs = flow.build()
    store.create_run("starting", "etl", graph, [s.kind for s in specs], {}, time.time())
    report = store.prune(keep=0)
    assert report.kept == {"starting": "live: running, its lease held"}
    assert store.run("starting")["state"] == "running"


@pytest.mark.parametrize("meanwhile", ["taken over", "resumed"])
def test_a_run_that_changes_while_the_prune_runs_stays(store, folder, monkeypatch, meanwhile):
    """Another kernel takes the chosen run over, or resumes it, just after the prune chose
    it: the run and its files stay."""
    from nbflow.store import retention
    [old] = make_runs(store, 1)
    age(folder)
    chosen = retention.choose

    def and_then_another_kernel(*args):
        plan = chosen(*args)
        with store.engine.begin() as conn:
            if meanwhile == "taken over":
                conn.execute(update(runs).where(runs.c.id == old)
                             .values(version=runs.c.version + 1, owner="someone-else"))
            else:
                conn.execute(runs.insert().values(id="resumer", flow="etl", state="failed",
                                                  created=time.time(), version=1,
                                                  resumed_from=old))
        return plan

    monkeypatch.setattr(retention, "choose", and_then_another_kernel)
    report = store.prune(keep=0, flow="etl")
    assert report.runs == [] and old in report.kept
    assert rows_of(store, [old])["events"] == len(store.events(old)) > 0
    assert {k + ".pkl" for k in keys_saved(store, old)} <= files(folder)


def test_a_kept_run_keeps_its_resume_chain_and_resumes_after_its_siblings_went(store, folder):
    calls = []
    fail = {"transform"}

    def chain_flow() -> nbflow.Flow:
        flow = nbflow.Flow("etl", store=store)

        @flow.task
        def extract():
            calls.append("extract")
            return [1, 2, 3]

        @flow.task
        def transform(extract):
            calls.append("transform")
            if "transform" in fail:
                raise ValueError("transform broke")
            return [x * 10 for x in extract]

        @flow.task
        def load(transform):
            calls.append("load")
            if "load" in fail:
                raise ValueError("load broke")
            return sum(transform)

        return flow

    sibling = make_runs(store, 2, start=100)   # other versions of the flow, older
    first = chain_flow().run()                 # extract saved, transform failed
    fail.symmetric_difference_update({"transform", "load"})
    second = chain_flow().run(resume=first.id)  # extract restored, transform saved, load failed
    store.flush()
    age(folder)
    report = store.prune(keep=1)
    assert sorted(r["id"] for r in report.runs) == sorted(sibling)
    assert report.kept == {first.id: f"in the resume chain of the kept run {second.id}"}

    fail.clear()
    calls.clear()
    third = chain_flow().run(resume=second.id)
    assert third.state == "succeeded" and third.result("load") == 60
    assert calls == ["load"]  # extract (saved by the first run) and transform were restored


def test_a_planted_link_or_fifo_is_neither_followed_nor_deleted_and_nothing_hangs(
        store, folder, tmp_path):
    [old] = make_runs(store, 1)
    make_runs(store, 1, start=1)
    age(folder)
    victim = tmp_path / "precious.txt"
    victim.write_text("not nbflow's")
    link, fifo = sorted(keys_saved(store, old) - keys_saved(store, store.runs()[0]["id"]))[:2]
    (folder / f"{link}.pkl").unlink()
    (folder / f"{link}.pkl").symlink_to(victim)
    (folder / f"{fifo}.pkl").unlink()
    os.mkfifo(folder / f"{fifo}.pkl")
    stray = "f" * 64 + ".pkl"
    os.mkfifo(folder / stray)   # named like a result, named by no run

    use = store.usage()   # lstat only: a FIFO is never opened
    assert use.results.others == 3
    report = store.prune(keep=1)

    assert victim.read_text() == "not nbflow's"
    assert (folder / f"{link}.pkl").is_symlink() and (folder / f"{fifo}.pkl").exists()
    assert sorted(report.skipped) == sorted([(f"{link}.pkl", "not a regular file"),
                                             (f"{fifo}.pkl", "not a regular file")])
    assert (folder / stray).exists()


def test_a_results_folder_that_is_a_link_is_not_used_to_delete(store, folder, tmp_path):
    make_runs(store, 2)
    age(folder)
    real = tmp_path / "real-results"
    folder.rename(real)
    folder.symlink_to(real)
    before = files(real)
    report = store.prune(keep=1)
    assert len(report.runs) == 1 and files(real) == before
    [(where, why)] = report.skipped
    assert where == str(folder) and "symbolic link" in why and "NBFLOW_RESULTS" in why


def test_a_prune_that_cannot_see_the_results_folder_keeps_the_files_queued(
        store, folder, tmp_path, monkeypatch):
    """As a PostgreSQL store pruned from another folder than the kernels': the rows go,
    the files wait for a prune that sees them."""
    [old] = make_runs(store, 1)
    make_runs(store, 1, start=1)
    age(folder)
    doomed = keys_saved(store, old) - keys_saved(store, store.runs()[0]["id"])
    monkeypatch.setenv("NBFLOW_RESULTS", str(tmp_path / "elsewhere"))
    report = store.prune(keep=1)
    assert [r["id"] for r in report.runs] == [old] and report.files == 0
    [(where, why)] = report.skipped
    assert where == str(tmp_path / "elsewhere")
    assert why.startswith(f"there is no results folder {where!r} here, so the files of the "
                          "pruned runs stay queued; prune again where the kernels ran")
    monkeypatch.setenv("NBFLOW_RESULTS", str(folder))
    report = store.prune(keep=1)
    assert report.files == len(doomed) and not {k + ".pkl" for k in doomed} & files(folder)


def test_runs_that_saved_no_file_queue_nothing(store, folder, monkeypatch, tmp_path):
    flow = nbflow.Flow("quiet", store=store)
    flow.task(lambda: None, name="nothing")
    flow.run()
    flow.run()
    monkeypatch.setenv("NBFLOW_RESULTS", str(tmp_path / "never-made"))
    report = store.prune(keep=0)
    assert len(report.runs) == 2 and report.skipped == []
    with store.engine.connect() as conn:
        assert conn.execute(select(prune_queue.c.key)).all() == []


def test_recent_files_wait_for_the_next_prune_and_stale_tmp_files_go(store, folder):
    [old] = make_runs(store, 1)
    make_runs(store, 1, start=1)
    doomed = keys_saved(store, old) - keys_saved(store, store.runs()[0]["id"])
    young_tmp = folder / ("a" * 64 + ".pkl.123-456.tmp")
    stale_tmp = folder / ("b" * 64 + ".pkl.123-456.tmp")
    young_tmp.write_bytes(b"being written")
    stale_tmp.write_bytes(b"left by a killed worker")
    then = time.time() - resultdir.TMP_GRACE - 1
    os.utime(stale_tmp, (then, then))

    report = store.prune(keep=1)      # the files were written a moment ago
    assert report.files == 1 and report.recent == len(doomed)
    assert {k + ".pkl" for k in doomed} <= files(folder)
    assert young_tmp.exists() and not stale_tmp.exists()

    age(folder)
    report = store.prune(keep=1)      # no run to delete: the queue alone
    assert report.runs == [] and report.files == len(doomed) + 1  # and the young tmp, now old
    assert not {k + ".pkl" for k in doomed} & files(folder)


def test_a_prune_killed_before_its_files_is_finished_by_the_next(store, folder, monkeypatch):
    [old] = make_runs(store, 1)
    make_runs(store, 1, start=1)
    age(folder)
    doomed = keys_saved(store, old) - keys_saved(store, store.runs()[0]["id"])

    def killed(*args, **kwargs):
        raise KeyboardInterrupt   # the process dies after the rows' commit

    with monkeypatch.context() as patch, pytest.raises(KeyboardInterrupt):
        patch.setattr(resultdir, "delete", killed)
        store.prune(keep=1)
    assert rows_of(store, [old])["runs"] == 0
    assert {k + ".pkl" for k in doomed} <= files(folder)
    assert store.prune(keep=1, dry_run=True).files == len(doomed)

    report = store.prune(keep=1)
    assert report.runs == [] and report.files == len(doomed)
    assert not {k + ".pkl" for k in doomed} & files(folder)


def test_a_queued_key_that_a_new_run_names_again_keeps_its_file(store, folder, monkeypatch):
    [old] = make_runs(store, 1)
    age(folder)
    with monkeypatch.context() as patch, pytest.raises(OSError):
        patch.setattr(resultdir, "delete", lambda *a, **k: (_ for _ in ()).throw(OSError))
        store.prune(keep=0)
    # Version 0 again: the same keys, named by a new run (its files rewritten, then aged).
    [new] = make_runs(store, 1)
    age(folder)
    report = store.prune(keep=1)
    assert report.files == 0
    assert {k + ".pkl" for k in keys_saved(store, new)} <= files(folder)


def test_usage_counts_rows_flows_and_files(store, folder):
    etl_runs = make_runs(store, 3)
    make_runs(store, 1, name="other", start=50)
    age(folder)
    use = store.usage()
    assert use.rows["runs"] == 4 and use.rows["tasks"] == 16
    assert [f["flow"] for f in use.flows] == ["etl", "other"]
    etl = use.flows[0]
    assert etl["runs"] == 3 and etl["events"] == sum(len(store.events(r)) for r in etl_runs)
    assert etl["log_bytes"] == 3 * len("version 0\n")
    assert use.results.files == len(files(folder)) and use.results.bytes > 0
    assert use.database_bytes > 0
    assert use.reclaimable.dry_run and use.reclaimable.runs == []


@pytest.mark.parametrize("kwargs, message", [
    ({"keep": -1}, r"keep must be a whole number of runs >= 0, got -1"),
    ({"keep": True}, r"keep must be a whole number"),
    ({"keep": "3"}, r"keep must be a whole number of runs >= 0, got '3'"),
    ({"older_than": "3x"}, r"older_than must be an age such as '30d'.*got '3x'"),
    ({"older_than": float("inf")}, r"older_than must be an age"),
    ({"older_than": -5}, r"older_than must be an age"),
    ({"before": "2026-13-01"}, r"before must be a date such as '2026-01-01'.*got '2026-13-01'"),
    ({"before": float("nan")}, r"before must be a date"),
    ({"older_than": "1d", "before": "2026-01-01"}, r"give older_than or before, not both"),
])
def test_a_prune_that_means_nothing_is_refused_before_anything_goes(store_path, kwargs,
                                                                    message, folder):
    store = Store(store_path)
    make_runs(store, 1)
    with pytest.raises(ValueError, match=message):
        store.prune(**kwargs)
    assert len(store.runs()) == 1


def logged_runs(store_path: str, ntasks: int, nruns: int) -> Store:
    """A SQLite store with ``nruns`` runs of ``ntasks`` tasks that print 2 KB each."""
    store = Store(store_path)
    flow = nbflow.Flow("big", store=store)
    for i in range(ntasks):
        flow.task(lambda i=i: print("x" * 2000), name=f"t{i}")
    for _ in range(nruns):
        flow.run()
    store.flush()
    return store


def test_vacuum_returns_the_freed_pages_of_a_sqlite_file(store_path, folder):
    store = logged_runs(store_path, 300, 4)
    report = store.prune(keep=1, vacuum=False)
    assert report.vacuum is None
    big = os.path.getsize(store_path) + os.path.getsize(store_path + "-wal")
    report = store.prune(keep=1, vacuum=True)
    assert report.vacuum.skipped is None
    assert report.vacuum.before == big > report.vacuum.after
    assert os.path.getsize(store_path + "-wal") == 0
    assert len(store.runs()) == 1 and len(store.tasks(store.runs()[0]["id"])) == 300


def test_an_automatic_vacuum_follows_a_prune_that_freed_a_lot(store_path, folder, monkeypatch):
    store = logged_runs(store_path, 200, 6)
    monkeypatch.setattr(vacuum, "AUTO_VACUUM_MIN", 1)
    assert store.prune(keep=5).vacuum is None   # a sixth of the rows: not worth it
    report = store.prune(keep=1)
    assert report.vacuum is not None and report.vacuum.after < report.vacuum.before


def test_vacuum_waits_for_no_live_run_on_sqlite(store_path, folder):
    store = Store(store_path)
    go = threading.Event()
    flow = nbflow.Flow("etl", store=store)
    flow.task(lambda: go.wait(60), name="waits")
    live = flow.run(background=True)
    report = store.prune(keep=5, vacuum=True)
    go.set()
    live.wait(30)
    assert report.vacuum.before == report.vacuum.after
    assert report.vacuum.skipped.startswith(f"run {live.id} of flow 'etl' is running")


@pytest.mark.postgres
def test_vacuum_on_postgresql_runs_outside_a_transaction(new_pg_url, folder):
    store = Store(new_pg_url)
    make_runs(store, 3)
    report = store.prune(keep=1, vacuum=True)
    assert report.vacuum.skipped is None, report.vacuum.skipped
    assert report.vacuum.before > 0 and report.vacuum.after > 0
    assert any("PostgreSQL keeps the space" in n for n in report.vacuum.notes)
    use = store.usage()
    assert set(use.database) >= {"runs", "events", "tasks"} and use.free_bytes is None


WRITER = textwrap.dedent("""
    import os, sys, time, nbflow
    flow = nbflow.Flow("busy", store=sys.argv[1])
    names = [f"t{i}" for i in range(int(sys.argv[2]))]
    for name in names:
        flow.task(lambda: 1, name=name)

    @flow.task(after=names)
    def last():
        while not os.path.exists(sys.argv[3]):
            time.sleep(0.01)

    run = flow.run(workers=2)
    print(run.id, run.state, flush=True)
""")


def test_pruning_while_another_process_writes_its_run(store, backend_url, folder, tmp_path):
    """Another kernel (a process with its own writer) records a run of 3,000 tasks while
    this one prunes with keep=0 again and again: the old runs go, the live one stays whole."""
    old = make_runs(store, 3)
    age(folder)
    script, release = tmp_path / "writer.py", tmp_path / "release"
    script.write_text(WRITER)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.Popen([sys.executable, str(script), backend_url, "3000", str(release)],
                            stdout=subprocess.PIPE, text=True, env=env)
    try:
        pruned, live = [], None
        while live is None or [t["state"] for t in store.tasks(live)][-1:] != ["running"]:
            pruned += [r["id"] for r in store.prune(keep=0).runs]
            live = store.latest_run_id("busy")
            time.sleep(0.02)
        for _ in range(5):   # its tasks are all written: prune a few more times
            pruned += [r["id"] for r in store.prune(keep=0).runs]
    finally:
        release.touch()
        out, _ = proc.communicate(timeout=120)
    assert out.split() == [live, "succeeded"] and proc.returncode == 0
    assert sorted(pruned) == sorted(old)
    assert [r["id"] for r in store.runs()] == [live]
    assert [t["state"] for t in store.tasks(live)] == ["succeeded"] * 3001
    assert len(store.events(live)) >= 3 * 3001


def test_a_large_store_warns_once_when_opened(store_path, folder, monkeypatch):
    Store(store_path).close()
    monkeypatch.setenv("NBFLOW_SIZE_WARNING", "1000")
    with pytest.warns(UserWarning, match=r"takes .* nothing is pruned automatically.*"
                      r"`nbflow prune`.*NBFLOW_SIZE_WARNING"):
        Store(store_path).close()
    with warnings.catch_warnings(record=True) as again:
        warnings.simplefilter("always")
        Store(store_path).close()
    assert again == []   # once per process and file


def test_a_size_limit_that_is_no_number_says_so(store_path, folder, monkeypatch):
    monkeypatch.setenv("NBFLOW_SIZE_WARNING", "1GB")
    with pytest.warns(UserWarning, match=r"NBFLOW_SIZE_WARNING must be a whole number of "
                      r"bytes \(0 = never warn\), got '1GB'; warning at 1 GiB instead"):
        Store(store_path).close()

