"""Trigger rules: given how a task's dependencies ended, run it, skip it or fail it.

Decided once every dependency is in a terminal state (as Airflow does for all
its rules, so a rule never changes its mind).  ``failed`` counts dependencies
that ended failed, upstream_failed or cancelled; ``skipped`` those that ended
skipped; the rest succeeded.

=============  ===============================  =========================
rule           runs when                        otherwise
=============  ===============================  =========================
all_success    every dependency succeeded       upstream_failed if one
                                                failed, else skipped
all_done       always (every dependency ended)  -
one_failed     at least one failed              skipped
none_failed    none failed (skips are fine)     upstream_failed
=============  ===============================  =========================

So with the default rule a skip propagates as a skip and a failure as
``upstream_failed`` down the graph, until a task with another rule.
"""

from __future__ import annotations

RUN, SKIP, UPSTREAM_FAIL = "run", "skip", "upstream_fail"

RULES = ("all_success", "all_done", "one_failed", "none_failed")


def decide(rule: str, failed: int, skipped: int) -> str:
    """``RUN``, ``SKIP`` or ``UPSTREAM_FAIL`` for a task whose dependencies all ended."""
    if rule == "all_success":
        return UPSTREAM_FAIL if failed else SKIP if skipped else RUN
    if rule == "all_done":
        return RUN
    if rule == "one_failed":
        return RUN if failed else SKIP
    if rule == "none_failed":
        return UPSTREAM_FAIL if failed else RUN
    raise ValueError(f"unknown trigger rule {rule!r}; choose one of: {', '.join(RULES)}")
