"""``nbflow status --by group`` and missed deadlines, on a store written in-process."""

from __future__ import annotations

import re

import pytest

import nbflow


@pytest.fixture
def store(tmp_path):
    path = tmp_path / "nbflow.db"
    flow = nbflow.Flow("grouped", store=str(path), executor="sync")
    with flow.phase("extract"):
        flow.task(lambda: 1, name="a", group="api")
        flow.task(lambda: 1 / 0, name="b")
    with flow.phase("load"):
        flow.task(lambda: 1, name="c", deadline=0.000001)
    flow.run()
    flow.store.close()
    return path


def test_status_by_group_rolls_up(store, nbflow_cli, tmp_path):
    result = nbflow_cli("status", "--by", "group", "--store", str(store), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert "groups=" not in lines[1]   # the group map is not printed as a parameter
    assert re.fullmatch(r"group\s+state\s+tasks\s+counts", lines[2])
    assert re.fullmatch(r"extract\s+failed\s+2\s+1 succeeded, 1 failed", lines[3]), lines[3]
    assert re.fullmatch(r"extract/api\s+succeeded\s+1\s+1 succeeded", lines[4]), lines[4]
    assert re.fullmatch(r"load\s+failed\s+1\s+1 upstream_failed", lines[5]), lines[5]
    assert "\x1b" not in result.stdout


def test_status_lists_missed_deadlines(store, nbflow_cli, tmp_path):
    result = nbflow_cli("status", "--store", str(store), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert re.search(r"^task 'c' missed its deadline \(\d\d:\d\d:\d\d\) while pending$",
                     result.stdout, re.M), result.stdout
    assert "deadlines=" not in result.stdout
