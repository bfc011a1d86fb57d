"""Where an nbflow run spends its time: ``python -m benchmarks.profile_run [NAME] [--top N]``.

Three runs of one ``run`` workload (``wide``, ``layered`` or ``chain``) on a fresh
store, after a warm-up run:

1. unprofiled: wall time and CPU time per thread (the engine is the calling
   thread, the store writer is ``nbflow-store-writer``, the rest is the workers),
   and of the store's writer process (``nbflow/store/writerproc.py``);
2. under cProfile, which sees only the calling (engine) thread: top functions by
   own time;
3. under yappi (``pip install yappi``, if present), which sees every thread:
   CPU time per thread and the store writer thread's top functions.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import io
import os
import pstats
import tempfile
import threading
import time
from collections.abc import Sequence

from . import measure
from .workloads import BY_NAME, WORKERS

WRITER_THREAD = "nbflow-store-writer"


def thread_cpu(name: str) -> float:
    """CPU seconds used so far by the live thread called ``name`` (0.0 if there is none)."""
    for t in threading.enumerate():
        if t.name == name and t.ident is not None:
            return time.clock_gettime(time.pthread_getcpuclockid(t.ident))
    return 0.0


def process_cpu(pid: int | None) -> float:
    """CPU seconds used so far by process ``pid`` (Linux; 0.0 for None), at the
    kernel's tick resolution (10 ms)."""
    if pid is None:
        return 0.0
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()   # the name may hold spaces
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class GcPauses:
    """Counts the garbage collector's passes and the time they take, in every thread."""

    def __init__(self):
        self.seconds = 0.0
        self.passes = [0, 0, 0]
        self._start = 0.0

    def __call__(self, phase: str, info: dict) -> None:
        if phase == "start":
            self._start = time.perf_counter()
        else:
            self.seconds += time.perf_counter() - self._start
            self.passes[info["generation"]] += 1

    def __enter__(self) -> GcPauses:
        gc.callbacks.append(self)
        return self

    def __exit__(self, *exc) -> None:
        gc.callbacks.remove(self)


def cpu_split(flow) -> dict[str, str]:
    """Wall and CPU seconds of one run, split between engine, store writer and the rest.

    Also the garbage collector's pauses, which stop every thread.
    """
    gc.collect()  # as measure.timed does, before anything is counted
    pid = flow.store.writer_pid
    engine0, writer0, process0 = time.thread_time(), thread_cpu(WRITER_THREAD), time.process_time()
    child0 = process_cpu(pid)
    with GcPauses() as pauses:
        start = time.perf_counter()
        measure.check(flow.run(workers=WORKERS))
        wall = time.perf_counter() - start
    engine = time.thread_time() - engine0
    writer = thread_cpu(WRITER_THREAD) - writer0
    workers = time.process_time() - process0 - engine - writer
    return {"wall": f"{wall:7.3f} s",
            "engine thread CPU": f"{engine:7.3f} s (includes the GC passes it triggered)",
            "store writer CPU": f"{writer:7.3f} s in its thread (folding and sending)",
            "writer process CPU": f"{process_cpu(pid) - child0:7.3f} s (another core; "
                                  f"pid {pid})",
            "worker threads CPU": f"{workers:7.3f} s",
            "GC pauses": f"{pauses.seconds:7.3f} s in {sum(pauses.passes)} passes "
                         f"(generations 0/1/2: {'/'.join(map(str, pauses.passes))})"}


def cprofile_top(flow, top: int) -> str:
    """cProfile's top ``top`` functions of one run, by own time (engine thread only)."""
    profiler = cProfile.Profile()
    profiler.enable()
    try:
        measure.check(flow.run(workers=WORKERS))
    finally:
        profiler.disable()
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).strip_dirs().sort_stats("tottime").print_stats(top)
    return out.getvalue()


def yappi_threads(flow, top: int) -> str:
    """CPU seconds per thread of one run, and the writer thread's top functions (yappi)."""
    try:
        import yappi
    except ImportError:
        return "yappi is not installed (pip install yappi): no per-thread profile.\n"
    yappi.clear_stats()
    yappi.set_clock_type("cpu")
    yappi.start(builtins=True)
    try:
        measure.check(flow.run(workers=WORKERS))
    finally:
        yappi.stop()
    # Worker threads have ended by now (the executor stops them with the run);
    # the engine (this thread) and the store writer are still alive.
    names = {t.ident: t.name for t in threading.enumerate()}
    out = io.StringIO()
    out.write("CPU seconds per thread (yappi):\n")
    writer_ctx = None
    ended = []
    for stat in sorted(yappi.get_thread_stats(), key=lambda s: -s.ttot):
        name = names.get(stat.tid)
        if name is None:
            ended.append(stat.ttot)
            continue
        if name == WRITER_THREAD:
            writer_ctx = stat.id
        out.write(f"  {stat.ttot:8.3f}  {name}\n")
    if ended:
        out.write(f"  {sum(ended):8.3f}  {len(ended)} threads that have ended (the workers)\n")
    if writer_ctx is not None:
        out.write(f"\n{WRITER_THREAD}: top {top} functions by own CPU time (yappi):\n")
        stats = yappi.get_func_stats(ctx_id=writer_ctx).sort("tsub", "desc")
        stats.print_all(out=out, columns={0: ("name", 60), 1: ("ncall", 8), 2: ("tsub", 8),
                                          3: ("ttot", 8)}, limit=top)
    yappi.clear_stats()
    return out.getvalue()


def main(argv: Sequence[str] | None = None) -> None:
    runnable = [name for name, w in BY_NAME.items() if w.kind == "run"]
    parser = argparse.ArgumentParser(prog="python -m benchmarks.profile_run",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("name", nargs="?", default="chain", choices=runnable,
                        help="the workload to profile (default: chain)")
    parser.add_argument("--top", type=int, default=15, help="functions to list (default 15)")
    parser.add_argument("--tiny", action="store_true", help="the workload's tiny size")
    args = parser.parse_args(argv)
    w = BY_NAME[args.name]
    names, deps = w.shape(args.tiny)
    with tempfile.TemporaryDirectory(prefix="nbflow-profile-") as tmp:
        store = os.path.join(tmp, "profile.db")
        measure.warm_up(store, WORKERS)
        flow = measure.declare(w.name, names, deps, w.nbflow_task(w.task()), store, w.values)
        try:
            measure.check(flow.run(workers=WORKERS))  # starts the store's writer thread
            split = cpu_split(flow)
            print(f"{w.name}: {w.what}, {WORKERS} workers, store {store}")
            for label, value in split.items():
                print(f"  {label:20} {value}")
            print(f"\ncProfile, engine (calling) thread, top {args.top} by tottime:")
            print(cprofile_top(flow, args.top))
            print(yappi_threads(flow, args.top))
        finally:
            flow.store.close()


if __name__ == "__main__":
    main()
