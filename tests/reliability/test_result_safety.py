"""Saved results are ours: only what this attempt saved is claimed, and nothing
another user could have planted is ever unpickled.

The tests run as root, so "another user" is ``nobody``, who plants files with
plain shell tools (root's Python is not reachable for other users here).  A
planted pickle that would run code writes a marker file when it is loaded:
the marker must never appear.
"""

from __future__ import annotations

import os
import pickle
import shutil
import stat
import subprocess
import sys
import tempfile
import threading

import pytest
from pipelines import pipeline

import nbflow
from nbflow.results import INLINE_LIMIT, ResultFiles, encode, task_base

BIG = list(range(INLINE_LIMIT))   # too big to travel with its event: a file


class Planted:
    """Unpickling this writes ``marker``: proof that a planted file was loaded."""

    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def payload(marker) -> bytes:
    return pickle.dumps(Planted(str(marker)))


@pytest.fixture
def other_user():
    """Run a shell command as ``nobody`` (skipped when that is impossible here)."""
    if os.geteuid() != 0 or shutil.which("runuser") is None:
        pytest.skip("needs root and runuser to act as another user")

    def run(script: str, stdin: bytes = b"") -> None:
        subprocess.run(["runuser", "-u", "nobody", "--", "sh", "-c", script], input=stdin,
                       check=True, capture_output=True)
    return run


@pytest.fixture
def shared_folder():
    """A sticky, world-writable folder under /tmp, as a shared results folder would be."""
    folder = tempfile.mkdtemp(prefix="nbflow-shared-", dir="/tmp")
    os.chmod(folder, 0o1777)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def big_flow(store_path: str, log) -> tuple[nbflow.Flow, str]:
    flow = nbflow.Flow("safety", store=store_path)

    @flow.task
    def table():
        log("table")
        return BIG

    return flow, task_base(table, "table")


def test_a_result_planted_in_a_shared_folder_is_never_loaded(store_path, shared_folder,
                                                             other_user, monkeypatch, log,
                                                             tmp_path):
    monkeypatch.setenv("NBFLOW_RESULTS", shared_folder)
    marker = tmp_path / "pwned"
    flow, key = big_flow(store_path, log)
    # The key is computable from public code: the attacker plants it first.
    other_user(f"cat > {shared_folder}/{key}.pkl", payload(marker))
    first = flow.run()
    assert first.result("table") == BIG
    assert (f"the results folder {shared_folder} can be written by other users: nbflow does "
            "not save or load results there") in first.logs("table", "stderr")
    [success] = [e for e in first.events().itertuples() if e.to_state == "succeeded"]
    assert "result" not in success.detail   # nothing was saved, so nothing is claimed
    again = flow.run(resume=True)
    assert log.take() == ["table", "table"]
    assert again.result("table") == BIG and not marker.exists()


def test_a_results_folder_owned_by_another_user_is_refused(store_path, other_user,
                                                           monkeypatch, log, tmp_path):
    base = tempfile.mkdtemp(prefix="nbflow-theirs-", dir="/tmp")
    os.chmod(base, 0o755)
    try:
        theirs = os.path.join(base, "results")
        shutil.chown(base, "nobody")
        other_user(f"mkdir -m 755 {theirs}")
        monkeypatch.setenv("NBFLOW_RESULTS", theirs)
        flow, _key = big_flow(store_path, log)
        run = flow.run()
        assert (f"the results folder {theirs} belongs to another user (uid "
                f"{os.stat(theirs).st_uid})") in run.logs("table", "stderr")
        assert os.listdir(theirs) == []
    finally:
        shutil.rmtree(base, ignore_errors=True)


def test_a_file_of_another_user_in_our_folder_is_not_loaded(store_path, results_dir, log,
                                                            tmp_path):
    flow, key = big_flow(store_path, log)
    flow.run()
    path = results_dir / f"{key}.pkl"
    marker = tmp_path / "pwned"
    path.write_bytes(payload(marker))   # swapped in, and handed to another user
    os.chown(path, 65534, 65534)
    run = flow.run(resume=True)
    assert log.take() == ["table", "table"] and not marker.exists()
    assert run.result("table") == BIG


def test_a_result_file_others_can_write_is_not_loaded(store_path, results_dir, log, tmp_path):
    flow, key = big_flow(store_path, log)
    flow.run()
    path = results_dir / f"{key}.pkl"
    marker = tmp_path / "pwned"
    path.write_bytes(payload(marker))
    os.chmod(path, 0o666)
    flow.run(resume=True)
    assert log.take() == ["table", "table"] and not marker.exists()


def test_a_result_that_was_not_saved_never_claims_a_file_already_there(store_path,
                                                                       results_dir, log,
                                                                       tmp_path):
    """Before: a success said ``result: file`` whenever a file with its key existed."""
    flow = nbflow.Flow("claim", store=store_path)

    @flow.task
    def lock():
        log("lock")
        return threading.Lock()   # does not pickle: nothing is saved

    key = task_base(lock, "lock")
    marker = tmp_path / "pwned"
    ResultFiles(str(results_dir)).save(key, payload(marker))   # a stale or planted file
    first = flow.run()
    assert "was not saved: it does not pickle" in first.logs("lock", "stderr")
    flow.run(resume=True)
    assert log.take() == ["lock", "lock"] and not marker.exists()


@pytest.mark.timeout(60)
def test_a_fifo_in_place_of_a_result_file_does_not_block_the_resume(store_path, results_dir,
                                                                    log):
    flow, key = big_flow(store_path, log)
    flow.run()
    path = results_dir / f"{key}.pkl"
    path.unlink()
    os.mkfifo(path, 0o600)
    run = flow.run(resume=True)   # an open() without O_NONBLOCK would wait for a writer
    assert log.take() == ["table", "table"] and run.result("table") == BIG


def test_a_symlink_in_place_of_a_result_file_is_not_followed(store_path, results_dir, log,
                                                             tmp_path):
    flow, key = big_flow(store_path, log)
    flow.run()
    elsewhere = tmp_path / "elsewhere.pkl"
    elsewhere.write_bytes(payload(tmp_path / "pwned"))
    path = results_dir / f"{key}.pkl"
    path.unlink()
    path.symlink_to(elsewhere)
    flow.run(resume=True)
    assert log.take() == ["table", "table"] and not (tmp_path / "pwned").exists()


def test_results_are_owner_only_whatever_the_umask(store_path, results_dir, log):
    old = os.umask(0)
    try:
        flow, key = big_flow(store_path, log)
        flow.run()
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(results_dir).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(results_dir / f"{key}.pkl").st_mode) == 0o600


def test_small_results_are_stored_with_their_success_and_restored(store_path, results_dir,
                                                                  log):
    flow = pipeline(nbflow.Flow("etl", store=store_path), log)
    first = flow.run()
    log.take()
    saved = flow.store.saved_results([first.id])
    assert sorted(kind for kind, _blob in saved.values()) == ["inline", "inline", "inline",
                                                              "none"]
    assert all(pickle.loads(blob) is not None for kind, blob in saved.values()
               if kind == "inline")
    run = flow.run(resume=True)
    assert log.take() == [] and run.result("load") == 60
    assert not results_dir.exists()


def test_notebook_classes_are_pickled_by_value(tmp_path):
    """A value of a class defined in ``__main__`` (a notebook) loads in another process."""
    script = tmp_path / "main.py"
    script.write_text(
        "import sys, pickle\n"
        "from nbflow.results import encode\n"
        "class Row:\n"
        "    def __init__(self, v): self.v = v\n"
        "sys.stdout.buffer.write(encode(Row(41)))\n")
    data = subprocess.run([sys.executable, str(script)], capture_output=True,
                          check=True).stdout
    assert pickle.loads(data).v == 41   # here, where __main__ has no class Row
    assert encode(41) == pickle.dumps(41, pickle.HIGHEST_PROTOCOL)   # plain pickle when it can
