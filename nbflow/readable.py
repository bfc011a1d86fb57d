"""Tables and lists that show themselves readably, and stay plain data to compute with.

``run.status()`` is a pandas DataFrame of typed columns (times as UTC timestamps,
durations in seconds, missing values as NaT/NaN/None) that prints with local times to
the second, durations such as "12 ms" or "2 min 3 s", and blanks where nothing is
known.  ``%flow levels`` returns a list of levels (lists of task names) that prints one
level a line.
"""

from __future__ import annotations

import math
from typing import Any


def duration_text(seconds: float | None) -> str:
    """``seconds`` the way the dashboard writes it; blank when unknown."""
    if seconds is None or not math.isfinite(seconds):
        return ""
    if seconds < 1:
        return f"{round(seconds * 1000)} ms"
    if seconds < 60:
        return f"{seconds:.{2 if seconds < 10 else 1}f} s"
    minutes = int(seconds // 60)
    if minutes < 60:
        return f"{minutes} min {round(seconds - 60 * minutes)} s"
    return f"{minutes // 60} h {minutes % 60} min"


def status_frame(df: Any) -> Any:
    """``df`` (a pandas DataFrame) as a :class:`StatusFrame`."""
    return _status_class()(df)


_STATUS_CLASS = None


def _status_class():
    # Made on first use: pandas is imported only by those who ask for a table.
    global _STATUS_CLASS
    if _STATUS_CLASS is None:
        import pandas as pd

        class StatusFrame(pd.DataFrame):
            """A run's task table: typed data, displayed readably (see the module)."""

            @property
            def _constructor(self):
                return StatusFrame

            def readable(self) -> pd.DataFrame:
                """A copy of plain text cells, as the table is displayed."""
                shown = pd.DataFrame(self, copy=True)
                for col in shown.columns:
                    values = shown[col]
                    if isinstance(values.dtype, pd.DatetimeTZDtype):
                        local = values.dt.tz_convert(_local_zone())
                        shown[col] = local.dt.strftime("%Y-%m-%d %H:%M:%S").fillna("")
                    elif col == "duration":
                        shown[col] = [duration_text(None if pd.isna(v) else float(v))
                                      for v in values]
                    elif values.dtype == object:
                        shown[col] = ["" if v is None or v is pd.NA or
                                      (isinstance(v, float) and math.isnan(v)) else v
                                      for v in values]
                return shown

            def __repr__(self) -> str:
                return repr(self.readable())

            def _repr_html_(self) -> str | None:
                return self.readable()._repr_html_()

        _STATUS_CLASS = StatusFrame
    return _STATUS_CLASS


def _local_zone():
    import datetime
    return datetime.datetime.now().astimezone().tzinfo


class Levels(list):
    """Kahn levels, a list of lists of task names, printed one level a line.

    ``flow`` names the flow in what an empty list prints.
    """

    def __init__(self, levels=(), flow: str | None = None):
        super().__init__(levels)
        self.flow = flow

    def __repr__(self) -> str:
        if not self:
            which = f"flow {self.flow!r}" if self.flow is not None else "the flow"
            return f"{which} has no tasks yet: declare some with %%task or @flow.task"
        return "\n".join(f"level {k}: {', '.join(names)}" for k, names in enumerate(self))
