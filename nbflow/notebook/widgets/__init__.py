"""The dashboard widgets (anywidget); their front ends are built into ``static/``."""

from .dashboard import (
                        Dashboard,
                        RunGraph,
                        RunHeader,
                        RunTable,
                        RunTimeline,
                        StaticDashboard,
                        dashboard,
)

__all__ = ["Dashboard", "RunGraph", "RunHeader", "RunTable", "RunTimeline", "StaticDashboard",
           "dashboard"]
