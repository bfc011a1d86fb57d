"""``backend_url``: the same store tests on a SQLite file and on PostgreSQL."""

from __future__ import annotations

import pytest


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def backend_url(request, tmp_path):
    """A store URL on a fresh database: a SQLite file path, or a new PostgreSQL database."""
    if request.param == "sqlite":
        return str(tmp_path / "nbflow.db")
    return request.getfixturevalue("new_pg_url")
