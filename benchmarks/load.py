"""Several processes driving runs against one store at once (issue 15's shared store).

``python -m benchmarks.load URL NAME RUNS TASKS`` declares a flow ``NAME`` of
``TASKS`` independent value-returning tasks and runs it ``RUNS`` times on the
store ``URL``, then prints one JSON line: the run ids and each run's seconds.
A failure prints its traceback to stderr and exits 1.  ``shared_store`` starts
``procs`` of these at once and reads the store meanwhile (as ``nbflow runs``
would), which is what ``tests/store/test_shared_load.py`` checks and
``python -m benchmarks.scale`` times.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = str(Path(__file__).resolve().parents[1])


def value(i: int = 0) -> int:
    return i


def drive(url: str, name: str, runs: int, tasks: int, workers: int = 4) -> dict:
    """Run the flow ``runs`` times; the run ids, states and seconds."""
    import functools

    from nbflow import Flow

    flow = Flow(name, store=url)
    for i in range(tasks):
        flow.task(functools.partial(value, i), name=f"t{i}")
    out: dict = {"runs": [], "states": [], "seconds": []}
    for _ in range(runs):
        begin = time.perf_counter()
        run = flow.run(workers=workers)
        out["seconds"].append(time.perf_counter() - begin)
        out["runs"].append(run.id)
        out["states"].append(run.state)
    flow.store.close()
    return out


def start(url: str, name: str, runs: int, tasks: int) -> subprocess.Popen:
    """One driver process (its output on pipes)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([ROOT, *sys.path])}
    return subprocess.Popen([sys.executable, "-m", "benchmarks.load", url, name, str(runs),
                             str(tasks)], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def shared_store(url: str, procs: int = 4, runs: int = 1, tasks: int = 2000,
                 read: bool = True) -> dict:
    """``procs`` drivers at once on ``url`` while this process reads the store.

    Returns each driver's report (``returncode``, ``stderr``, its JSON), the
    wall time of the whole, and the reads made meanwhile (``nbflow runs`` listings).
    """
    from nbflow.cli import main as cli

    begin = time.perf_counter()
    drivers = [start(url, f"load-{k}", runs, tasks) for k in range(procs)]
    reads = []
    while read and any(d.poll() is None for d in drivers):
        reads.append(_listing(cli, url))
        time.sleep(0.05)
    reports = []
    for d in drivers:
        stdout, stderr = d.communicate(timeout=600)
        lines = stdout.strip().splitlines()
        reports.append({"returncode": d.returncode, "stderr": stderr,
                        "result": json.loads(lines[-1]) if d.returncode == 0 and lines
                        else None})
    return {"reports": reports, "seconds": time.perf_counter() - begin, "reads": reads}


def _listing(cli, url: str) -> tuple[int, str]:
    import contextlib
    import io

    buf = io.StringIO()
    with contextlib.redirect_stdout(buf), contextlib.redirect_stderr(buf):
        try:
            code = cli(["runs", "--store", url, "--limit", "50"])
        except SystemExit as exc:
            code = exc.code
    return code or 0, buf.getvalue()


if __name__ == "__main__":
    url, name, nruns, ntasks = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    print(json.dumps(drive(url, name, nruns, ntasks)))
