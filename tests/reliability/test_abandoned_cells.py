"""A cell task's abandoned attempt never overwrites what a later attempt set; cell tasks
still read and write the notebook's namespace as before; a run's seed repeats its jitter.

Real threads and a real clock: the attempt that times out is still running when the
retry succeeds, and ends only when the test lets it.
"""

from __future__ import annotations

import json
import threading

import nbflow

WAIT = 10.0

# Attempt 1 waits, past its timeout, for the test to let it go; attempt 2 is quick.
SLOW_FIRST = """\
attempt = nbflow.current_task().attempt
if attempt == 1:
    started.set()
    release.wait(WAIT)
    value = "from the abandoned attempt"
    helper = "abandoned"
    finished.set()
else:
    value = "from the retry"
    helper = "retry"
"""


def test_an_abandoned_attempt_never_overwrites_what_the_retry_set(store_path):
    started, release, finished = threading.Event(), threading.Event(), threading.Event()
    namespace = {"nbflow": nbflow, "started": started, "release": release,
                 "finished": finished, "WAIT": WAIT}
    flow = nbflow.Flow("cells", store=store_path)
    flow.cell_task("slow", SLOW_FIRST, namespace, timeout=0.3, retries=1)
    run = flow.run(background=True).wait(WAIT)
    assert run.task_state("slow") == "succeeded"
    assert run.result("slow") == {"value": "from the retry", "helper": "retry",
                                  "attempt": 2}
    assert namespace["value"] == "from the retry"
    release.set()
    assert finished.wait(WAIT)
    run.flow.store.flush()
    # The abandoned attempt has ended: what it bound went nowhere.
    assert namespace["value"] == "from the retry" and namespace["helper"] == "retry"


def test_a_cell_task_reads_the_notebook_and_writes_every_name_it_binds(store_path):
    namespace = {"__name__": "__main__", "base": 10, "len": lambda x: -1}
    flow = nbflow.Flow("cells", store=store_path)
    flow.cell_task("make", "import math\n"
                           "def scaled(x):\n    return x * base * math.floor(1.5)\n"
                           "total = 0\n"
                           "for i in range(4):\n    total += i\n"
                           "size = len('abc')\n"
                           "class Point:\n    pass\n", namespace)
    run = flow.run()
    assert run.task_state("make") == "succeeded"
    assert namespace["total"] == 6 and namespace["size"] == -1   # the notebook's len wins
    assert namespace["math"].floor(2.5) == 2 and namespace["Point"].__module__ == "__main__"
    namespace["base"] = 100   # functions of the cell read the notebook's names live
    assert namespace["scaled"](2) == 200
    assert namespace["i"] == 3


def test_a_failed_cell_attempt_leaves_the_notebook_as_it_was(store_path):
    namespace = {"x": "before"}
    flow = nbflow.Flow("cells", store=store_path)
    flow.cell_task("half", "x = 'half-way'\nraise ValueError('stop')\n", namespace)
    assert flow.run().task_state("half") == "failed"
    assert namespace["x"] == "before"


def _retry_delays(flow: nbflow.Flow, **options) -> list[float]:
    run = flow.run(**options)
    events = run.events()
    return [json.loads(d)["retry_in"] if isinstance(d, str) else d["retry_in"]
            for d in events[events["to_state"] == "retrying"]["detail"]]


def test_a_seeded_run_repeats_its_jittered_delays(store_path):
    calls = []

    def flaky():
        calls.append(1)
        if len(calls) % 4:
            raise ConnectionError("again")

    flow = nbflow.Flow("seeded", store=store_path, executor="sync")
    flow.task(flaky, retries=3, retry_delay=0.001, backoff=2, max_delay=0.003, jitter=0.5)
    first = _retry_delays(flow, seed=11)
    assert len(first) == 3 and max(first) <= 0.003
    assert _retry_delays(flow, seed=11) == first
    assert _retry_delays(flow, seed=12) != first
    latest = flow.store.latest_run_id("seeded")
    assert json.loads(flow.store.run(latest)["params"])["seed"] == 12
