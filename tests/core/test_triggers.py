"""Trigger rules with Airflow's meaning, and the ones decided before every dependency ended.

Cases as data: ``(rule, failed, skipped, succeeded, waiting) -> verdict`` (None:
not decided yet).  Then engine runs on the synchronous executor and a virtual
clock show the early verdicts happen while another dependency is still running.
"""

from __future__ import annotations

import pytest

from nbflow.core.triggers import RULES, RUN, SKIP, UPSTREAM_FAIL, decide

R, K, U = RUN, SKIP, UPSTREAM_FAIL
CASES = [
    # rule, failed, skipped, succeeded, waiting, verdict
    ("all_success", 0, 0, 2, 0, R), ("all_success", 0, 1, 1, 0, K),
    ("all_success", 1, 0, 0, 3, U), ("all_success", 0, 1, 0, 1, None),
    ("all_failed", 2, 0, 0, 0, R), ("all_failed", 0, 0, 1, 2, K), ("all_failed", 0, 1, 0, 1, K),
    ("all_failed", 1, 0, 0, 1, None),
    ("all_done", 1, 1, 1, 0, R), ("all_done", 0, 0, 2, 1, None),
    ("all_skipped", 0, 2, 0, 0, R), ("all_skipped", 0, 1, 1, 1, K),
    ("all_skipped", 1, 0, 0, 1, K), ("all_skipped", 0, 1, 0, 1, None),
    ("one_success", 0, 0, 1, 4, R), ("one_success", 2, 0, 0, 0, U),
    ("one_success", 0, 2, 0, 0, K), ("one_success", 1, 0, 0, 1, None),
    ("one_failed", 1, 0, 0, 4, R), ("one_failed", 0, 1, 1, 0, K), ("one_failed", 0, 0, 1, 1, None),
    ("one_done", 0, 0, 1, 3, R), ("one_done", 1, 0, 0, 3, R), ("one_done", 0, 2, 0, 0, K),
    ("one_done", 0, 1, 0, 1, None),
    ("none_failed", 0, 1, 1, 0, R), ("none_failed", 1, 0, 0, 2, U), ("none_failed", 0, 0, 1, 1, None),
    ("none_failed_min_one_success", 0, 1, 1, 0, R),
    ("none_failed_min_one_success", 0, 2, 0, 0, K),
    ("none_failed_min_one_success", 1, 0, 1, 1, U),
    ("none_failed_min_one_success", 0, 0, 1, 1, None),
    ("none_skipped", 1, 0, 1, 0, R), ("none_skipped", 0, 1, 0, 2, K),
    ("none_skipped", 1, 0, 0, 1, None),
    ("always", 2, 1, 0, 3, R),
]


@pytest.mark.parametrize("rule, failed, skipped, succeeded, waiting, verdict", CASES)
def test_the_rules(rule, failed, skipped, succeeded, waiting, verdict):
    assert decide(rule, failed, skipped, succeeded, waiting) == verdict


def test_every_rule_has_cases_and_one_without_dependencies_runs():
    assert {c[0] for c in CASES} == set(RULES)
    assert all(decide(rule, 0, 0, 0, 0) == RUN for rule in RULES)


def test_an_early_verdict_never_changes_whatever_ends_next():
    # A verdict taken while some dependencies wait is the one every completion gives.
    for rule in RULES:
        for n in range(1, 4):
            for f in range(n + 1):
                for k in range(n + 1 - f):
                    for s in range(n + 1 - f - k):
                        waiting = n - f - k - s
                        early = decide(rule, f, k, s, waiting)
                        if early is None or not waiting:
                            continue
                        for df in range(waiting + 1):
                            for dk in range(waiting + 1 - df):
                                ds = waiting - df - dk
                                assert decide(rule, f + df, k + dk, s + ds, 0) == early, \
                                    (rule, f, k, s, waiting)


def test_an_unknown_rule_names_the_known_ones():
    with pytest.raises(ValueError, match="^unknown trigger rule 'sometimes'; choose one of: "
                                         "all_success, all_failed, all_done"):
        decide("sometimes", 0, 0, 1, 0)


def boom():
    raise ValueError("bad row")


def test_all_success_fails_at_the_first_failure_while_others_still_wait(spec, run,
                                                                        final_states):
    # report waits for bad and for the chain a -> b; bad fails first, and report
    # is upstream_failed before b even starts
    specs = [spec("bad", boom), spec("a"), spec("b", after=["a"]),
             spec("report", after=["bad", "b"])]
    engine, rec = run(specs, workers=1)
    order = [(ev[2], ev[5]) for ev in rec.log]
    assert final_states(engine)["report"] == "upstream_failed"
    assert order.index(("report", "upstream_failed")) < order.index(("b", "running"))


def test_one_success_and_one_failed_fire_at_once(spec, run, final_states):
    specs = [spec("ok"), spec("bad", boom), spec("later", after=["ok"]),
             spec("any_ok", after=["ok", "later"], trigger="one_success"),
             spec("any_bad", after=["bad", "later"], trigger="one_failed")]
    engine, rec = run(specs, workers=1)
    order = [(ev[2], ev[5]) for ev in rec.log]
    # ready (decided) before "later", which they also wait on, has even started
    assert order.index(("any_ok", "ready")) < order.index(("later", "running"))
    assert order.index(("any_bad", "ready")) < order.index(("later", "running"))
    assert final_states(engine) == dict.fromkeys(["ok", "later", "any_ok", "any_bad"],
                                                 "succeeded") | {"bad": "failed"}


def test_always_runs_at_once_and_its_dependencies_endings_do_not_touch_it(spec, run,
                                                                          final_states):
    specs = [spec("bad", boom), spec("after_bad", after=["bad"]),
             spec("cleanup", after=["after_bad"], trigger="always")]
    engine, rec = run(specs, workers=1)
    assert rec.starts() == ["bad", "cleanup"]
    assert final_states(engine) == {"bad": "failed", "after_bad": "upstream_failed",
                                    "cleanup": "succeeded"}
    assert rec.of("cleanup") == [("pending", "ready"), ("ready", "running"),
                                 ("running", "succeeded")]


def test_a_task_without_dependencies_runs_whatever_its_rule(spec, run, final_states):
    engine, _ = run([spec(rule, trigger=rule) for rule in RULES])
    assert set(final_states(engine).values()) == {"succeeded"}
