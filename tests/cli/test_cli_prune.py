"""``nbflow prune`` and ``nbflow du``: the real command on a store made with the API."""

from __future__ import annotations

import os
import re
import time

import pytest

import nbflow
from nbflow.results import INLINE_LIMIT
from nbflow.store import Store


@pytest.fixture
def made(tmp_path, monkeypatch):
    """A store with three runs of flow ``etl`` (each version saves new result files, aged
    an hour) and one of a flow whose name carries terminal escape sequences."""
    results = tmp_path / "results"
    monkeypatch.setenv("NBFLOW_RESULTS", str(results))
    store = Store(str(tmp_path / "nbflow.db"))
    ids = []
    for version in range(3):
        flow = nbflow.Flow("etl", store=store)
        flow.task(lambda v=version: [v] * INLINE_LIMIT, name="make")   # big: a file
        ids.append(flow.run().id)
    evil = nbflow.Flow("evil\x1b]0;owned\x07\x1b[2J", store=store)
    evil.task(lambda: print("\x1b[31mred\x1b[0m"), name="shout")
    evil.run()
    store.close()
    then = time.time() - 3600
    for f in results.iterdir():
        os.utime(f, (then, then))
    return tmp_path, ids, {"NBFLOW_RESULTS": str(results)}


def test_a_dry_run_lists_what_would_go_and_deletes_nothing(made, nbflow_cli):
    folder, ids, env = made
    files = sorted(os.listdir(folder / "results"))
    done = nbflow_cli("prune", "--keep", "1", "--flow", "etl", "--dry-run",
                      "--store", "nbflow.db", cwd=folder, env=env)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert out.startswith("nbflow prune: would delete 2 run(s) (flow 'etl': 2) in the store ")
    assert re.search(rf"^{ids[1]}\s+etl\s+succeeded\s+\d{{4}}-", out, re.M), out
    assert re.search(rf"^{ids[0]}\s+etl\s+succeeded\s+\d{{4}}-", out, re.M), out
    assert "  result files: 2 (" in out
    assert sorted(os.listdir(folder / "results")) == files
    assert len(Store(str(folder / "nbflow.db")).runs()) == 4


def test_prune_deletes_and_says_what_it_reclaimed(made, nbflow_cli):
    folder, ids, env = made
    done = nbflow_cli("prune", "--keep", "1", "--vacuum", "--store", "nbflow.db", cwd=folder,
                      env=env)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert out.startswith("nbflow prune: deleted 2 run(s) (flow 'etl': 2) in the store ")
    assert "  rows: 2 runs, 2 tasks, " in out and "  result files: 2 (" in out
    assert re.search(r"^  vacuumed: database \S+ \S+ -> \S+ \S+ \(\S+ \S+ reclaimed, took ", out,
                     re.M), out
    assert [r["id"] for r in Store(str(folder / "nbflow.db")).runs(flow="etl")] == [ids[2]]


def test_du_shows_sizes_flows_and_what_a_prune_would_free_without_escapes(made, nbflow_cli):
    folder, _, env = made
    done = nbflow_cli("du", "--store", "nbflow.db", cwd=folder, env=env)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert re.match(r"store '.*nbflow\.db' \(sqlite\): \S+ \S+ \(file \S+ \S+, wal \S+ \S+\)",
                    out), out
    assert re.search(r"^rows: .*runs 4.*tasks 4", out, re.M), out
    assert re.search(r"^etl\s+3\s+\d+\s+0 B\s+\d{4}-", out, re.M), out
    assert re.search(r"^evil\s+1\s+\d+\s+\d+ B\s", out, re.M), out   # OSC dropped whole
    assert re.search(r"^results '.*results': 3 files, \S+ \w?B", out, re.M), out
    assert "would delete 0 run(s)" in out
    assert "\x1b" not in out and "\x07" not in out
    hostile = nbflow_cli("prune", "--keep", "0", "--dry-run", "--store", "nbflow.db",
                         cwd=folder, env=env)
    assert hostile.returncode == 0 and "'evil'" in hostile.stdout and "owned" not in hostile.stdout
    assert "\x1b" not in hostile.stdout and "\x07" not in hostile.stdout


@pytest.mark.parametrize("args, message", [
    (["--flow", "etll"], r"has no runs of flow 'etll'; its flows are: 'etl', 'evil'$"),
    (["--keep", "-1"], r"argument --keep: must be a whole number >= 0, got '-1'"),
    (["--older-than", "30"], r"argument --older-than: must be an age such as '30d'"),
    (["--before", "yesterday"], r"argument --before: must be a date such as '2026-01-01'"),
    (["--before", "2026-01-01", "--older-than", "1d"], r"not allowed with argument"),
])
def test_a_prune_asked_wrongly_exits_2_and_says_why(made, nbflow_cli, args, message):
    folder, _, env = made
    done = nbflow_cli("prune", *args, "--store", "nbflow.db", cwd=folder, env=env)
    assert done.returncode == 2
    assert re.search(message, done.stderr), done.stderr
    assert "Traceback" not in done.stderr and "\x1b" not in done.stderr
    assert len(Store(str(folder / "nbflow.db")).runs()) == 4


def test_prune_and_du_need_an_existing_store(tmp_path, nbflow_cli):
    for command in ("prune", "du"):
        done = nbflow_cli(command, cwd=tmp_path)
        assert done.returncode == 2
        assert "there is no nbflow store at" in done.stderr
        assert not (tmp_path / ".nbflow").exists()
