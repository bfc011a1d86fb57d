"""Properties of levelling and running random DAGs (Hypothesis), and determinism.

Random flows come from ``tests/flowgen.py``.
"""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys

import pytest
from flowgen import check_run, failing, plans
from hypothesis import given, settings
from hypothesis import strategies as st

from nbflow.core.graph import Graph
from nbflow.core.replay import replay
from nbflow.errors import CycleError

PROPERTY = settings(max_examples=60, deadline=None)


@PROPERTY
@given(plans())
def test_levels_respect_dependencies_and_list_each_task_once(plan):
    order, deps = plan.order, plan.deps
    g = Graph(order, [deps[n] for n in order])
    assert sorted(n for lv in g.levels() for n in lv) == sorted(order)
    for name in order:
        level = g.level[g.index[name]]
        dep_levels = [g.level[g.index[d]] for d in deps[name]]
        # one more than the deepest dependency: as early as possible, never earlier
        assert level == (max(dep_levels) + 1 if dep_levels else 0)
    for lv in g.levels_idx:
        assert lv == sorted(lv)   # declaration order inside a level


@PROPERTY
@given(plans(), st.data())
def test_a_back_edge_gives_a_cycle_error_whose_chain_is_a_real_cycle(plan, data):
    order, deps = plan.order, plan.deps
    g = Graph(order, [deps[n] for n in order])
    late = data.draw(st.sampled_from(order))
    early = data.draw(st.sampled_from(sorted(g.ancestors(late) | {late})))
    cyclic = {n: list(ds) for n, ds in deps.items()}
    cyclic[early].append(late)   # early now needs late, which (transitively) needs early
    with pytest.raises(CycleError) as info:
        Graph(order, [cyclic[n] for n in order])
    chain = info.value.cycle
    assert chain[0] == chain[-1] and len(set(chain[:-1])) == len(chain) - 1
    for before, after in itertools.pairwise(chain):
        assert before in cyclic[after]
    # it starts at the task declared first among those on it
    assert chain[0] == min(chain, key=order.index)


@PROPERTY
@given(plans(), st.integers(1, 3), st.sampled_from(["eager", "levels"]),
       st.sampled_from(["priority", "fifo"]))
def test_random_runs(spec, run, plan, workers, mode, policy):
    order, deps = plan.order, plan.deps
    specs = [spec(n, failing(plan.failures[n]), after=deps[n], retries=plan.retries[n],
                  retry_delay=1.5) for n in order]
    engine, rec = run(specs, workers=workers, mode=mode, policy=policy)
    level_of = {n: engine.graph.level[engine.graph.index[n]] for n in order}
    check_run(plan, rec.log, workers, earlier=lambda task: (
        [n for n in order if level_of[n] < level_of[task]] if mode == "levels" else ()))

    # replaying the log gives the engine's own final view of every task
    rows = replay(order, rec.log)
    assert {n: (r[0], r[1]) for n, r in rows.items()} == \
        {n: (s.value, a) for n, s, a in zip(engine.graph.names, engine.state, engine.attempt)}


# -- determinism ---------------------------------------------------------------

SCHEDULE = """
import json
from nbflow.core.clock import VirtualClock
from nbflow.core.engine import Engine
from nbflow.core.events import TASK, TO
from nbflow.core.graph import Graph
from nbflow.core.spec import TaskSpec
from nbflow.executors.sync import SyncExecutor

names = NAMES
# dependencies as sets: their iteration order changes with the hash seed
deps = {n: {m for m in names[:k] if (k * 7 + len(m)) % 3 == 0} for k, n in enumerate(names)}

class Log:
    def __init__(self): self.starts = []
    def events(self, batch): self.starts += [e[TASK] for e in batch if e[TO] == "running"]
    def logs(self, batch): pass

g = Graph(names, [deps[n] for n in names])
out = {"levels": g.levels()}
for mode in ("eager", "levels"):
    log = Log()
    specs = [TaskSpec(n, lambda: None, tuple(deps[n])) for n in names]
    Engine(g, specs, SyncExecutor(2), sinks=[log], clock=VirtualClock(), mode=mode).run()
    out[mode] = log.starts
print(json.dumps(out))
"""


def schedule_in_subprocess(names, hashseed):
    env = {**os.environ, "PYTHONHASHSEED": str(hashseed)}
    code = SCHEDULE.replace("NAMES", repr(names))
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                          text=True, check=True)
    return json.loads(done.stdout)


def test_level_order_and_schedule_do_not_depend_on_the_hash_seed():
    names = [f"task_{word}" for word in
             ["load", "clean", "join", "score", "plot", "fit", "split", "merge", "rank", "emit", "sort", "save"]]
    first = schedule_in_subprocess(names, 0)
    assert first == schedule_in_subprocess(names, 12345)
    assert len(first["levels"]) > 2 and sorted(first["eager"]) == sorted(names)


@pytest.mark.parametrize("flip", [False, True], ids=["a-to-z", "z-to-a"])
def test_names_in_either_alphabetical_order_give_the_same_schedule(flip, spec, run):
    """The tie-break is declaration order, never the name: the same DAG with names
    sorted one way or the other yields the same schedule, by position."""
    letters = "abcdefgh"
    names = [("z" if flip else "a") + (letters[::-1] if flip else letters)[k] for k in range(8)]
    shape = {0: [], 1: [], 2: [0], 3: [0, 1], 4: [], 5: [2], 6: [3, 4], 7: []}
    position = {n: k for k, n in enumerate(names)}
    assert sorted(names) == (names[::-1] if flip else names)
    for mode in ("eager", "levels"):
        specs = [spec(names[k], after=[names[d] for d in shape[k]]) for k in range(8)]
        engine, rec = run(specs, workers=2, mode=mode)
        schedule = [position[n] for n in rec.starts()]
        levels = [[position[n] for n in lv] for lv in engine.graph.levels()]
        assert (schedule, levels) == EXPECTED_SCHEDULE[mode]


# Ties break by ready order: in eager mode 2 and 3 (ready once 0 and 1 end)
# queue behind the roots 4 and 7, which were ready first.
EXPECTED_SCHEDULE = {
    "eager": ([0, 1, 4, 7, 2, 3, 5, 6], [[0, 1, 4, 7], [2, 3], [5, 6]]),
    "levels": ([0, 1, 4, 7, 2, 3, 5, 6], [[0, 1, 4, 7], [2, 3], [5, 6]]),
}
