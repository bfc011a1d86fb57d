"""The ``nbflow`` command line: run a notebook headless with live progress, list runs, show one.

``nbflow run NOTEBOOK`` executes the notebook top to bottom in a fresh kernel
(nbclient) on a background thread.  The kernel records its runs in the store
named by ``NBFLOW_STORE``, which the command sets for it; the main thread reads
that store on its own connection every 0.2 s (SQLite in WAL mode, so reading
never blocks the kernel's writer) and draws one progress line per run the
kernel started.  Nothing is sent from the kernel to the command: the store is
the only channel, exactly as for a dashboard or a second terminal.

Exit status of ``run``: 0 every run succeeded; 1 a run did not succeed (each
failed task is printed with its error); 2 the notebook itself raised, or the
command was used wrongly; 130 interrupted.  The first Ctrl-C interrupts the
kernel as Jupyter's stop button does (a blocking ``flow.run()`` cancels its
run); a second one kills it.
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import os
import re
import shutil
import signal
import sys
import threading
import time
from contextlib import closing
from typing import Any, TextIO

from . import parameters
from .core.options import flag_type
from .core.policies import POLICIES
from .core.replay import TERMINAL
from .errors import NbflowError
from .terminal import clean

POLL = 0.2               # seconds between reads of the store while a notebook runs
PLAIN_EVERY = 1.0        # without a terminal: at most one line per run per second
STATE_ORDER = ("succeeded", "failed", "upstream_failed", "skipped", "cancelled", "running",
               "retrying", "ready", "pending")
COLORS = {"succeeded": "32", "failed": "31", "upstream_failed": "31", "cancelled": "33",
          "running": "36", "retrying": "33"}


class UsageError(NbflowError):
    """The command line asks for something that cannot be done; the message says why."""


# -- text helpers ----------------------------------------------------------------------
# Every value read from a store goes through clean() (or one of these helpers,
# which also survive a wrong type in a crafted store) before it is printed.

def word(value: Any) -> str:
    """A short store value (a run id, a state) as one safe line."""
    return clean(value, one_line=True, limit=80)


def _seconds_or_none(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) \
            or not math.isfinite(value):
        return None
    return float(value)


def duration(seconds: float | None) -> str:
    """``0.01s``, ``12.3s``, ``2m05s``, ``1h02m``; ``-`` for None (or what is no duration)."""
    seconds = _seconds_or_none(seconds)
    if seconds is None or not 0 <= seconds < 1e10:   # a clock that jumped, a crafted row
        return "-"
    if seconds < 60:
        return f"{seconds:.2f}s" if seconds < 10 else f"{seconds:.1f}s"
    minutes, sec = divmod(int(seconds), 60)
    return f"{minutes}m{sec:02d}s" if minutes < 60 else f"{minutes // 60}h{minutes % 60:02d}m"


def elapsed(start: Any, end: Any) -> str:
    """The duration from ``start`` to ``end`` (timestamps); ``-`` unless both are numbers."""
    start, end = _seconds_or_none(start), _seconds_or_none(end)
    return duration(end - start) if start is not None and end is not None else "-"


def clock(at: Any, fmt: str = "%Y-%m-%d %H:%M:%S") -> str:
    """A timestamp in local time; ``-`` for None, and what is no time shown as text."""
    if at is None:
        return "-"
    try:
        return time.strftime(fmt, time.localtime(at))
    except (TypeError, ValueError, OverflowError, OSError):
        return word(at)


def _state_order(counts: dict[str, int]) -> list[str]:
    return sorted(counts, key=lambda s: STATE_ORDER.index(s) if s in STATE_ORDER else 99)


def counts_text(counts: dict[str, int]) -> str:
    """``3 succeeded, 1 failed``: tasks per state, finished states first."""
    order = _state_order(counts)
    return ", ".join(f"{counts[s]} {word(s)}" for s in order if counts[s]) or "no tasks yet"


def _params(raw: Any) -> dict[str, Any] | None:
    """A run's params column as a dict, None when it is not a JSON object."""
    try:
        params = json.loads(raw) if raw else {}
    except (TypeError, ValueError, RecursionError):
        return None
    return params if isinstance(params, dict) else None


#: Params that ``nbflow status`` shows in lines of their own, or uses and does not show.
_SHOWN_APART = frozenset({"notebook_params", "groups", "deadlines"})


def params_text(raw: Any) -> str:
    """A run's params column as ``key=value ...`` (the notebook's parameters apart);
    what is not a JSON object, as text."""
    params = _params(raw)
    if params is None:
        return clean(raw, one_line=True, limit=200)
    return " ".join(f"{word(k)}={clean(v, one_line=True, limit=80)}" for k, v in params.items()
                    if k not in _SHOWN_APART)


def notebook_params_of(raw: Any) -> dict[str, Any]:
    """The parameters ``nbflow run -p/-f`` gave the notebook of a run, if any."""
    given = (_params(raw) or {}).get("notebook_params")
    return given if isinstance(given, dict) else {}


def table(header: list[str], rows: list[list[str]]) -> str:
    """Left-aligned columns two spaces apart, the header first."""
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in [header, *rows]]
    return "\n".join(lines)


# -- reading the store -----------------------------------------------------------------
def open_store(url: str | None, must_exist: bool):
    """The store at ``url`` (else ``NBFLOW_STORE``, else ``.nbflow/nbflow.db`` here).

    A reading command must not create an empty store in the wrong folder, so
    with ``must_exist`` a missing SQLite file is an error that says where it looked.
    """
    from sqlalchemy import event
    from sqlalchemy.exc import SQLAlchemyError

    from .store import Store
    from .store.open import locate
    from .store.store import _redact
    where = locate(url)
    if must_exist and where.path is not None and not os.path.exists(where.path):
        raise UsageError(f"there is no nbflow store at {where.path!r}. Run a flow first "
                         "(nbflow run NOTEBOOK), or point --store or NBFLOW_STORE at an "
                         "existing store.")
    try:
        store = Store(where.text)
    except SQLAlchemyError as exc:  # a server that is down, a bad URL: no traceback
        reason = getattr(exc, "orig", None) or exc
        raise UsageError(f"cannot open the store {_redact(where.url)}: "
                         f"{clean(reason, one_line=True)}") from None
    if where.path is not None:
        # Text that is not UTF-8 (a crafted or damaged file) makes sqlite3 raise in
        # the middle of a read; shown with U+FFFD in its place, the rest still reads.
        # Only here: it doubles the cost of reading text, which a kernel does in bulk.
        event.listen(store.engine, "checkout", _lenient_text)
    return store


def _lenient_text(dbapi_conn, _record, _proxy) -> None:
    dbapi_conn.text_factory = _DECODE_LENIENTLY


_DECODE_LENIENTLY = functools.partial(str, encoding="utf-8", errors="replace")


def runs_since(store, since: float) -> list[dict[str, Any]]:
    """Runs created at or after ``since``, oldest first."""
    limit = 16
    while True:  # newest first: widen until the oldest row read is older than ``since``
        rows = store.runs(limit=limit)
        if len(rows) < limit or (_seconds_or_none(rows[-1]["created"]) or 0) < since:
            return [r for r in reversed(rows) if (_seconds_or_none(r["created"]) or 0) >= since]
        limit *= 4


def find_run(store, run_id: str | None) -> dict[str, Any]:
    """The run ``run_id`` (a unique prefix is enough), or the latest run."""
    if run_id is None:
        latest = store.runs(limit=1)
        if not latest:
            raise UsageError(f"the store {clean(store.label)} has no runs yet.")
        return latest[0]
    row = store.run(run_id)
    if row is not None:
        return row
    matches = [r for r in store.runs() if str(r["id"]).startswith(run_id)]
    if len(matches) == 1:
        return matches[0]
    if matches:
        raise UsageError(f"{run_id!r} matches {len(matches)} runs ("
                         + ", ".join(word(r["id"]) for r in matches[:5])
                         + "); give more of the run id.")
    raise UsageError(f"there is no run {run_id!r} in the store {store.label}. "
                     "`nbflow runs` lists the runs there.")


def failure_report(run: dict[str, Any], tasks: list[dict[str, Any]]) -> list[str]:
    """Lines naming each failed task of ``run`` (``tasks``: its task rows) with its error
    (empty if none failed)."""
    lines = []
    for t in tasks:
        if t["state"] == "failed":
            lines.append(f"task {word(t['name'])!r} failed (run {word(run['id'])}, flow "
                         f"{word(run['flow'])!r}, attempt {word(t['attempt'])}):")
            error = clean(t["error"] or "no error recorded").strip()
            lines.extend("    " + line for line in error.splitlines())
    return lines


def runs_table(runs: list[dict[str, Any]]) -> str:
    """The table ``nbflow runs`` prints: one line per run with its task counts."""
    rows = [[word(r["id"]), clean(r["flow"], one_line=True, limit=30), word(r["state"]),
             clock(r["created"]), elapsed(r["created"], r["finished"]),
             counts_text(r.get("counts", {}))] for r in runs]
    return table(["run", "flow", "state", "created", "duration", "tasks"], rows)


# -- live progress ---------------------------------------------------------------------
class Progress:
    """One line per run: a bar, done/total and the counts per state.

    On a terminal the lines are redrawn in place.  Otherwise (CI logs, pipes) a
    run's line is printed when it changes, at most once per ``PLAIN_EVERY``
    seconds, and always once more when the run ends.
    """

    def __init__(self, out: TextIO, tty: bool | None = None, color: bool | None = None,
                 now=time.monotonic):
        self.out = out
        self.now = now
        self.tty = out.isatty() if tty is None else tty
        self.color = (self.tty and "NO_COLOR" not in os.environ) if color is None else color
        self._drawn: list[str] = []
        self._printed: dict[str, tuple[str, float]] = {}

    def line(self, run: dict[str, Any], width: int = 40) -> str:
        """The progress line of ``run`` (a row of ``Store.runs``) with a bar ``width`` wide."""
        counts = run.get("counts", {})
        total = sum(counts.values())
        done = sum(n for s, n in counts.items() if s in TERMINAL)
        filled = width * done // total if total else 0
        bar = "[" + "#" * filled + "." * (width - filled) + "]"
        parts = []
        for state in _state_order(counts):
            text = f"{counts[state]} {word(state)}"
            code = COLORS.get(state) if self.color else None
            parts.append(f"\x1b[{code}m{text}\x1b[0m" if code else text)
        flow = clean(run["flow"], one_line=True, limit=30)
        return (f"{flow} {word(run['id'])} {bar} {done}/{total} {word(run['state'])}: "
                + (", ".join(parts) or "starting"))

    def show(self, runs: list[dict[str, Any]], final: bool = False, note: str = "") -> None:
        """Draw ``runs``; ``note`` (what the notebook is doing) shows on a terminal only."""
        if self.tty:
            self._redraw(runs, "" if final else note)
        else:
            now = self.now()
            for run in runs:
                text = self.line(run, width=20)
                last, at = self._printed.get(run["id"], ("", -PLAIN_EVERY))
                ended = run["state"] != "running"
                if text != last and (final or ended or now - at >= PLAIN_EVERY):
                    self.out.write(text + "\n")
                    self._printed[run["id"]] = (text, now)
        self.out.flush()

    def _redraw(self, runs: list[dict[str, Any]], note: str) -> None:
        columns = shutil.get_terminal_size().columns
        bar = max(10, min(40, columns - 90))
        lines = [_fit(self.line(run, bar), columns - 1) for run in runs] + ([note] if note else [])
        if lines == self._drawn:
            return
        # Back to the first line drawn last time; every line is cut to the
        # terminal width so that none wraps and the count of lines stays true;
        # ESC[J clears what is left of a longer previous drawing.
        buf = [f"\x1b[{len(self._drawn)}F"] if self._drawn else []
        buf.extend("\x1b[2K" + line + "\n" for line in lines)
        self.out.write("".join(buf) + "\x1b[J")
        self._drawn = lines


def _fit(text: str, width: int) -> str:
    """Cut ``text`` to ``width`` visible characters, keeping its colour codes whole."""
    out, seen = [], 0
    for piece in re.split(r"(\x1b\[[0-9;]*m)", text):
        if piece.startswith("\x1b"):
            out.append(piece)
        else:
            out.append(piece[:max(0, width - seen)])
            seen += len(piece)
    return "".join(out) + ("\x1b[0m" if "\x1b" in text else "")


# -- nbflow run --------------------------------------------------------------------------
class NotebookJob:
    """Executes one notebook in a fresh kernel (nbclient) on its own thread."""

    def __init__(self, nb, folder: str, env: dict[str, str], timeout: float | None):
        from nbclient import NotebookClient
        self.cell = 0                    # 1-based index among code cells, 0 before the first
        self.pid: int | None = None      # the kernel's process id, once it started
        self.error: BaseException | None = None
        self.done = threading.Event()
        self._env = env
        codes = [i for i, c in enumerate(nb.cells) if c.cell_type == "code"]
        self._ordinal = {index: k for k, index in enumerate(codes, 1)}
        self.ncells = len(codes)
        self.client = NotebookClient(nb, timeout=timeout, resources={"metadata": {"path": folder}},
                                     on_notebook_start=self._on_start, on_cell_start=self._on_cell,
                                     config=_kernel_config())
        self._thread = threading.Thread(target=self._execute, name="nbflow-notebook", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _on_start(self, notebook) -> None:
        self.pid = getattr(getattr(self.client.km, "provisioner", None), "pid", None)

    def _on_cell(self, cell, cell_index: int) -> None:
        # nbclient calls this for markdown cells too; they keep the last code cell's number.
        self.cell = self._ordinal.get(cell_index, self.cell)

    def _execute(self) -> None:
        try:
            self.client.execute(env=self._env)
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            self.error = exc
        finally:
            self.done.set()

    def send(self, sig: int) -> bool:
        """Send ``sig`` to the kernel's process group; False if there is no kernel."""
        if self.pid is None or self.done.is_set():
            return False
        try:
            os.killpg(self.pid, sig)  # the kernel leads its own session (jupyter_client)
        except (ProcessLookupError, PermissionError):
            return False
        return True


def _kernel_config():
    """Encrypt the kernel's local traffic (CurveZMQ) where jupyter_client and pyzmq can.

    Recent ipykernels warn on stderr about unencrypted TCP otherwise; older
    jupyter_clients do not know the option, so it is only set when it exists.
    """
    import zmq
    from jupyter_client import KernelManager
    from traitlets.config import Config
    config = Config()
    if "transport_encryption" in KernelManager.class_trait_names() and zmq.has("curve"):
        config.KernelManager.transport_encryption = "auto"
    return config


def cmd_run(args: argparse.Namespace) -> int:
    """``nbflow run``: execute the notebook, draw its runs, report and return the status."""
    import nbformat
    path = os.path.abspath(args.notebook)
    try:
        nb = nbformat.read(path, as_version=4)
    except FileNotFoundError:
        raise UsageError(f"there is no notebook at {path!r}.") from None
    except Exception as exc:  # noqa: BLE001 - one line for any reader error
        raise UsageError(f"{path!r} is not a notebook nbflow can read: {clean(exc)}") from None
    folder = os.path.dirname(path)
    params = _notebook_params(args, nb)
    # Opened (and its schema created) before the kernel starts, so the two
    # never race to create the tables.
    with closing(open_store(args.store or os.environ.get("NBFLOW_STORE")
                            or os.path.join(folder, ".nbflow", "nbflow.db"),
                            must_exist=False)) as store:
        # JupyterLab tells a kernel its notebook's path the same way; the magics
        # name their flow after it.
        env = {**os.environ, "NBFLOW_STORE": store.url, "JPY_SESSION_NAME": path}
        if args.workers is not None:
            env["NBFLOW_WORKERS"] = str(args.workers)
        if args.policy is not None:
            env["NBFLOW_POLICY"] = args.policy
        env.pop(parameters.ENV, None)
        if params:
            env[parameters.ENV] = parameters.encode(params)
        print(f"nbflow: running {clean(args.notebook)} in a fresh kernel; state in "
              f"{clean(store.label)}", flush=True)
        if params:
            print("nbflow: parameters " + ", ".join(
                f"{name}={clean(parameters.literal(value), one_line=True, limit=80)}"
                for name, value in params.items()), flush=True)
        job = NotebookJob(nb, folder, env, args.timeout)
        runs, interrupted = watch(store, job, Progress(sys.stdout))
        return report(store, runs, job, interrupted)


def _notebook_params(args: argparse.Namespace, nb) -> dict[str, Any]:
    """The ``-f``/``-p`` parameters, injected into ``nb``; warnings go to stderr."""
    try:
        params = parameters.gather(args.param_files, args.params)
    except ValueError as exc:
        raise UsageError(clean(exc)) from None
    if params:
        for warning in parameters.inject(nb, params):
            sys.stderr.write(f"nbflow run: warning: {clean(warning)}\n")
    return params


def watch(store, job: NotebookJob, progress: Progress) -> tuple[list[dict[str, Any]], bool]:
    """Start ``job`` and draw its runs until it ends: ``(runs, interrupted)``."""
    from .store.leases import host_identity
    since = time.time()
    host = host_identity()   # the kernel's: it runs where this command runs

    def mine() -> list[dict[str, Any]]:
        # Only this kernel's runs: others may write to a shared store meanwhile.
        return [r for r in runs_since(store, since)
                if job.pid is None or (r["pid"] == job.pid and r["host"] == host)]

    interrupted = 0
    job.start()
    while True:
        try:
            while not job.done.wait(POLL):
                note = (f"notebook: code cell {job.cell} of {job.ncells}" if job.cell
                        else "notebook: starting the kernel")
                progress.show(mine(), note=note)
            break
        except KeyboardInterrupt:
            interrupted += 1
            if interrupted == 1 and job.send(signal.SIGINT):
                sys.stderr.write("\nnbflow: interrupting the kernel (Ctrl-C again to kill it)\n")
            elif not job.send(signal.SIGKILL):
                break
    runs = mine()
    progress.show(runs, final=True)
    return runs, interrupted > 0


def report(store, runs: list[dict[str, Any]], job: NotebookJob, interrupted: bool) -> int:
    """Print the summary of a ``nbflow run`` and return its exit status."""
    out = sys.stdout
    if runs:
        out.write("\n" + runs_table(runs) + "\n")
    else:
        out.write(f"nbflow: the notebook recorded no runs in {clean(store.label)} (a "
                  "Flow(store=...) in it records elsewhere).\n")
    problems = []
    for run in runs:
        if run["state"] == "running":
            problems.append(f"run {word(run['id'])} had not finished when the notebook ended "
                            "(a background run nobody waited for? call run.wait()).")
        elif run["state"] != "succeeded":
            problems.extend(failure_report(run, store.tasks(run["id"]))
                            or [f"run {word(run['id'])} {word(run['state'])}: "
                                f"{counts_text(run['counts'])}"])
    if problems:
        out.write("\n" + "\n".join(problems) + "\n")
    if interrupted:
        out.flush()
        return 130
    if job.error is not None:
        out.write("\n" + notebook_error(job) + "\n")
    out.flush()
    return 1 if problems else 2 if job.error is not None else 0


def notebook_error(job: NotebookJob) -> str:
    """What went wrong in the notebook: the cell and its traceback, made plain text."""
    from nbclient.exceptions import CellExecutionError
    err = job.error
    if isinstance(err, CellExecutionError):
        return (f"the notebook raised in code cell {job.cell} of {job.ncells}: "
                f"{clean(err.ename)}: {clean(err.evalue, one_line=True)}\n{clean(err.traceback)}")
    return f"the notebook could not be run: {type(err).__name__}: {clean(err)}"


# -- nbflow runs / nbflow status -----------------------------------------------------------
def cmd_runs(args: argparse.Namespace) -> int:
    """``nbflow runs``: the runs of the store, newest first."""
    with closing(open_store(args.store, must_exist=True)) as store:
        runs = store.runs(flow=args.flow, limit=args.limit)
        label = store.label
    if not runs:
        which = f" of flow {clean(args.flow)!r}" if args.flow else ""
        print(f"no runs{which} in the store {clean(label)}.")
        return 0
    print(runs_table(runs))
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    """``nbflow status``: one run's task table, then the errors of its failed tasks."""
    with closing(open_store(args.store, must_exist=True)) as store:
        run = find_run(store, args.run_id)
        tasks = store.tasks(run["id"])
        params = _params(run["params"]) or {}
        missed = missed_deadlines(store.events(run["id"])) if params.pop("deadlines", False) \
            else []
    failed = failure_report(run, tasks)
    groups = params.pop("groups", {}) if isinstance(params, dict) else {}
    took = (f"took {elapsed(run['created'], run['finished'])}" if run["finished"] is not None
            else "not finished")
    print(f"run {word(run['id'])} of flow {word(run['flow'])!r}: {word(run['state'])}")
    print(f"created {clock(run['created'])}, {took}; {params_text(run['params'])}")
    given = notebook_params_of(run["params"])
    if given:
        print("notebook parameters: " + ", ".join(
            f"{clean(k)}={clean(json.dumps(v), one_line=True, limit=200)}"
            for k, v in given.items()))
    if args.by == "group":
        print(groups_table(tasks, groups))
        return 0
    rows = [[clean(t["name"], one_line=True, limit=40), word(t["state"]), word(t["level"]),
             word(t["attempt"]), clock(t["started"], "%H:%M:%S"),
             elapsed(t["started"], t["finished"]), clean(t["error"], one_line=True, limit=80)]
            for t in tasks]
    print(table(["task", "state", "level", "attempt", "started", "duration", "error"], rows))
    if missed:
        print("\n" + "\n".join(missed))
    if failed:
        print("\n" + "\n".join(failed))
    return 0


# -- nbflow prune / nbflow du ---------------------------------------------------------------
def cmd_prune(args: argparse.Namespace) -> int:
    """``nbflow prune``: delete old runs and the result files no kept run needs."""
    from .store.usage import human
    with closing(open_store(args.store, must_exist=True)) as store:
        if args.flow is not None and not store.runs(flow=args.flow, limit=1):
            flows = sorted({r["flow"] for r in store.runs()})
            raise UsageError(f"the store {store.label} has no runs of flow {clean(args.flow)!r}"
                             "; its flows are: "
                             + (", ".join(repr(clean(f)) for f in flows) or "none yet"))
        report = store.prune(args.keep, older_than=args.older_than, before=args.before,
                             flow=args.flow, dry_run=args.dry_run,
                             vacuum=True if args.vacuum else None)
        label = store.label
    verb = "would delete" if report.dry_run else "deleted"
    flows = ", ".join(f"flow {clean(f)!r}: {n}" for f, n in sorted(report.by_flow().items()))
    print(f"nbflow prune: {verb} {len(report.runs)} run(s)" + (f" ({flows})" if flows else "")
          + f" in the store {clean(label)}")
    if report.dry_run and report.runs:
        print(table(["run", "flow", "state", "created"],
                    [[clean(r["id"]), clean(r["flow"], one_line=True, limit=30),
                      clean(r["state"]), clock(r["created"])] for r in report.runs]))
    rows = report.rows
    print(f"  rows: {rows['runs']} runs, {rows['tasks']} tasks, {rows['events']} events, "
          f"{rows['logs']} logs ({human(report.log_bytes)}), {rows['dead_letters']} dead "
          f"letters, {rows['results']} cache index rows")
    print(f"  result files: {report.files} ({human(report.file_bytes)}) in "
          f"{clean(report.folder)!r}"
          + (f"; {report.recent} too recent to delete yet (the next prune deletes them)"
             if report.recent else ""))
    for run_id, why in sorted(report.kept.items()):
        print(f"  kept run {clean(run_id)}: {clean(why)}")
    for name, why in report.skipped:
        print(f"  left {clean(name)!r} alone: {clean(why)}")
    vac = report.vacuum
    if vac is not None and vac.skipped:
        print(f"  not vacuumed: {clean(vac.skipped)}")
    elif vac is not None:
        notes = "".join(f", {clean(n)}" for n in vac.notes)
        print(f"  vacuumed: database {human(vac.before)} -> {human(vac.after)} "
              f"({human(max(0, vac.before - vac.after))} reclaimed{notes})")
    return 0


def cmd_du(args: argparse.Namespace) -> int:
    """``nbflow du``: what the store and its results folder take, and what a prune frees."""
    from .store.policy import DEFAULT_DAYS, DEFAULT_KEEP
    from .store.usage import human
    with closing(open_store(args.store, must_exist=True)) as store:
        use = store.usage()
    parts = ", ".join(f"{clean(k)} {human(v)}" for k, v in use.database.items())
    free = (f"; {human(use.free_bytes)} of it free pages (nbflow prune --vacuum returns them)"
            if use.free_bytes else "")
    print(f"store {clean(use.store)} ({clean(use.backend)}): {human(use.database_bytes)} "
          f"({parts}){free}")
    print("rows: " + ", ".join(f"{clean(t)} {n}" for t, n in use.rows.items()))
    if use.flows:
        print(table(["flow", "runs", "events", "logs", "first run", "last run"],
                    [[clean(f["flow"], one_line=True, limit=30), str(f["runs"]),
                      str(f["events"]), human(f["log_bytes"]), clock(f["first"]),
                      clock(f["last"])] for f in use.flows]))
    res = use.results
    print(f"results {clean(res.folder)!r}: {res.files} files, {human(res.bytes)}"
          + (f" (and {res.others} other entries, {human(res.other_bytes)})" if res.others else "")
          + (f"; {clean(res.problem)}" if res.problem else ""))
    gain = use.reclaimable
    print(f"nbflow prune (by default it keeps the last {DEFAULT_KEEP} runs of each flow and "
          f"those of the last {DEFAULT_DAYS} days) would delete {len(gain.runs)} run(s), "
          f"{gain.rows['events']} events, {human(gain.log_bytes)} of logs and {gain.files} "
          f"result files ({human(gain.file_bytes)}); nbflow prune --dry-run --keep N shows "
          "other choices.")
    return 0


def missed_deadlines(events: list[tuple]) -> list[str]:
    """One line per task whose deadline passed before it ended (its noted event)."""
    return [f"task {clean(ev[2], one_line=True, limit=60)!r} missed its deadline "
            f"({clock(ev[7]['deadline'], '%H:%M:%S')}) while {ev[5]}"
            for ev in events if ev[4] == ev[5] and ev[7] and "deadline" in ev[7]]


def groups_table(tasks: list[dict[str, Any]], groups: dict[str, str]) -> str:
    """``nbflow status --by group``: one line per group, its rolled-up state and counts."""
    from .core.rollup import by_group
    rows = by_group([groups.get(t["name"]) for t in tasks], [t["state"] for t in tasks])
    return table(["group", "state", "tasks", "counts"],
                 [[clean(r["group"], one_line=True, limit=60), r["state"], str(r["tasks"]),
                   counts_text({k: v for k, v in r.items()
                                if k not in ("group", "state", "tasks")})] for r in rows])


# -- argument parsing --------------------------------------------------------------------------
def _at_least_one(text: str) -> int:
    if not (text.isascii() and text.isdigit()) or int(text) < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number of at least 1, got {text!r}")
    return int(text)


def _checked(parse):
    """An argparse type that keeps ``text`` once ``parse(text)`` accepted it."""
    def check(text: str) -> str:
        try:
            parse(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(f"must be {exc}") from None
        return text
    return check


def _whole(text: str) -> int:
    if not (text.isascii() and text.isdigit()):
        raise argparse.ArgumentTypeError(f"must be a whole number >= 0, got {text!r}")
    return int(text)


def parser() -> argparse.ArgumentParser:
    """The argument parser of the ``nbflow`` command and its subcommands."""
    from . import __version__
    from .store.policy import parse_age, parse_date
    p = argparse.ArgumentParser(
        prog="nbflow", description="Run notebook flows headless and look at their runs.")
    p.add_argument("--version", action="version", version=f"nbflow {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    store_help = ("the store: a SQLite file or a SQLAlchemy URL (default: NBFLOW_STORE, else "
                  ".nbflow/nbflow.db in the {})")

    run = sub.add_parser("run", help="execute a notebook in a fresh kernel, with live progress",
                         description="Execute NOTEBOOK top to bottom in a fresh kernel and show "
                         "the progress of the runs it starts. Exit status: 0 all runs "
                         "succeeded, 1 a run did not, 2 the notebook raised, 130 interrupted.")
    run.add_argument("notebook", metavar="NOTEBOOK", help="the .ipynb file to execute")
    # The same checks as Flow.run's workers= and a task's timeout= (core/options.py).
    run.add_argument("--workers", type=flag_type("workers"), metavar="N",
                     help="default number of workers for the notebook's runs (NBFLOW_WORKERS)")
    run.add_argument("--policy", choices=sorted(POLICIES), metavar="NAME",
                     help="default scheduling policy for the notebook's runs (NBFLOW_POLICY): "
                     + ", ".join(sorted(POLICIES)))
    run.add_argument("--store", metavar="URL", help=store_help.format("notebook's folder"))
    run.add_argument("--timeout", type=flag_type("timeout"), metavar="SECONDS",
                     help="fail a cell that runs longer than this (default: no limit)")
    run.add_argument("-p", "--param", nargs=2, action="append", default=[], dest="params",
                     metavar=("NAME", "VALUE"),
                     help="set a notebook parameter after the cell tagged 'parameters' "
                     "(True, False, None, numbers are read as such, anything else as text)")
    run.add_argument("-f", "--params-file", action="append", default=[], dest="param_files",
                     metavar="FILE", help="set the parameters of a YAML or JSON file (-p "
                     "options override them)")
    run.set_defaults(handler=cmd_run)

    runs = sub.add_parser("runs", help="list runs, newest first",
                          description="List runs, newest first, with their task counts.")
    runs.add_argument("--flow", metavar="NAME", help="only runs of this flow")
    runs.add_argument("--limit", type=_at_least_one, default=20, metavar="N",
                      help="show at most N runs (default: 20)")
    runs.add_argument("--store", metavar="URL", help=store_help.format("current folder"))
    runs.set_defaults(handler=cmd_runs)

    status = sub.add_parser("status", help="show the tasks of one run",
                            description="Show the task table of a run and the errors of its "
                            "failed tasks.")
    status.add_argument("run_id", nargs="?", metavar="RUN_ID",
                        help="a run id or a unique prefix of one (default: the latest run)")
    status.add_argument("--by", choices=["group"],
                        help="one line per group (with --by group) instead of per task")
    status.add_argument("--store", metavar="URL", help=store_help.format("current folder"))
    status.set_defaults(handler=cmd_status)

    prune = sub.add_parser("prune", help="delete old runs and the result files they leave",
                           description="Delete old runs of every flow (or of --flow), with "
                           "their rows and the result files no kept run needs. Live runs and "
                           "the runs a kept run resumed always stay. Without --keep, "
                           "--older-than or --before: keep the last 50 runs of each flow and "
                           "those of the last 30 days.")
    prune.add_argument("--keep", type=_whole, metavar="N",
                       help="keep the newest N runs of each flow")
    when = prune.add_mutually_exclusive_group()
    when.add_argument("--older-than", metavar="AGE", type=_checked(parse_age),
                      help="delete runs created more than AGE ago: 30d, 12h, 90m, 2w")
    when.add_argument("--before", metavar="DATE", type=_checked(parse_date),
                      help="delete runs created before DATE (local time): 2026-01-01")
    prune.add_argument("--flow", metavar="NAME", help="only runs of this flow")
    prune.add_argument("--dry-run", action="store_true", help="only show what would go")
    prune.add_argument("--vacuum", action="store_true",
                       help="compact the database afterwards (by default only when the prune "
                       "freed a lot)")
    prune.add_argument("--store", metavar="URL", help=store_help.format("current folder"))
    prune.set_defaults(handler=cmd_prune)

    du = sub.add_parser("du", help="show what the store and its results take",
                        description="Show the size of the store's database and results "
                        "folder, rows per table and per flow, and what nbflow prune would free.")
    du.add_argument("--store", metavar="URL", help=store_help.format("current folder"))
    du.set_defaults(handler=cmd_du)
    return p


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``nbflow`` command; returns the exit status."""
    args = parser().parse_args(argv)
    try:
        return args.handler(args)
    except NbflowError as exc:
        sys.stderr.write(f"nbflow {args.command}: error: {clean(exc)}\n")
        return 2
    except Exception as exc:
        from sqlalchemy.exc import SQLAlchemyError
        if not isinstance(exc, SQLAlchemyError):
            raise
        # A store that fails in a way nbflow does not name: its message can quote
        # the store's bytes, so it is cleaned like them, and there is no traceback.
        reason = getattr(exc, "orig", None) or exc
        sys.stderr.write(f"nbflow {args.command}: error: the store could not be read: "
                         f"{clean(reason, one_line=True, limit=300)}. Check the store "
                         "given by --store or NBFLOW_STORE.\n")
        return 2
    except KeyboardInterrupt:  # before a kernel started: nothing to stop or report
        sys.stderr.write("nbflow: interrupted\n")
        return 130


if __name__ == "__main__":
    sys.exit(main())
