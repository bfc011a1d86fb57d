"""Back-off: ``backoff`` multiplies, ``jitter`` spreads, ``max_delay`` is a hard ceiling,
nothing overflows, and a run's ``seed`` repeats its jittered delays."""

from __future__ import annotations

import random

from hypothesis import given
from hypothesis import strategies as st

from nbflow.core.events import DETAIL, TO
from nbflow.core.options import MAX_SECONDS
from nbflow.core.retry import backoff_delay


def test_backoff_multiplies_the_delay_per_further_attempt():
    assert [backoff_delay(a, 1.0, 2.0) for a in (1, 2, 3, 4)] == [1.0, 2.0, 4.0, 8.0]
    assert [backoff_delay(a, 3.0) for a in (1, 2, 3)] == [3.0, 3.0, 3.0]
    assert backoff_delay(5, 0.0, 2.0) == 0.0


def test_max_delay_caps_the_delay():
    assert [backoff_delay(a, 1.0, 2.0, cap=5.0) for a in (1, 3, 4, 10)] == [1.0, 4.0, 5.0, 5.0]


def test_jitter_spreads_the_delay_both_ways():
    rng = random.Random(1)
    delays = [backoff_delay(1, 10.0, jitter=0.1, rng=rng) for _ in range(200)]
    assert all(9.0 <= d <= 11.0 for d in delays)
    assert min(delays) < 9.5 and max(delays) > 10.5


def test_max_delay_is_a_ceiling_with_jitter_too():
    # The README's values: without the fix attempt 6 waited up to 33 s.
    rng = random.Random(0)
    delays = [backoff_delay(a, 1.0, 2.0, cap=30.0, jitter=0.1, rng=rng)
              for a in range(1, 12) for _ in range(50)]
    assert max(delays) == 30.0


def test_a_huge_attempt_number_never_overflows():
    assert backoff_delay(1025, 1.0, 2.0, cap=30.0) == 30.0
    assert backoff_delay(1100, 1.0, 2.0, cap=30.0, jitter=0.5, rng=random.Random(3)) == 30.0
    assert backoff_delay(1100, 1.0, 2.0) == MAX_SECONDS      # the documented ceiling
    assert backoff_delay(2, 1.0, 1e308, cap=None) == MAX_SECONDS


@given(attempt=st.integers(1, 5000), base=st.floats(0, MAX_SECONDS),
       factor=st.floats(0, 1e300), cap=st.none() | st.floats(1e-6, MAX_SECONDS),
       jitter=st.floats(0, 1), seed=st.integers())
def test_every_delay_is_between_zero_and_its_ceiling(attempt, base, factor, cap, jitter, seed):
    delay = backoff_delay(attempt, base, factor, cap, jitter, random.Random(seed))
    assert 0.0 <= delay <= (MAX_SECONDS if cap is None else cap)


def _delays(rec) -> list[float]:
    return [ev[DETAIL]["retry_in"] for ev in rec.log if ev[TO] == "retrying"]


def flaky(failures: int):
    calls = []

    def fn():
        calls.append(1)
        if len(calls) <= failures:
            raise ConnectionError(f"call {len(calls)}")
        return len(calls)

    return fn


def test_a_run_with_1100_retries_and_backoff_2_ends(spec, run, final_states):
    # Without the fix: OverflowError at the 1,025th failure, even with max_delay set.
    for max_delay in (30.0, None):
        engine, rec = run([spec("t", flaky(1100), retries=1100, retry_delay=1.0, backoff=2.0,
                                max_delay=max_delay)])
        assert final_states(engine) == {"t": "succeeded"}
        delays = _delays(rec)
        assert len(delays) == 1100
        assert delays[-1] == (max_delay or MAX_SECONDS)


def test_the_same_seed_repeats_the_jittered_delays(spec, run):
    def delays(seed):
        return _delays(run([spec("t", flaky(5), retries=5, retry_delay=1.0, backoff=2.0,
                                 max_delay=10.0, jitter=0.5)], seed=seed)[1])

    first = delays(7)
    assert delays(7) == first
    assert delays(8) != first
    assert max(first) <= 10.0
