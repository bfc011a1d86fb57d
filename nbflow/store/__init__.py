"""The state store (SQLAlchemy Core; SQLite by default, PostgreSQL by URL)."""

from .store import Store

__all__ = ["Store"]
