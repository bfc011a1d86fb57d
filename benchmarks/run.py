"""Run the benchmarks and print the table: ``python -m benchmarks.run [--only NAME] [--repeat K]``.

Each workload runs ``K`` times for each runner, and the median is reported.  The
runners are interleaved within each repetition (and the one that goes first
rotates), so a burst of load from something else on the machine lands on all of
them alike and the ratios stay meaningful on a busy machine.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import statistics
import subprocess
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from . import baselines, measure
from .workloads import (
    BY_NAME,
    SIMULATED_PER_SECOND,
    WORKERS,
    WORKLOADS,
    Workload,
    chain,
    noop,
    sim_durations,
)


@dataclass
class Row:
    """One measured workload: medians in seconds (bytes per task for ``memory``)."""

    workload: Workload
    nbflow: float
    baseline: float | None = None
    dask: float | None = None
    reference: float | None = None   # what the ratio is taken against
    cpu: dict[str, float] | None = None  # median process CPU seconds per runner
    extra: str = ""
    declare: float | None = None     # median seconds to declare the flow (run workloads)

    tasks: int = 0                   # simulate: how many tasks were simulated

    @property
    def per_second(self) -> float:
        return self.tasks / self.nbflow if self.nbflow else 0.0

    @property
    def ratio(self) -> float | None:
        return None if self.reference is None else self.nbflow / self.reference

    @property
    def total_ratio(self) -> float | None:
        """(declaration + run) / baseline."""
        if self.declare is None or self.reference is None:
            return None
        return (self.declare + self.nbflow) / self.reference

    @property
    def passed(self) -> bool:
        w = self.workload
        if w.kind == "memory":
            return self.nbflow <= w.limit
        ok = self.ratio <= w.limit
        if w.kind == "simulate":
            ok = ok and self.per_second >= SIMULATED_PER_SECOND
        if w.total_limit is not None:
            ok = ok and self.total_ratio <= w.total_limit
        return ok and (not w.beat_dask or self.nbflow < self.dask)

    @property
    def target(self) -> str:
        w = self.workload
        if w.kind == "memory":
            return f"<= {w.limit:.0f} B/task"
        if w.kind == "sleep":
            return f"<= {w.limit:g}x bound ({self.reference:.3f} s slept)"
        if w.kind == "simulate":
            return (f"<= {w.limit:g}x list scheduler, >= {SIMULATED_PER_SECOND:,} tasks/s "
                    f"({self.per_second:,.0f})")
        against = "graphlib" if w.kind == "levelling" else "baseline"
        return (f"<= {w.limit:g}x {against}" + (", < dask" if w.beat_dask else "")
                + (f"; declare+run <= {w.total_limit:g}x" if w.total_limit else ""))


def interleave(runners: dict[str, Callable[[], measure.Timing]], repeat: int
               ) -> tuple[dict[str, float], dict[str, float]]:
    """Run every runner in each of ``repeat`` rounds: median seconds and CPU seconds of each."""
    samples: dict[str, list[measure.Timing]] = {name: [] for name in runners}
    order = list(runners)
    for k in range(repeat):
        for name in order[k % len(order):] + order[:k % len(order)]:
            samples[name].append(runners[name]())
    return ({name: statistics.median(t.seconds for t in ts) for name, ts in samples.items()},
            {name: statistics.median(t.cpu for t in ts) for name, ts in samples.items()})


def measure_workload(w: Workload, store: str, repeat: int, tiny: bool) -> Row:
    """Run workload ``w`` and return its row (see ``Workload.kind`` for what is measured)."""
    names, deps = w.shape(tiny)
    fn = w.task()
    if w.kind == "memory":
        per_task, graph_per_task = measure.engine_memory(names, deps)
        return Row(w, per_task, extra=f"graph+specs {graph_per_task:.0f} B/task")
    if w.kind == "simulate":
        flow = measure.declare(w.name, names, deps, noop)
        durations = sim_durations(names)
        flow.build()
        m, cpu = interleave({
            "nbflow": lambda: measure.timed(measure.simulate_flow, flow, durations, WORKERS),
            "list scheduler": lambda: measure.timed(baselines.list_schedule, names, deps,
                                                    durations, WORKERS)}, repeat)
        return Row(w, m["nbflow"], baseline=m["list scheduler"], reference=m["list scheduler"],
                   cpu=cpu, tasks=len(names))
    if w.kind == "levelling":
        m, cpu = interleave({"nbflow": lambda: measure.timed(measure.build_graph, names, deps),
                             "graphlib": lambda: measure.timed(baselines.graphlib_levels,
                                                               names, deps)}, repeat)
        return Row(w, m["nbflow"], baseline=m["graphlib"], reference=m["graphlib"], cpu=cpu)
    nb_fn = w.nbflow_task(fn)
    flow = measure.declare(w.name, names, deps, nb_fn, store, w.values)

    bounds: list[float] = []   # sleep: the bound of each nbflow run, from its tasks' sleeps
    declared: list[float] = []   # run: seconds to declare a fresh flow, per repetition

    def nbflow_makespan() -> measure.Timing:
        fn.slept.clear()
        timing = measure.time_flow(flow, WORKERS)
        bounds.append(measure.scheduling_bound(flow, dict(fn.slept), WORKERS))
        return timing._replace(seconds=measure.makespan(timing.result))

    def nbflow_declare_and_run() -> measure.Timing:
        # A fresh flow each time, as a kernel that runs the declaring cells
        # again has: declared on the clock, then its first run timed alone.
        decl = measure.declare_timed(w.name, names, deps, nb_fn, flow.store, w.values)
        declared.append(decl.seconds)
        return measure.time_flow(decl.result, WORKERS)

    try:
        m, cpu = interleave({
            "nbflow": nbflow_makespan if w.kind == "sleep" else nbflow_declare_and_run,
            "baseline": lambda: measure.timed(baselines.graphlib_threads,
                                              names, deps, fn, WORKERS),
            "dask": lambda: measure.timed(baselines.dask_threaded, names, deps, fn, WORKERS),
        }, repeat)
        if w.kind == "sleep":
            nominal = measure.scheduling_bound(flow, dict.fromkeys(names, w.task_seconds),
                                               WORKERS)
            return Row(w, m["nbflow"], m["baseline"], m["dask"],
                       reference=statistics.median(bounds), cpu=cpu,
                       extra="nbflow: makespan from its events; others: wall time; bound from "
                             f"the time the tasks really slept (asked for: {nominal:.3f} s)")
        return Row(w, m["nbflow"], m["baseline"], m["dask"], reference=m["baseline"], cpu=cpu,
                   declare=statistics.median(declared))
    finally:
        flow.store.close()


def warm_up(store: str) -> None:
    """Import and start everything once (nbflow's store, dask's pool) off the clock."""
    measure.warm_up(store, WORKERS)
    names, deps = chain(10)
    baselines.graphlib_threads(names, deps, noop, WORKERS)
    baselines.dask_threaded(names, deps, noop, WORKERS)


def machine() -> dict[str, str]:
    """What the figures were measured on."""
    cpu = platform.processor() or "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    import dask

    import nbflow
    return {"date": datetime.date.today().isoformat(), "cpus": str(os.cpu_count()),
            "cpu": cpu, "python": platform.python_version(),
            "os": f"{platform.system()} {platform.release()}",
            "nbflow": f"{nbflow.__version__} at {source_version(nbflow.__file__)}",
            "dask": dask.__version__,
            "load": " ".join(f"{x:.1f}" for x in os.getloadavg())}


def source_version(module_file: str) -> str:
    """The git commit the measured code comes from, ``+dirty`` if it has uncommitted changes."""
    folder = os.path.dirname(os.path.abspath(module_file))
    try:
        commit = subprocess.run(["git", "-C", folder, "rev-parse", "--short", "HEAD"],
                                capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", folder, "status", "--porcelain", "--", "."],
                               capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "an unknown commit (not a git checkout)"
    return f"commit {commit}" + ("+dirty" if dirty else "")


def _value(v: float | None, kind: str) -> str:
    if v is None:
        return "-"
    if kind == "memory":
        return f"{v:.0f} B/task"
    return f"{v:.3f} s" if v >= 1 else f"{v * 1000:.1f} ms"


def table(rows: Sequence[Row], markdown: bool) -> str:
    """The results as an aligned text table, or a Markdown one."""
    head = ["workload", "nbflow", "baseline", "ratio", "dask", "declare", "declare+run",
            "target", "result"]
    body = [[r.workload.name, _value(r.nbflow, r.workload.kind),
             _value(r.baseline, r.workload.kind),
             "-" if r.ratio is None else f"{r.ratio:.2f}x",
             _value(r.dask, r.workload.kind), _value(r.declare, r.workload.kind),
             "-" if r.total_ratio is None else f"{r.total_ratio:.2f}x",
             r.target, "PASS" if r.passed else "FAIL"]
            for r in rows]
    if markdown:
        lines = [head, ["---"] * len(head), *body]
        return "\n".join("| " + " | ".join(cells) + " |" for cells in lines)
    widths = [max(len(line[i]) for line in [head, *body]) for i in range(len(head))]
    return "\n".join("  ".join(c.ljust(wd) for c, wd in zip(line, widths)).rstrip()
                     for line in [head, *body])


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__.split(
        "\n")[0])
    parser.add_argument("--only", action="append", choices=list(BY_NAME), metavar="NAME",
                        help=f"run only this workload (repeatable): {', '.join(BY_NAME)}")
    parser.add_argument("--repeat", type=int, default=5, metavar="K",
                        help="repetitions per runner; the median is reported (default 5)")
    parser.add_argument("--tiny", action="store_true",
                        help="tiny graphs (~50 tasks): checks the harness, measures nothing")
    parser.add_argument("--markdown", action="store_true", help="print a Markdown table")
    args = parser.parse_args(argv)
    if args.repeat < 1:
        parser.error(f"--repeat must be at least 1, got {args.repeat}")
    return args


def main(argv: Sequence[str] | None = None) -> list[Row]:
    """Measure the chosen workloads, print the table, return its rows."""
    args = parse_args(argv)
    chosen = [BY_NAME[name] for name in args.only] if args.only else WORKLOADS
    info = machine()
    print(f"nbflow benchmarks, {info['date']}: {info['cpus']} x {info['cpu']}, "
          f"Python {info['python']}, {info['os']}; nbflow {info['nbflow']}, dask {info['dask']}; "
          f"load average {info['load']}; {WORKERS} workers, median of {args.repeat}"
          + (" (TINY sizes)" if args.tiny else ""),
          flush=True)
    rows = []
    with tempfile.TemporaryDirectory(prefix="nbflow-bench-") as tmp:
        store = os.path.join(tmp, "bench.db")
        warm_up(store)
        for w in chosen:
            row = measure_workload(w, store, args.repeat, args.tiny)
            rows.append(row)
            notes = [row.extra] if row.extra else []
            if row.cpu:
                notes.append("process CPU " + ", ".join(
                    f"{name} {_value(seconds, w.kind)}" for name, seconds in row.cpu.items()))
            print(f"  {w.name}: done" + (f" ({'; '.join(notes)})" if notes else ""), flush=True)
    print(table(rows, args.markdown))
    return rows


if __name__ == "__main__":
    main()
