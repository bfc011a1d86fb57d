"""Resource pools (all-or-nothing, reservation, slots back on every ending) and phases.

Engine runs on a virtual clock with the ``timed`` executor of ``conftest.py``
(each attempt reported its duration later, so several overlap); pool use is
read back from the events.
"""

from __future__ import annotations

import pytest

from nbflow.core.events import AT, TASK, TO
from nbflow.errors import SkipTask


def peak_use(rec, specs, pool: str) -> int:
    """The most slots of ``pool`` held at once, from the events (a running attempt
    holds its task's slots until its next event)."""
    need = {s.name: s.resources.get(pool, 0) for s in specs}
    held, peak = {}, 0
    for ev in rec.log:
        if ev[TO] == "running":
            held[ev[TASK]] = need[ev[TASK]]
        else:
            held.pop(ev[TASK], None)
        peak = max(peak, sum(held.values()))
    return peak


def at(rec) -> dict[tuple[str, str], float]:
    return {(ev[TASK], ev[TO]): ev[AT] for ev in rec.log}


def test_a_pool_caps_the_tasks_that_hold_it(spec, timed, final_states):
    specs = [spec(f"load{k}", resources={"db": 1}) for k in range(6)]
    specs += [spec(f"free{k}") for k in range(3)]
    engine, rec = timed(specs, {}, workers=4, pools={"db": 2})
    assert set(final_states(engine).values()) == {"succeeded"}
    assert peak_use(rec, specs, "db") == 2
    # the free tasks go past the waiting loads (they need no db slot)
    assert rec.starts()[:4] == ["load0", "load1", "free0", "free1"]
    assert at(rec)["load5", "running"] == 2.0    # 6 loads, 2 at a time, 1 s each


def test_a_task_takes_all_its_slots_at_once_or_none(spec, timed):
    # both needs "a" and "b": it never holds one while waiting for the other, and
    # b1 (ranked below it) may not take b meanwhile
    specs = [spec("a1", resources={"a": 1}), spec("both", resources={"a": 1, "b": 1}),
             spec("b1", resources={"b": 1})]
    _, rec = timed(specs, {}, workers=3, pools={"a": 1, "b": 1})
    t = at(rec)
    assert (t["a1", "running"], t["both", "running"], t["b1", "running"]) == (0.0, 1.0, 2.0)


def big_start(rec) -> float:
    return at(rec)["big", "running"]


def small_chains(spec, big_priority: int):
    """Two chains of one-slot tasks of db, half a second apart, so a slot frees
    every 0.5 s and the next small task wants it at once; big needs all 3 slots
    and is ready at 0.25 s."""
    specs = [spec("gate"), spec("big", resources={"db": 3}, priority=big_priority,
                                after=["gate"])]
    durations = {"gate": 0.25, "b0": 0.5}
    for chain in "ab":
        specs += [spec(f"{chain}{k}", resources={"db": 1}, priority=1,
                       after=[f"{chain}{k - 1}"] if k else []) for k in range(20)]
    return specs, durations


def test_reservation_keeps_a_big_task_from_starving(spec, timed):
    # big ranks first but never fits unless the freed slots wait for it
    # (reservation): it starts at 1.0 s, when the second running small ends.
    specs, durations = small_chains(spec, big_priority=5)
    _, rec = timed(specs, durations, workers=4, pools={"db": 3})
    assert big_start(rec) == 1.0


def test_aging_lifts_a_big_task_that_ranks_below_the_stream(spec, timed):
    specs, durations = small_chains(spec, big_priority=0)
    _, rec = timed(specs, durations, workers=4, pools={"db": 3}, policy="priority")
    assert rec.starts()[-1] == "big"   # ranked below the stream for as long as it lasts
    _, rec = timed(specs, durations, workers=4, pools={"db": 3}, policy="aging")
    assert big_start(rec) <= 3.0       # (1 - 0) / rate, then the reservation


def test_reservation_holds_back_lower_tasks_for_the_best_one(spec, timed):
    # 2 slots; hog holds 1 for 5 s.  pair (2 slots, ranked above one) waits; one
    # would fit in the free slot but must not take it; other needs no pool.
    specs = [spec("hog", resources={"db": 1}, priority=9),
             spec("pair", resources={"db": 2}, priority=5),
             spec("one", resources={"db": 1}, priority=1), spec("other", priority=0)]
    _, rec = timed(specs, {"hog": 5.0}, workers=4, pools={"db": 2})
    assert rec.starts() == ["hog", "other", "pair", "one"]
    t = at(rec)
    assert (t["pair", "running"], t["one", "running"]) == (5.0, 6.0)


def boom():
    raise ValueError("bad")


@pytest.mark.parametrize("ending", ["fails", "retries", "skips", "times_out"])
def test_slots_come_back_however_an_attempt_ends(ending, spec, timed, final_states):
    calls = []

    def first():
        calls.append(1)
        if ending == "fails":
            raise ValueError("bad")
        if ending == "retries" and len(calls) == 1:
            raise ValueError("once")
        if ending == "skips":
            raise SkipTask("nothing to do")

    options = {"retries": 1} if ending == "retries" else {}
    if ending == "times_out":
        options["timeout"] = 1.0   # first takes 10 s: abandoned at 1 s, its slot back then
    specs = [spec("first", first, resources={"db": 1}, **options),
             spec("second", resources={"db": 1})]
    engine, rec = timed(specs, {"first": 10.0}, workers=3, pools={"db": 1})
    assert final_states(engine)["second"] == "succeeded"
    # (a retry gives its slot back during the back-off: second, ready first, takes it)
    expected = {"fails": 10.0, "retries": 10.0, "skips": 10.0, "times_out": 1.0}[ending]
    assert at(rec)["second", "running"] == expected


def test_a_pool_that_does_not_exist_or_is_too_small_is_an_error(spec, engine_for):
    with pytest.raises(ValueError, match=r"^task 'load' asks for pool 'dbb', which does not "
                                         r"exist \(pools: db \(2 slots\)\); declare it with "
                                         r"flow.pool\('dbb', slots=N\)$"):
        engine_for([spec("load", resources={"dbb": 1})], pools={"db": 2})
    with pytest.raises(ValueError, match=r"^task 'load' asks for 3 slots of pool 'db', which "
                                         r"has 2: it could never start. Ask for at most 2, or "
                                         r"give the pool more slots$"):
        engine_for([spec("load", resources={"db": 3})], pools={"db": 2})
    with pytest.raises(ValueError, match=r"\(pools: none\)"):
        engine_for([spec("load", resources={"db": 1})])
    # many tasks share a few combinations of pools: the first wrong task is named
    specs = [spec(f"ok{k}", resources={"db": 1}) for k in range(3)] + [
        spec("first", resources={"db": 1, "api": 2}), spec("also", resources={"db": 5}),
        spec("again", resources={"api": 2, "db": 1})]
    with pytest.raises(ValueError, match=r"^task 'first' asks for 2 slots of pool 'api', which "
                                         r"has 1"):
        engine_for(specs, pools={"db": 2, "api": 1})


# -- phases ------------------------------------------------------------------------------
def test_each_phase_ends_before_the_next_starts(spec, timed, final_states):
    specs = [spec("e1", phase="extract"), spec("e2", phase="extract"),
             spec("l1", phase="load"),                   # no dependency on extract
             spec("l2", phase="load"), spec("l3", phase="load", after=["l1"]),
             spec("free")]                               # in no phase: not held
    engine, rec = timed(specs, {"e1": 3.0}, workers=3)
    t = at(rec)
    assert t["e2", "succeeded"] == 1.0 and t["e1", "succeeded"] == 3.0
    assert (t["l1", "running"], t["l2", "running"], t["l3", "running"]) == (3.0, 3.0, 4.0)
    assert t["free", "running"] == 0.0
    assert set(final_states(engine).values()) == {"succeeded"}


def test_a_failure_in_a_phase_follows_the_trigger_rules_into_the_next(spec, run,
                                                                      final_states):
    specs = [spec("bad", boom, phase="extract"), spec("ok", phase="extract"),
             spec("load", phase="load"), spec("cleanup", phase="load", trigger="all_done"),
             spec("report", phase="report", after=["load"]),
             spec("notify", phase="report", trigger="one_failed")]
    engine, rec = run(specs, workers=2)
    assert final_states(engine) == {"bad": "failed", "ok": "succeeded",
                                    "load": "upstream_failed", "cleanup": "succeeded",
                                    "report": "upstream_failed", "notify": "succeeded"}


def test_a_phase_that_waits_for_a_later_one_is_an_error(spec, engine_for):
    specs = [spec("a", phase="first", after=["b"]), spec("b", phase="second")]
    with pytest.raises(ValueError, match=r"^task 'a' \(phase 'first'\) waits for task 'b' "
                                         r"\(phase 'second'\), which cannot start before the "
                                         r"earlier phase ends: phases run in order\. Move one "
                                         r"of them to another phase, or drop the dependency$"):
        engine_for(specs)
    with pytest.raises(ValueError, match="^mode='levels' cannot run phases"):
        engine_for([spec("a", phase="p")], mode="levels")


def test_the_run_state_is_one_record(spec, engine_for):
    engine, _ = engine_for([spec("a"), spec("b", after=["a"])])
    before = engine.record()
    assert before["state"] == ["pending", "pending"] and before["remaining"] == [0, 1]
    assert before["unfinished"] == 2 and before["cancelled"] is None
    engine.run()
    after = engine.record()
    assert after["state"] == ["succeeded", "succeeded"] and after["unfinished"] == 0
    assert after["results"] == ["a", "b"] and after["running"] == {} and after["timers"] == []
    assert set(after) == set(engine.FIELDS)
