"""``nbflow run``: real notebooks executed in a real kernel by the real command."""

from __future__ import annotations

import json
import re
import signal
import subprocess

import pytest

from nbflow.store import Store

pytestmark = pytest.mark.kernel

FLOW = """\
import nbflow
flow = nbflow.Flow("cli-demo")

@flow.task
def raw():
    return [1, 2, 3]

@flow.task
def doubled(raw):
    return [x * 2 for x in raw]

@flow.task
def tripled(raw):
    return [x * 3 for x in raw]

@flow.task
def report(doubled, tripled):
    return sum(doubled) + sum(tripled)
"""

RUN = """\
run = flow.run()
assert run.result("report") == 30, run.status()
open("kernel-was-here.txt", "w").close()
"""


@pytest.fixture(scope="module")
def succeeded(tmp_path_factory, nbflow_cli, notebook):
    """One run of a succeeding notebook with --workers 3 --policy sjf, from another folder."""
    root = tmp_path_factory.mktemp("cli-run")
    nb = notebook(root / "project" / "demo.ipynb", FLOW, RUN)
    elsewhere = root / "elsewhere"
    elsewhere.mkdir()
    result = nbflow_cli("run", str(nb), "--workers", "3", "--policy", "sjf", cwd=elsewhere)
    return nb.parent, result


def test_a_succeeding_notebook_exits_0_with_progress_and_a_summary(succeeded):
    folder, result = succeeded
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert f"state in '{folder / '.nbflow' / 'nbflow.db'}'" in out
    # Without a terminal: whole lines, the last one for the run shows it done.
    assert re.search(r"^cli-demo \S+ \[#{20}\] 4/4 succeeded: 4 succeeded$", out, re.M), out
    assert re.search(r"^run\s+flow\s+state\s+created\s+duration\s+tasks$", out, re.M), out
    assert re.search(r"^\S+\s+cli-demo\s+succeeded\s.*4 succeeded$", out, re.M), out
    assert "\x1b" not in out


def test_the_kernel_runs_in_the_notebook_folder_and_records_there(succeeded):
    folder, _ = succeeded
    assert (folder / "kernel-was-here.txt").exists()
    assert (folder / ".nbflow" / "nbflow.db").exists()


def test_workers_reaches_the_notebooks_runs(succeeded):
    folder, _ = succeeded
    store = Store(str(folder / ".nbflow" / "nbflow.db"))
    [run] = store.runs()
    assert json.loads(run["params"])["workers"] == 3
    assert json.loads(run["params"])["policy"] == "sjf"   # --policy, through NBFLOW_POLICY
    assert (run["flow"], run["state"]) == ("cli-demo", "succeeded")


def test_runs_and_status_read_the_store_in_the_current_folder(succeeded, nbflow_cli):
    folder, _ = succeeded
    runs = nbflow_cli("runs", cwd=folder)
    assert runs.returncode == 0, runs.stderr
    lines = runs.stdout.splitlines()
    assert lines[0].split() == ["run", "flow", "state", "created", "duration", "tasks"]
    assert len(lines) == 2 and "cli-demo" in lines[1] and "4 succeeded" in lines[1]
    run_id = lines[1].split()[0]

    status = nbflow_cli("status", cwd=folder)
    assert status.returncode == 0, status.stderr
    out = status.stdout.splitlines()
    assert out[0] == f"run {run_id} of flow 'cli-demo': succeeded"
    assert "workers=3" in out[1]
    table = {line.split()[0]: line.split()[1:4] for line in out[3:]}
    assert out[2].split() == ["task", "state", "level", "attempt", "started", "duration",
                              "error"]
    assert table == {"raw": ["succeeded", "0", "1"], "doubled": ["succeeded", "1", "1"],
                     "tripled": ["succeeded", "1", "1"], "report": ["succeeded", "2", "1"]}


def test_a_failed_task_exits_1_naming_the_task_and_its_error(tmp_path, nbflow_cli, notebook):
    nb = notebook(tmp_path / "fails.ipynb", FLOW + """
@flow.task(retries=1)
def broken(raw):
    raise ValueError("bad row 3")

@flow.task
def publish(broken):
    return broken
""", "run = flow.run()\nprint('the notebook goes on')")
    result = nbflow_cli("run", str(nb), cwd=tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr
    assert re.search(r"^task 'broken' failed \(run \S+, flow 'cli-demo', attempt 2\):\n"
                     r"    ValueError: bad row 3$", result.stdout, re.M), result.stdout
    assert "'publish' failed" not in result.stdout  # upstream_failed is not a failure of its own
    assert re.search(r"^cli-demo \S+ \[#+\] 6/6 failed: 4 succeeded, 1 failed, "
                     r"1 upstream_failed$", result.stdout, re.M), result.stdout
    assert "the notebook raised" not in result.stdout


def test_a_notebook_error_exits_2_with_the_cell_error(tmp_path, nbflow_cli, notebook):
    nb = notebook(tmp_path / "raises.ipynb", "# md A title", "x = 1", "# md Some prose",
                  "raise RuntimeError('the data folder is missing')", "never = True")
    result = nbflow_cli("run", str(nb), cwd=tmp_path)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "the notebook recorded no runs in " in result.stdout
    assert ("the notebook raised in code cell 2 of 3: RuntimeError: the data folder is missing"
            in result.stdout)
    assert "raise RuntimeError('the data folder is missing')" in result.stdout  # the cell
    assert "\x1b" not in result.stdout  # the kernel's coloured traceback, made plain


def test_ctrl_c_interrupts_the_kernel_and_the_run_is_cancelled(tmp_path, notebook, nbflow_exe):
    nb = notebook(tmp_path / "slow.ipynb", """\
import threading, nbflow
flow = nbflow.Flow("slow")

@flow.task
def wait():
    threading.Event().wait(120)   # only the cancel ends this run

@flow.task
def after(wait):
    return 1

flow.run()
""")
    proc = subprocess.Popen([str(nbflow_exe), "run", str(nb)], cwd=tmp_path, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            stdin=subprocess.DEVNULL,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        # The command's own progress lines say when the task is running.
        seen = []
        for line in proc.stdout:
            seen.append(line)
            if "1 running" in line:
                break
        else:
            pytest.fail("the task never showed as running:\n" + "".join(seen))
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 130, "".join(seen) + out + err
    assert "interrupting the kernel" in err
    assert re.search(r"^\S+\s+slow\s+cancelled\s.*2 cancelled$", out, re.M), out
    assert "KeyboardInterrupt" not in out


@pytest.mark.postgres
def test_run_records_to_postgresql_given_by_url(tmp_path, nbflow_cli, notebook, new_pg_url):
    nb = notebook(tmp_path / "demo.ipynb", FLOW, RUN)
    result = nbflow_cli("run", str(nb), "--store", new_pg_url, cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert not (tmp_path / ".nbflow" / "nbflow.db").exists()
    runs = nbflow_cli("runs", "--store", new_pg_url, cwd=tmp_path)
    assert "cli-demo" in runs.stdout and "4 succeeded" in runs.stdout, runs.stderr


def test_a_store_path_with_uri_characters_reaches_the_kernel_as_a_path(tmp_path, nbflow_cli,
                                                                       notebook):
    # The command hands the store to the kernel in NBFLOW_STORE: a path stays a path.
    nb = notebook(tmp_path / "demo.ipynb", FLOW, RUN)
    store = tmp_path / "runs ?v=2 #1 %41.db"
    result = nbflow_cli("run", str(nb), "--store", str(store), cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert store.name in {p.name for p in tmp_path.iterdir()}
    assert not (tmp_path / "runs ").exists() and not (tmp_path / ".nbflow").exists()
    runs = nbflow_cli("runs", "--store", str(store), cwd=tmp_path)
    assert "cli-demo" in runs.stdout and "4 succeeded" in runs.stdout, runs.stderr
