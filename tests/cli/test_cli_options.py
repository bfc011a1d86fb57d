"""Bad options of ``nbflow run`` are refused before a kernel starts; ``--workers``
reaches the notebook's runs as ``NBFLOW_WORKERS``, which ``Flow.run`` validates too.

(That it arrives through a real kernel is checked in test_cli_run.py.)
"""

from __future__ import annotations

import json

import pytest

import nbflow


@pytest.mark.parametrize("value", ["0", "-2", "two", "1.5", ""])
def test_a_bad_workers_value_is_refused_before_any_kernel_starts(tmp_path, nbflow_cli,
                                                                 notebook, value):
    nb = notebook(tmp_path / "demo.ipynb", "open('ran', 'w').close()")
    result = nbflow_cli("run", str(nb), "--workers", value, cwd=tmp_path)
    assert result.returncode == 2
    assert (f"nbflow run: error: argument --workers: must be a whole number of at least 1, "
            f"got {value!r}") in result.stderr
    assert not (tmp_path / "ran").exists() and not (tmp_path / ".nbflow").exists()


A_YEAR = "must be a number of seconds above 0 and at most 31536000 (a year)"


@pytest.mark.parametrize(("args", "message"), [
    (["--timeout", "0"], f"argument --timeout: {A_YEAR}, got '0'"),
    (["--timeout", "soon"], f"argument --timeout: {A_YEAR}, got 'soon'"),
    # Before: a raw TraitError traceback from nbclient, and exit status 1 ("a task failed").
    (["--timeout", "inf"], f"argument --timeout: {A_YEAR}, got 'inf'"),
    (["--timeout", "nan"], f"argument --timeout: {A_YEAR}, got 'nan'"),
    (["--timeout", "1e20"], f"argument --timeout: {A_YEAR}, got '1e20'"),
])
def test_a_bad_timeout_is_refused(tmp_path, nbflow_cli, notebook, args, message):
    nb = notebook(tmp_path / "demo.ipynb", "1")
    result = nbflow_cli("run", str(nb), *args, cwd=tmp_path)
    assert result.returncode == 2
    assert f"nbflow run: error: {message}" in result.stderr


def test_a_missing_or_broken_notebook_is_named(tmp_path, nbflow_cli):
    missing = nbflow_cli("run", "nope.ipynb", cwd=tmp_path)
    assert missing.returncode == 2
    assert missing.stderr == (f"nbflow run: error: there is no notebook at "
                              f"'{tmp_path / 'nope.ipynb'}'.\n")
    (tmp_path / "broken.ipynb").write_text("{not json")
    broken = nbflow_cli("run", "broken.ipynb", cwd=tmp_path)
    assert broken.returncode == 2
    assert broken.stderr.startswith(f"nbflow run: error: '{tmp_path / 'broken.ipynb'}' is not "
                                    "a notebook nbflow can read: "), broken.stderr
    assert not (tmp_path / ".nbflow").exists()


def _workers_of_a_run(flow: nbflow.Flow, **run_options) -> int:
    flow.task(lambda: 1, name="one")
    run = flow.run(**run_options)
    return json.loads(flow.store.run(run.id)["params"])["workers"]


def test_nbflow_workers_is_the_default(monkeypatch, store_path):
    monkeypatch.setenv("NBFLOW_WORKERS", "3")
    assert _workers_of_a_run(nbflow.Flow("env", store=store_path)) == 3


def test_explicit_workers_win_over_nbflow_workers(monkeypatch, store_path):
    monkeypatch.setenv("NBFLOW_WORKERS", "3")
    assert _workers_of_a_run(nbflow.Flow("f", store=store_path, workers=2)) == 2
    assert _workers_of_a_run(nbflow.Flow("r", store=store_path), workers=5) == 5


@pytest.mark.parametrize("value", ["0", "many", "-1", "٣"])
def test_a_bad_nbflow_workers_is_a_clear_error(monkeypatch, store_path, value):
    monkeypatch.setenv("NBFLOW_WORKERS", value)
    flow = nbflow.Flow("bad", store=store_path)
    flow.task(lambda: 1, name="one")
    with pytest.raises(ValueError, match=rf"^NBFLOW_WORKERS must be a whole number of at "
                                         rf"least 1, got {value!r}\. Fix or unset the "
                                         r"environment variable \(`nbflow run --workers N` "
                                         r"sets it\)\.$"):
        flow.run()
