"""PostgreSQL-only behaviour (the shared contract is in ``test_store_backends.py``).

Tests marked ``postgres`` use the throwaway server that ``tests/conftest.py``
starts once per session; the others check URLs that never reach a server.
"""

from __future__ import annotations

import socket

import pytest
from sqlalchemy import create_engine, inspect, text

from nbflow import Flow, StoreError, StoreVersionError
from nbflow.store import Store
from nbflow.store.schema import SCHEMA_VERSION


def test_a_server_that_is_not_there():
    # A port bound but not listening refuses connections, and nobody else can take it.
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        url = f"postgresql+psycopg://nbflow:s3cret@127.0.0.1:{port}/runs"
        with pytest.raises(StoreError) as info:
            Store(url)
    message = str(info.value)
    assert message.startswith(
        f"cannot connect to the nbflow store 'postgresql+psycopg://nbflow:***@127.0.0.1:{port}"
        "/runs': ")
    assert "Connection refused. Check that the database server is running and the URL is " \
           "right" in message
    assert "s3cret" not in message


@pytest.mark.parametrize("url, message", [
    ("postgres://u:pw@db/runs", r"^the store URL 'postgres://u:\*\*\*@db/runs' names a database "
                                r"kind \('postgres'\) that SQLAlchemy does not know\. Give a "
                                r"file path, sqlite:///PATH, or a SQLAlchemy URL such as "
                                r"postgresql\+psycopg://USER@HOST:PORT/DATABASE\.$"),
    ("postgresql+nosuchdriver://db/runs", "names a database kind"),
    ("postgresql://u:pw@db:port/runs", r"^'postgresql://u:\*\*\*@db:port/runs' is neither a file "
                                       r"path nor a valid store URL\."),
])
def test_urls_that_cannot_work(url, message):
    with pytest.raises(StoreError, match=message) as info:
        Store(url)
    assert "pw" not in str(info.value)


@pytest.mark.postgres
def test_the_environment_variable_selects_postgresql(new_pg_url, monkeypatch):
    monkeypatch.setenv("NBFLOW_STORE", new_pg_url)
    flow = Flow("env", executor="sync")
    flow.task(lambda: 1, name="one")
    run = flow.run()
    assert flow.store.url == new_pg_url and flow.store.path is None
    assert [(t["name"], t["state"]) for t in Store(new_pg_url).tasks(run.id)] == \
        [("one", "succeeded")]


def tables(url: str) -> list[str]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return sorted(inspect(conn).get_table_names())
    finally:
        engine.dispose()


@pytest.mark.postgres
def test_a_newer_schema_is_not_patched_up(new_pg_url):
    """A newer nbflow may have dropped a table this one would create: the refused
    open must not create it (PostgreSQL rolls the DDL back with the transaction)."""
    Store(new_pg_url).close()
    engine = create_engine(new_pg_url)
    with engine.begin() as conn:
        conn.execute(text("DROP TABLE logs"))
        conn.execute(text("UPDATE meta SET value = :v WHERE key = 'schema_version'"),
                     {"v": str(SCHEMA_VERSION + 1)})
    engine.dispose()
    before = tables(new_pg_url)
    with pytest.raises(StoreVersionError, match=f"has schema version {SCHEMA_VERSION + 1}"):
        Store(new_pg_url)
    assert tables(new_pg_url) == before and "logs" not in before
