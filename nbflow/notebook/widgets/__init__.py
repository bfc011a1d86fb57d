"""The dashboard widgets (anywidget); their front ends are built into ``static/``."""

from .dashboard import Dashboard

__all__ = ["Dashboard"]
