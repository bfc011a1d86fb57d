"""A flow of 30 tasks, run (or resumed) by a process that the kill test ends with SIGKILL.

Usage: ``python crashable_flow.py STORE EXECUTIONS new|resume``.

Every execution of a task first appends the task's name to the EXECUTIONS file
(one ``os.write`` of a short line on an ``O_APPEND`` file: whole or absent,
whenever the process dies), so the test counts real executions, not events.
The flow is the same in every process (fixed shape, fixed source text), so
its result keys match from one process to the next.  The process prints
``go`` just before the run starts, and ``done`` once it has ended.
"""

from __future__ import annotations

import os
import random
import sys
import time

from nbflow import Flow

TASKS = 30
SHAPE = random.Random(30)   # the flow's shape: not the test's seed, the same every time
DEPS = {f"t{k:02d}": sorted(f"t{d:02d}" for d in SHAPE.sample(range(k), min(k, SHAPE.randint(0, 3))))
        for k in range(TASKS)}
SECONDS = {name: SHAPE.uniform(0.02, 0.2) for name in DEPS}


def work(name: str, inputs: list[int]) -> int:
    fd = os.open(os.environ["EXECUTIONS"], os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    try:
        os.write(fd, f"{name}\n".encode())
    finally:
        os.close(fd)
    time.sleep(SECONDS[name])
    return sum(inputs) + int(name[1:]) + 1


def declare(flow: Flow) -> None:
    namespace = {"work": work}
    for name, deps in DEPS.items():
        # Parameters named after the dependencies: their results come in.
        exec(f"def {name}({', '.join(deps)}):\n"
             f"    return work({name!r}, [{', '.join(deps)}])\n", namespace)
        flow.task(namespace[name])


def expected_results() -> dict[str, int]:
    out: dict[str, int] = {}
    for name, deps in DEPS.items():
        out[name] = sum(out[d] for d in deps) + int(name[1:]) + 1
    return out


def main(store: str, executions: str, mode: str) -> None:
    os.environ["EXECUTIONS"] = executions
    flow = Flow("crashable", store=store, workers=4)
    declare(flow)
    flow.store   # opened before "go": the kill points fall in the run, not in imports
    print("go", flush=True)
    run = flow.run(resume=mode == "resume")
    print("done", run.state, flush=True)


if __name__ == "__main__":
    main(*sys.argv[1:])
