"""What each scheduling policy costs: ``python -m benchmarks.policies [--repeat K] [--tiny]``.

The wide and layered graphs of ``workloads.py`` (10,000 no-op tasks), each run
with every policy, and with fifo and priority when every task holds a slot of
one of two pools (4 slots each, tasks alternating, 8 workers); all against fifo
without pools in the same process, the variants interleaved.  The tasks differ
as a real flow's do: ten priorities and a deadline each (far enough not to be
missed), so that no policy's keys are all equal (equal keys make every policy
fifo, and would measure nothing of it); sjf and critical_path take the expected
durations from the store's history of the warm-up runs.  Targets
(issue 12): at most 1.15x fifo for each policy, 1.3x with two pools.  The
ratios are of wall time and of process CPU time (the steadier figure on a
shared machine).
"""

from __future__ import annotations

import argparse
import os
import tempfile
from collections.abc import Sequence

from . import measure
from .run import interleave, machine
from .workloads import WORKERS, layered, noop, wide

POLICIES = ("fifo", "priority", "aging", "sjf", "edf", "critical_path")
POOLED = ("fifo", "priority")
LIMIT, POOL_LIMIT = 1.15, 1.3


def shapes(tiny: bool) -> dict[str, tuple[list[str], list[list[str]]]]:
    n = 50 if tiny else 10_000
    return {"wide": wide(n), "layered": layered(n, 5 if tiny else 100)}


def varied_flow(name: str, names: Sequence[str], deps: Sequence[Sequence[str]], store: str,
                pools: bool):
    """The graph with ten priorities and a deadline per task; with ``pools`` each task
    holds a slot of one of two pools."""
    flow = measure.declare(name, [], [], noop, store)
    if pools:
        flow.pool("a", slots=WORKERS // 2)
        flow.pool("b", slots=WORKERS // 2)
    for k, (task, after) in enumerate(zip(names, deps)):
        holds = {"resources": {"ab"[k % 2]: 1}} if pools else {}
        flow.task(noop, name=task, after=after, priority=(k * 7) % 10,
                  deadline=600 + (k * 13) % 3600, **holds)
    return flow


def measure_shape(shape: str, names, deps, store: str, repeat: int) -> list[tuple]:
    plain = varied_flow(f"{shape}-policies", names, deps, store, pools=False)
    pooled = varied_flow(f"{shape}-pools", names, deps, store, pools=True)

    def runner(flow, policy):
        return lambda: measure.timed(lambda: _checked(flow.run(workers=WORKERS, policy=policy)))

    for flow in (plain, pooled):   # first runs build and validate the flow: off the clock
        _checked(flow.run(workers=WORKERS))
    runners = {p: runner(plain, p) for p in POLICIES}
    runners.update({f"{p}+2 pools": runner(pooled, p) for p in POOLED})
    try:
        wall, cpu = interleave(runners, repeat)
    finally:
        plain.store.close()
        pooled.store.close()
    rows = []
    for name in runners:
        limit = POOL_LIMIT if "pools" in name else LIMIT
        ratio, cpu_ratio = wall[name] / wall["fifo"], cpu[name] / cpu["fifo"]
        rows.append((shape, name, wall[name], ratio, cpu_ratio, limit))
    return rows


def _checked(run):
    measure.check(run)
    return run


def main(argv: Sequence[str] | None = None) -> list[tuple]:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.policies")
    parser.add_argument("--repeat", type=int, default=5, metavar="K")
    parser.add_argument("--tiny", action="store_true", help="50-task graphs")
    args = parser.parse_args(argv)
    info = machine()
    print(f"nbflow policy overhead, {info['date']}: {info['cpus']} x {info['cpu']}, load average "
          f"{info['load']}; {WORKERS} workers, median of {args.repeat}", flush=True)
    rows = []
    with tempfile.TemporaryDirectory(prefix="nbflow-bench-") as tmp:
        store = os.path.join(tmp, "bench.db")
        measure.warm_up(store, WORKERS)
        for shape, (names, deps) in shapes(args.tiny).items():
            rows += measure_shape(shape, names, deps, store, args.repeat)
    print(f"{'graph':<8} {'policy':<18} {'wall':>9} {'x fifo':>7} {'CPU x fifo':>10}  target")
    for shape, name, seconds, ratio, cpu_ratio, limit in rows:
        verdict = ", ".join(f"{what} {'PASS' if r <= limit else 'FAIL'}"
                            for what, r in (("wall", ratio), ("CPU", cpu_ratio)))
        print(f"{shape:<8} {name:<18} {seconds * 1000:7.1f}ms {ratio:6.2f}x {cpu_ratio:9.2f}x  "
              f"<= {limit:g}x: {verdict}")
    print(f"load average at the end: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    return rows


if __name__ == "__main__":
    main()
