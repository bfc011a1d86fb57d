"""``nbflow runs`` and ``nbflow status`` on stores written in-process (no kernel needed)."""

from __future__ import annotations

import re

import pytest

import nbflow
from nbflow.store import Store


@pytest.fixture
def store(tmp_path):
    """A store with two runs: ``etl`` succeeded, then ``nightly`` failed."""
    path = tmp_path / ".nbflow" / "nbflow.db"
    etl = nbflow.Flow("etl", store=str(path), executor="sync")
    etl.task(lambda: 1, name="extract")
    etl.run()
    nightly = nbflow.Flow("nightly", store=str(path), executor="sync")

    @nightly.task
    def fetch():
        return 2

    @nightly.task
    def clean(fetch):
        raise ValueError("column 'price' is missing\nsecond line of the message")

    @nightly.task
    def load(clean):
        return clean

    nightly.task(lambda: 3, name="evil\x1b[2Jname")
    nightly.run(workers=2)
    etl.store.close()
    nightly.store.close()
    return path


def ids(path) -> list[str]:
    return [r["id"] for r in Store(str(path)).runs()]


def test_runs_lists_newest_first_with_counts(store, nbflow_cli, tmp_path):
    result = nbflow_cli("runs", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    newest, oldest = ids(store)
    assert re.fullmatch(rf"{newest}\s+nightly\s+failed\s+\S+ \S+\s+\S+s\s+2 succeeded, "
                        r"1 failed, 1 upstream_failed", lines[1]), lines[1]
    assert re.fullmatch(rf"{oldest}\s+etl\s+succeeded\s+\S+ \S+\s+\S+s\s+1 succeeded",
                        lines[2]), lines[2]
    assert len(lines) == 3


def test_runs_filters_by_flow_and_limits(store, nbflow_cli, tmp_path):
    only_etl = nbflow_cli("runs", "--flow", "etl", cwd=tmp_path).stdout.splitlines()
    assert [line.split()[1] for line in only_etl[1:]] == ["etl"]
    one = nbflow_cli("runs", "--limit", "1", cwd=tmp_path).stdout.splitlines()
    assert [line.split()[1] for line in one[1:]] == ["nightly"]
    none = nbflow_cli("runs", "--flow", "weekly", cwd=tmp_path)
    assert none.returncode == 0
    assert none.stdout == f"no runs of flow 'weekly' in the store '{store}'.\n"


def test_status_shows_the_latest_run_and_its_errors(store, nbflow_cli, tmp_path):
    result = nbflow_cli("status", "--store", str(store), cwd=tmp_path.parent)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    newest = ids(store)[0]
    assert out.startswith(f"run {newest} of flow 'nightly': failed\n")
    assert re.search(r"^created \S+ \S+, took \S+; workers=2 mode=eager", out, re.M), out
    rows = {line.split()[0]: line for line in out.splitlines()[3:7]}
    assert re.fullmatch(r"fetch\s+succeeded\s+0\s+1\s+\d\d:\d\d:\d\d\s+\S+s", rows["fetch"])
    assert re.fullmatch(r"clean\s+failed\s+1\s+1\s+\S+\s+\S+\s+ValueError: column 'price' is "
                        r"missing \.\.\.", rows["clean"]), rows["clean"]
    assert re.fullmatch(r"load\s+upstream_failed\s+2\s+0\s+-\s+-", rows["load"])
    # The full error follows the table, with its second line.
    assert (f"task 'clean' failed (run {newest}, flow 'nightly', attempt 1):\n"
            "    ValueError: column 'price' is missing\n    second line of the message\n") in out
    assert "\x1b" not in out
    assert re.search(r"^evilname\s+succeeded", out, re.M), out


def test_status_finds_a_run_by_a_unique_prefix(store, nbflow_cli, tmp_path):
    oldest = ids(store)[1]
    result = nbflow_cli("status", oldest[:-3], cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"run {oldest} of flow 'etl': succeeded\n")


@pytest.mark.parametrize(("args", "message"), [
    (["status", "nope"], r"^nbflow status: error: there is no run 'nope' in the store '.*'\. "
                         r"`nbflow runs` lists the runs there\.$"),
    (["status", "2"], r"^nbflow status: error: '2' matches 2 runs \(\S+, \S+\); give more of "
                      r"the run id\.$"),
    (["runs", "--limit", "0"], r"argument --limit: must be a whole number of at least 1, "
                               r"got '0'"),
])
def test_bad_requests_say_what_is_wrong(store, nbflow_cli, tmp_path, args, message):
    result = nbflow_cli(*args, cwd=tmp_path)
    assert result.returncode == 2
    assert re.search(message, result.stderr.strip(), re.M), result.stderr
    assert result.stdout == ""


def test_reading_commands_never_create_a_store(tmp_path, nbflow_cli):
    for command in ("runs", "status"):
        result = nbflow_cli(command, cwd=tmp_path)
        assert result.returncode == 2
        assert result.stderr == (
            f"nbflow {command}: error: there is no nbflow store at "
            f"'{tmp_path / '.nbflow' / 'nbflow.db'}'. Run a flow first (nbflow run NOTEBOOK), "
            "or point --store or NBFLOW_STORE at an existing store.\n")
    assert not (tmp_path / ".nbflow").exists()


def test_nbflow_store_selects_the_store(store, nbflow_cli, tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    result = nbflow_cli("runs", cwd=elsewhere, env={"NBFLOW_STORE": str(store)})
    assert result.returncode == 0 and "nightly" in result.stdout, result.stderr


def test_an_unreachable_server_is_an_error_without_the_password(tmp_path, nbflow_cli):
    url = "postgresql+psycopg://bob:s3cret-pw@127.0.0.1:9/nbflow"
    result = nbflow_cli("runs", "--store", url, cwd=tmp_path)
    assert result.returncode == 2
    assert re.match(r"nbflow runs: error: cannot .* 'postgresql\+psycopg://bob:\*\*\*@"
                    r"127\.0\.0\.1:9/nbflow': ", result.stderr), result.stderr
    assert "s3cret" not in result.stdout + result.stderr
    assert "Traceback" not in result.stderr
