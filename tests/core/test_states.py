"""The state table: every (state, trigger) pair, allowed and forbidden.

``ALLOWED`` is the table written out again by hand, so a change to
``core/states.py`` has to be made twice on purpose.
"""

from __future__ import annotations

import itertools

import pytest

from nbflow.core import replay
from nbflow.core.states import TABLE, TERMINAL, State, Trigger, transition
from nbflow.errors import IllegalTransition

S, T = State, Trigger

ALLOWED = {
    (S.PENDING, T.DEPS_MET): S.READY,
    (S.PENDING, T.SKIP): S.SKIPPED,
    (S.PENDING, T.UPSTREAM_FAIL): S.UPSTREAM_FAILED,
    (S.PENDING, T.CANCEL): S.CANCELLED,
    (S.PENDING, T.RESTORE): S.SUCCEEDED,
    (S.READY, T.START): S.RUNNING,
    (S.READY, T.SKIP): S.SKIPPED,
    (S.READY, T.CANCEL): S.CANCELLED,
    (S.READY, T.RESTORE): S.SUCCEEDED,
    (S.RUNNING, T.SUCCEED): S.SUCCEEDED,
    (S.RUNNING, T.SKIP): S.SKIPPED,
    (S.RUNNING, T.CANCEL): S.CANCELLED,
    (S.RETRYING, T.RETRY): S.READY,
    (S.RETRYING, T.CANCEL): S.CANCELLED,
    # the compensation phase (saga) undoes a success after the run failed
    (S.SUCCEEDED, T.COMPENSATE): S.COMPENSATING,
    (S.COMPENSATING, T.SUCCEED): S.COMPENSATED,
    (S.COMPENSATING, T.FAIL): S.FAILED,
    # a missed deadline is noted as an event; the state stays
    (S.PENDING, T.MISS_DEADLINE): S.PENDING,
    (S.READY, T.MISS_DEADLINE): S.READY,
    (S.RUNNING, T.MISS_DEADLINE): S.RUNNING,
    (S.RETRYING, T.MISS_DEADLINE): S.RETRYING,
}
GUARDED = {(S.RUNNING, T.FAIL): ("retries_left", S.RETRYING, S.FAILED)}

PAIRS = list(itertools.product(State, Trigger))


def test_the_table_is_the_documented_one():
    assert set(TABLE) == set(ALLOWED) | set(GUARDED)


@pytest.mark.parametrize("state, trigger", PAIRS, ids=[f"{s}-{t}" for s, t in PAIRS])
def test_every_pair(state, trigger):
    if (state, trigger) in ALLOWED:
        assert transition(state, trigger, "t") is ALLOWED[state, trigger]
    elif (state, trigger) in GUARDED:
        guard, if_true, if_false = GUARDED[state, trigger]
        assert transition(state, trigger, "t", **{guard: True}) is if_true
        assert transition(state, trigger, "t", **{guard: False}) is if_false
    else:
        with pytest.raises(IllegalTransition,
                           match=f"^task 't': no transition from state '{state.value}' "
                                 f"on '{trigger.value}'$") as info:
            transition(state, trigger, "t")
        assert (info.value.state, info.value.trigger, info.value.task) == \
            (state.value, trigger.value, "t")


def test_forbidden_without_a_task_name():
    with pytest.raises(IllegalTransition,
                       match="^no transition from state 'succeeded' on 'start'$"):
        transition(S.SUCCEEDED, T.START)


def test_a_guarded_entry_needs_its_fact():
    with pytest.raises(KeyError, match="retries_left"):
        transition(S.RUNNING, T.FAIL, "t")


def _targets(state):
    for (s, _t), target in TABLE.items():
        if s is state:
            yield from (target.if_true, target.if_false) if hasattr(target, "guard") else (target,)


def test_terminal_states_are_final_but_for_compensating_a_success():
    for state in TERMINAL:
        expected = [S.COMPENSATING] if state is S.SUCCEEDED else []
        assert list(_targets(state)) == expected, state


def test_every_state_that_is_not_terminal_can_end():
    for state in set(State) - TERMINAL:
        seen, todo = {state}, [state]
        while todo and not seen & TERMINAL:
            for target in _targets(todo.pop()):
                if target not in seen:
                    seen.add(target)
                    todo.append(target)
        assert seen & TERMINAL, state
    # a cancel ends any task that has not started its compensation
    for state in set(State) - TERMINAL - {S.COMPENSATING}:
        assert transition(state, T.CANCEL) is S.CANCELLED


def test_every_state_is_reachable_from_pending():
    seen, todo = {S.PENDING}, [S.PENDING]
    while todo:
        for target in _targets(todo.pop()):
            if target not in seen:
                seen.add(target)
                todo.append(target)
    assert seen == set(State)


def test_states_are_plain_strings():
    assert str(S.UPSTREAM_FAILED) == "upstream_failed" == S.UPSTREAM_FAILED
    assert str(T.DEPS_MET) == "deps_met"
    # replay.py folds logs without importing the enum; its terminal set must agree
    assert {s.value for s in TERMINAL} == replay.TERMINAL


def test_every_state_looks_different_also_to_colour_blind_eyes_in_both_themes():
    from colour_vision import SIM, closest, contrast, lab

    from nbflow.core.states import APPEARANCE

    assert set(APPEARANCE) == set(State)
    fills = {state.value: fill for state, (fill, _ink) in APPEARANCE.items()}
    for vision in SIM:
        gap, a, b = closest(fills, vision)
        assert gap > 15, f"{a} and {b} look alike with {vision} (distance {gap:.1f})"
    for state, (fill, ink) in APPEARANCE.items():
        lightness = lab(fill)[0]
        # Neither white on a light page nor black on a dark one (JupyterLab's themes).
        assert 30 <= lightness <= 90, f"{state}: lightness {lightness:.0f}"
        # The text on it reads (WCAG's 4.5:1 for a small label, 3:1 at least here).
        assert contrast(fill, ink) >= 3, f"{state}: {ink} on {fill}"
