"""Trigger rules: given how a task's dependencies ended, run it, skip it or fail it.

The rules and their meaning are Airflow's.  ``failed`` counts dependencies that
ended failed, upstream_failed or cancelled; ``skipped`` those that ended
skipped; ``succeeded`` the rest of those that ended.

A rule is decided as soon as its outcome can no longer change, which for most
rules is when the last dependency ends, but earlier where the table says so
(``one_success`` runs at the first success, ``all_success`` fails at the first
failure...).  Because only an outcome that no later ending could change is
taken early, the verdict is the same whatever order the dependencies end in.
``always`` does not wait for its dependencies at all (it still waits for its
phase, ``scheduler.Phases``).  A task with no dependencies runs whatever its rule.

===========================  ============================  ================  ===============
rule                         runs when                     decided early     otherwise
===========================  ============================  ================  ===============
all_success                  every dependency succeeded    at a failure      upstream_failed
                                                                             if one failed,
                                                                             else skipped
all_failed                   every dependency failed       at a success or   skipped
                                                           a skip
all_done                     every dependency ended        -                 -
all_skipped                  every dependency was skipped  at a success or   skipped
                                                           a failure
one_success                  at least one succeeded        at a success      upstream_failed
                                                                             if one failed,
                                                                             else skipped
one_failed                   at least one failed           at a failure      skipped
one_done                     at least one succeeded or     at either         skipped
                             failed
none_failed                  none failed (skips are fine)  at a failure      upstream_failed
none_failed_min_one_success  none failed and at least one  at a failure      upstream_failed
                             succeeded                                       if one failed,
                                                                             else skipped
none_skipped                 none was skipped              at a skip         skipped
always                       at once, without waiting      -                 -
===========================  ============================  ================  ===============

So with the default rule a skip propagates as a skip and a failure as
``upstream_failed`` down the graph, until a task with another rule.
"""

from __future__ import annotations

RUN, SKIP, UPSTREAM_FAIL = "run", "skip", "upstream_fail"

RULES = ("all_success", "all_failed", "all_done", "all_skipped", "one_success", "one_failed",
         "one_done", "none_failed", "none_failed_min_one_success", "none_skipped", "always")

#: Rules a success can decide before the last dependency ends (the engine looks
#: only these up on its hot path, where nearly every ending is a success).
EARLY_ON_SUCCESS = frozenset({"all_failed", "all_skipped", "one_success", "one_done"})
#: Rules whose verdict needs the count of succeeded dependencies (the others are
#: decided from the failed, skipped and waiting ones alone).
COUNT_SUCCEEDED = frozenset(RULES) - {"all_success", "all_done", "always", "none_failed",
                                     "none_skipped"}


def decide(rule: str, failed: int, skipped: int, succeeded: int = 0, waiting: int = 0
           ) -> str | None:
    """``RUN``, ``SKIP`` or ``UPSTREAM_FAIL``, or None while ``waiting`` dependencies
    have not ended and their endings could still change the verdict.

    Raises
    ------
    ValueError
        an unknown rule (naming the known ones).
    """
    if rule == "all_success":   # first: nearly every task has it
        return UPSTREAM_FAIL if failed else None if waiting else SKIP if skipped else RUN
    if not (failed or skipped or succeeded or waiting):
        if rule in RULES:
            return RUN
    elif rule == "all_done" or rule == "always":
        return None if waiting and rule == "all_done" else RUN
    elif rule == "none_failed":
        return UPSTREAM_FAIL if failed else None if waiting else RUN
    elif rule == "one_failed":
        return RUN if failed else None if waiting else SKIP
    elif rule == "one_success":
        return RUN if succeeded else None if waiting else UPSTREAM_FAIL if failed else SKIP
    elif rule == "one_done":
        return RUN if succeeded or failed else None if waiting else SKIP
    elif rule == "all_failed":
        return SKIP if succeeded or skipped else None if waiting else RUN
    elif rule == "all_skipped":
        return SKIP if succeeded or failed else None if waiting else RUN
    elif rule == "none_failed_min_one_success":
        return (UPSTREAM_FAIL if failed else None if waiting else RUN if succeeded
                or not skipped else SKIP)
    elif rule == "none_skipped":
        return SKIP if skipped else None if waiting else RUN
    raise ValueError(f"unknown trigger rule {rule!r}; choose one of: {', '.join(RULES)}")
