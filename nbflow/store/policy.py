"""What a prune keeps: a count of runs per flow and a cutoff date, from the user's words.

Standard library only, so the command line parses ``--older-than`` and
``--before`` without loading the store.
"""

from __future__ import annotations

import datetime as dt
import math
import re
import time
from dataclasses import dataclass
from typing import Any

DAY = 86400.0
_AGE = re.compile(r"\s*([0-9]+(?:\.[0-9]+)?)\s*(s|m|h|d|w)\s*", re.I)
_UNIT = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": DAY, "w": 7 * DAY}


@dataclass(frozen=True)
class Retention:
    """What a prune keeps: the newest ``keep`` runs per flow and runs created
    at or after ``cutoff`` (epoch seconds); None means no such limit."""

    keep: int | None = None
    cutoff: float | None = None


#: Without a choice: the last 50 runs of each flow and every run of the last 30 days.
DEFAULT_KEEP, DEFAULT_DAYS = 50, 30


def retention(keep: Any = None, older_than: Any = None, before: Any = None,
              now: float | None = None) -> Retention:
    """A :class:`Retention` from a prune's options; none of them means the default.

    ``older_than``: seconds, a ``timedelta`` or a text such as ``"30d"``
    (s, m, h, d, w); ``before``: a ``datetime``/``date`` (local time when
    naive), epoch seconds, or an ISO date text such as ``"2026-01-01"``.

    Raises
    ------
    ValueError, TypeError
        a value that means no count, age or date, or both ``older_than`` and ``before``.
    """
    now = time.time() if now is None else now
    if keep is None and older_than is None and before is None:
        return Retention(DEFAULT_KEEP, now - DEFAULT_DAYS * DAY)
    if older_than is not None and before is not None:
        raise ValueError("give older_than or before, not both: one cutoff date per prune")
    if keep is not None and (isinstance(keep, bool) or not isinstance(keep, int) or keep < 0):
        raise ValueError(f"keep must be a whole number of runs >= 0, got {keep!r}")
    try:
        cutoff = (now - parse_age(older_than) if older_than is not None
                  else parse_date(before) if before is not None else None)
    except ValueError as exc:
        raise ValueError(f"{'older_than' if older_than is not None else 'before'} must be "
                         f"{exc}") from None
    return Retention(keep, cutoff)


def parse_age(value: Any) -> float:
    """Seconds from ``"30d"`` (a number and one of s, m, h, d, w), a number of seconds
    or a timedelta.

    Raises
    ------
    ValueError
        anything else, or an age that is negative or not finite.
    """
    if isinstance(value, dt.timedelta):
        seconds = value.total_seconds()
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        seconds = float(value)
    elif isinstance(value, str) and (m := _AGE.fullmatch(value)):
        seconds = float(m.group(1)) * _UNIT[m.group(2).lower()]
    else:
        seconds = math.nan
    if not (math.isfinite(seconds) and seconds >= 0):
        raise ValueError(f"an age such as '30d', '12h' or '90m' (a number and one of s, m, h, "
                         f"d, w), got {value!r}")
    return seconds


def parse_date(value: Any) -> float:
    """Epoch seconds from an ISO date or time text (local time unless it names a zone),
    a datetime, a date, or epoch seconds.

    Raises
    ------
    ValueError
        anything else.
    """
    if isinstance(value, (int, float)) and not isinstance(value, bool) \
            and math.isfinite(value):
        return float(value)
    if isinstance(value, str):
        try:
            value = dt.datetime.fromisoformat(value.strip())
        except ValueError:
            pass
    if isinstance(value, dt.datetime):
        return value.timestamp()
    if isinstance(value, dt.date):
        return dt.datetime.combine(value, dt.time()).timestamp()
    raise ValueError(f"a date such as '2026-01-01' or '2026-01-01T12:00' (local time unless "
                     f"it names a zone), got {value!r}")
