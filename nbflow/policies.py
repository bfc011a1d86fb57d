"""Scheduling policies to pass as ``Flow(policy=...)`` or ``flow.run(policy=...)``.

A name works too (``"sjf"``); an object carries parameters:
``nbflow.policies.Aging(rate=2.0, cap=10)``.  ``docs/scheduling.md`` gives each
one's formula; ``nbflow/core/policies.py`` the protocol a new one implements.
"""

from __future__ import annotations

from .core.policies import (
                            DEFAULT_EXPECTED,
                            Aging,
                            CriticalPath,
                            EarliestDeadlineFirst,
                            Fifo,
                            Keyed,
                            Priority,
                            RunInfo,
                            ShortestJobFirst,
)

SJF, EDF = ShortestJobFirst, EarliestDeadlineFirst

__all__ = [
                            "DEFAULT_EXPECTED",
                            "EDF",
                            "SJF",
                            "Aging",
                            "CriticalPath",
                            "EarliestDeadlineFirst",
                            "Fifo",
                            "Keyed",
                            "Priority",
                            "RunInfo",
                            "ShortestJobFirst",
]
