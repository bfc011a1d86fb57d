"""The dashboard widgets (anywidget); their front ends are built into ``static/``."""

from .dashboard import Dashboard, StaticDashboard, dashboard

__all__ = ["Dashboard", "StaticDashboard", "dashboard"]
