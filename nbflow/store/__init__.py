"""The state store (SQLAlchemy Core; SQLite by default, PostgreSQL by URL)."""

__all__ = ["Store"]


def __getattr__(name: str):
    # Lazy, so the writer process (writerproc.py) imports its modules without
    # SQLAlchemy.
    if name == "Store":
        from .store import Store
        return Store
    raise AttributeError(f"module 'nbflow.store' has no attribute {name!r}")
