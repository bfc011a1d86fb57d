"""Which runs a prune chooses, as a property of any set of runs (``retention.choose``)."""

from __future__ import annotations

from types import SimpleNamespace

from hypothesis import given, settings
from hypothesis import strategies as st

from nbflow.store.policy import Retention
from nbflow.store.retention import choose


@st.composite
def stores(draw):
    """Runs of up to three flows, some resuming an earlier run of their flow (each run
    resumed at most once, as ``runs.resumed_from`` is unique), some live."""
    n = draw(st.integers(0, 30))
    rows, resumed = [], set()
    for i in range(n):
        flow = draw(st.sampled_from("abc"))
        earlier = [r.id for r in rows if r.flow == flow and r.id not in resumed]
        parent = draw(st.none() | st.sampled_from(earlier)) if earlier else None
        if parent is not None:
            resumed.add(parent)
        rows.append(SimpleNamespace(id=f"r{i:02d}", flow=flow, created=float(i),
                                    resumed_from=parent, live=draw(st.booleans())))
    keep = draw(st.none() | st.integers(0, 10))
    cutoff = draw(st.none() | st.floats(-1, 31))
    if keep is None and cutoff is None:
        keep = 0
    return rows, Retention(keep, cutoff)


@settings(max_examples=300, deadline=None)
@given(stores())
def test_a_prune_never_chooses_a_live_run_the_newest_n_or_a_kept_runs_ancestor(case):
    rows, policy = case
    plan = choose(rows, policy, lambda row: row.live)
    doomed = {r.id for r in plan.doomed}
    by_id = {r.id: r for r in rows}
    assert not any(by_id[rid].live for rid in doomed)
    assert not doomed & set(plan.kept)
    for flow in "abc":
        newest = sorted((r for r in rows if r.flow == flow), key=lambda r: -r.created)
        assert not doomed & {r.id for r in newest[:policy.keep or 0]}
    if policy.cutoff is not None:
        assert all(by_id[rid].created < policy.cutoff for rid in doomed)
    for r in rows:           # a kept run's whole resume chain is kept
        if r.id in doomed:
            continue
        up = r.resumed_from
        while up is not None:
            assert up not in doomed, (r.id, up)
            up = by_id[up].resumed_from
    # Everything else the policy lets go does go, and what stays says why.
    for r in rows:
        flow_rank = sorted((x for x in rows if x.flow == r.flow), key=lambda x: -x.created)
        beyond = policy.keep is None or flow_rank.index(r) >= policy.keep
        old = policy.cutoff is None or r.created < policy.cutoff
        assert (r.id in doomed or r.id in plan.kept) == (beyond and old)
    assert [r.created for r in plan.doomed] == sorted((r.created for r in plan.doomed),
                                                      reverse=True)
