"""Rolling task states up into their groups (``run.status(by="group")``, the CLI).

A group path ``"extract/api"`` counts for ``extract`` and for ``extract/api``;
a phase is the outermost group of its tasks.  A group's state, first match:

==========  ==========================================================
failed      a task failed or is upstream_failed
running     a task is running or retrying, or some ended and some wait
cancelled   a task was cancelled
pending     every task waits (pending or ready)
succeeded   every task ended succeeded or skipped, at least one succeeded
skipped     every task was skipped
==========  ==========================================================

(compensating and compensated tasks count as running and succeeded.)
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

#: The label of tasks that belong to no group.
NO_GROUP = "(no group)"

_WAITING = ("pending", "ready")

#: The rule above as data, first match wins, so that the dashboard's page applies the
#: same rule (the kernel ships it): ``(state, test, states)``; ``any``: some task is in
#: ``states``; ``mixed``: some are and some are not; ``all``: every task is (or none
#: exists); ``else``: always.
RULES: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("failed", "any", ("failed", "upstream_failed")),
    ("running", "any", ("running", "retrying", "compensating")),
    ("running", "mixed", _WAITING),
    ("cancelled", "any", ("cancelled",)),
    ("pending", "all", _WAITING),
    ("succeeded", "any", ("succeeded", "compensated")),
    ("skipped", "else", ()),
)


def rollup(states: Iterable[str]) -> str:
    """The state of a group whose tasks are in ``states`` (see the table above)."""
    seen = set(states)
    for state, test, among in RULES:
        inside = seen.intersection(among)
        if (test == "else" or (test == "any" and inside)
                or (test == "mixed" and inside and len(inside) < len(seen))
                or (test == "all" and len(inside) == len(seen))):
            return state
    raise AssertionError("RULES ends with an 'else' rule")


def by_group(groups: Sequence[str | None], states: Sequence[str]) -> list[dict[str, str | int]]:
    """One row per group and parent group, in first-declared order:
    ``{"group", "state", "tasks", <state>: count...}``."""
    members: dict[str, list[str]] = {}
    for group, state in zip(groups, states):
        if group is None:
            members.setdefault(NO_GROUP, []).append(state)
            continue
        parts = group.split("/")
        for k in range(1, len(parts) + 1):
            members.setdefault("/".join(parts[:k]), []).append(state)
    rows = []
    for group, mine in members.items():
        counts: dict[str, int] = {}
        for state in mine:
            counts[state] = counts.get(state, 0) + 1
        row: dict[str, str | int] = {"group": group, "state": rollup(mine), "tasks": len(mine),
                                     **counts}
        rows.append(row)
    return rows
