"""Scale-out benchmarks (issue 15): ``python -m benchmarks.scale [--only NAME] [--repeat K]``.

Every comparison is made in one process, in one sitting, with its runners
interleaved (``run.interleave``), so the ratios hold on a busy machine:

* ``executor``: 2,000 value-returning no-op tasks through ``DaskExecutor`` on a
  ``LocalCluster`` against plain ``client.submit`` + ``client.gather`` of the same
  work on the same cluster (nbflow records the run in a SQLite store, as always).
* ``get-array`` / ``get-delayed``: ``dask.compute`` through ``nbflow.dask.get``
  against ``dask.threaded.get``, on a ``dask.array`` reduction of 10,000 chunks
  and on a 10,000-task delayed graph; no store, no dashboard.
* ``persist``: seconds of persistence per task, PostgreSQL against SQLite: a
  2,000-task run recorded in each, minus the same run with nothing recorded.
* ``shared``: four processes, each driving a run of 2,000 tasks on one store
  (SQLite, then PostgreSQL when one can be started), while it is read.
"""

from __future__ import annotations

import argparse
import functools
import os
import statistics
import sys
import tempfile
from collections.abc import Callable, Sequence

from . import load, measure
from .run import interleave

TASKS = 2_000
CHUNKS = 10_000


def value(i: int = 0) -> int:
    return i


def one() -> int:
    """The executor benchmark's task: a no-op that returns a value."""
    return 1


def executor_vs_client(repeat: int, tiny: bool) -> dict:
    import distributed

    import nbflow
    from nbflow.executors import DaskExecutor

    n = 50 if tiny else TASKS
    workers = 4
    with tempfile.TemporaryDirectory() as tmp, \
            distributed.LocalCluster(n_workers=workers, threads_per_worker=1,
                                     processes=False, dashboard_address=":0") as cluster, \
            distributed.Client(cluster, set_as_default=False) as client:
        flow = nbflow.Flow("dask-executor", store=os.path.join(tmp, "bench.db"))
        for i in range(n):   # one function, as a flow built in a loop declares it
            flow.task(one, name=f"t{i}")
        flow.store  # noqa: B018 (the property opens it, before the clock starts)
        ex = DaskExecutor(client)

        def nbflow_run() -> measure.Timing:
            timing = measure.timed(lambda: flow.run(executor=ex))
            measure.check(timing.result)
            return timing

        def plain() -> measure.Timing:
            def submit_gather():
                futures = [client.submit(one, pure=False) for _ in range(n)]
                return client.gather(futures)
            return measure.timed(submit_gather)

        nbflow_run(), plain()   # warm-up: imports, the first connections
        rounds = paired({"nbflow": nbflow_run, "client": plain}, repeat)
        flow.store.close()
    for k, r in enumerate(rounds, 1):
        print(f"executor round {k}: nbflow {r['nbflow'].seconds:.3f} s, client "
              f"{r['client'].seconds:.3f} s: {r['nbflow'].seconds / r['client'].seconds:.2f}x "
              f"(CPU {r['nbflow'].cpu / r['client'].cpu:.2f}x)", file=sys.stderr)
    return {"name": "executor", "what": f"{n} value-returning tasks, DaskExecutor vs "
            f"client.submit+gather, LocalCluster of {workers} threads (median of {repeat} "
            f"rounds' ratios)", "nbflow": statistics.median(r["nbflow"].seconds for r in rounds),
            "baseline": statistics.median(r["client"].seconds for r in rounds), "limit": 1.3,
            "ratio": statistics.median(r["nbflow"].seconds / r["client"].seconds
                                       for r in rounds)}


def paired(runners: dict[str, Callable[[], measure.Timing]], repeat: int
           ) -> list[dict[str, measure.Timing]]:
    """Each round's timing of every runner, the first one rotating: the ratio within a
    round compares runs made under the same load."""
    order, rounds = list(runners), []
    for k in range(repeat):
        rounds.append({name: runners[name]()
                       for name in order[k % len(order):] + order[:k % len(order)]})
    return rounds


def get_vs_threaded(kind: str, repeat: int, tiny: bool) -> dict:
    import dask
    import dask.array as da
    import dask.threaded

    import nbflow.dask

    n = 100 if tiny else CHUNKS
    if kind == "array":
        x = da.ones((n * 10,), chunks=10).sum()
        what = f"dask.array sum of {n} chunks"
    else:
        inc = dask.delayed(lambda v: v + 1, pure=True)
        parts = [inc(i) for i in range(n // 2)]
        x = dask.delayed(sum)([inc(p) for p in parts])
        what = f"delayed graph of {n + 1} tasks"

    def run(get) -> measure.Timing:
        return measure.timed(lambda: x.compute(scheduler=get))

    runners = {"nbflow": lambda: run(nbflow.dask.get),
               "threaded": lambda: run(dask.threaded.get)}
    for fn in runners.values():
        fn()
    seconds, _cpu = interleave(runners, repeat)
    return {"name": f"get-{kind}", "what": what + ", nbflow.dask.get vs dask.threaded.get",
            "nbflow": seconds["nbflow"], "baseline": seconds["threaded"], "limit": 1.5}


def _postgres():
    """A throwaway PostgreSQL server (the tests' fixture class), or None if none can start."""
    sys.path.insert(0, os.path.join(load.ROOT, "tests"))
    try:
        from conftest import _Postgres
        return _Postgres()
    except Exception as exc:  # no server here: the PostgreSQL figures are left out
        print(f"PostgreSQL left out: {exc}", file=sys.stderr)
        return None


def _store_urls(tmp: str, server) -> dict[str, str]:
    """A new SQLite file in ``tmp`` and, with a server, a new PostgreSQL database."""
    urls = {"sqlite": os.path.join(tmp, "bench.db")}
    if server is not None:
        urls["postgres"] = server.new_database()
    return urls


def persistence(repeat: int, tiny: bool, server) -> list[dict]:
    """Seconds of recording per task: (recorded run - unrecorded run) / tasks."""
    import nbflow
    from nbflow.core.engine import Engine
    from nbflow.executors import ThreadExecutor

    n = 100 if tiny else TASKS
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        urls = _store_urls(tmp, server)
        flows = {}
        for label, url in urls.items():
            flows[label] = nbflow.Flow(f"persist-{label}", store=url)
            for i in range(n):
                flows[label].task(functools.partial(value, i), name=f"t{i}")
            flows[label].store  # noqa: B018 (the property opens it)
        graph, specs = flows["sqlite"].build()

        def bare() -> measure.Timing:
            return measure.timed(lambda: Engine(graph, specs, ThreadExecutor(4)).run())

        runners = {label: functools.partial(measure.time_flow, flow, 4)
                   for label, flow in flows.items()}
        runners["nothing recorded"] = bare
        for fn in runners.values():
            fn()
        seconds, _cpu = interleave(runners, repeat)
        for flow in flows.values():
            flow.store.close()
    per_task = {label: (seconds[label] - seconds["nothing recorded"]) / n for label in urls}
    for label in urls:
        rows.append({"name": f"persist-{label}", "what": f"recording one task's events and "
                     f"result, {label} ({n}-task runs)", "nbflow": per_task[label],
                     "baseline": per_task["sqlite"], "limit": None, "unit": "s/task"})
    return rows


def shared(tiny: bool, server) -> list[dict]:
    n = 100 if tiny else TASKS
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        urls = _store_urls(tmp, server)
        for label, url in urls.items():
            one = load.shared_store(url, procs=1, tasks=n, read=False)
            four = load.shared_store(url, procs=4, tasks=n)
            for done in (one, four):
                bad = [r["stderr"] for r in done["reports"] if r["returncode"] != 0]
                if bad:
                    raise RuntimeError(f"a driver failed on {label}:\n{bad[0]}")
            runs_one = one["reports"][0]["result"]["seconds"][0]
            runs_four = max(r["result"]["seconds"][0] for r in four["reports"])
            rows.append({"name": f"shared-{label}", "what": f"4 processes x {n} tasks on one "
                         f"{label} store (slowest run) vs 1 process alone, "
                         f"{len(four['reads'])} reads meanwhile", "nbflow": runs_four,
                         "baseline": runs_one, "limit": None})
    return rows


def table(rows: Sequence[dict]) -> str:
    lines = ["| benchmark | nbflow | baseline | ratio | target |", "| --- | --- | --- | --- | --- |"]
    for r in rows:
        unit = r.get("unit", "s")
        fmt = (lambda v: f"{v * 1e6:.1f} us") if unit == "s/task" else (lambda v: f"{v:.3f} s")
        ratio = r.get("ratio") or (r["nbflow"] / r["baseline"] if r["baseline"] else float("nan"))
        target = "-" if r["limit"] is None else (
            f"<= {r['limit']:g}x " + ("PASS" if ratio <= r["limit"] else "FAIL"))
        lines.append(f"| {r['name']}: {r['what']} | {fmt(r['nbflow'])} | "
                     f"{fmt(r['baseline'])} | {ratio:.2f}x | {target} |")
    return "\n".join(lines)


NAMES = ("executor", "get-array", "get-delayed", "persist", "shared")


def main(argv: Sequence[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.scale", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", action="append", choices=NAMES)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--tiny", action="store_true", help="small sizes: checks the harness")
    args = parser.parse_args(argv)
    chosen = args.only or NAMES
    rows: list[dict] = []
    server = _postgres() if {"persist", "shared"} & set(chosen) else None
    try:
        if "executor" in chosen:
            rows.append(executor_vs_client(args.repeat, args.tiny))
        for kind in ("array", "delayed"):
            if f"get-{kind}" in chosen:
                rows.append(get_vs_threaded(kind, args.repeat, args.tiny))
        if "persist" in chosen:
            rows.extend(persistence(args.repeat, args.tiny, server))
        if "shared" in chosen:
            rows.extend(shared(args.tiny, server))
    finally:
        if server is not None:
            server.stop()
    print(f"load average before: {os.getloadavg()[0]:.1f}")
    print(table(rows))
    return rows


if __name__ == "__main__":
    main()
