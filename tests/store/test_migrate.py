"""A store written by an older nbflow is upgraded in place, and nothing in it is lost."""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine, text

import nbflow
from nbflow.results import INLINE_LIMIT
from nbflow.store import Store
from nbflow.store.schema import SCHEMA_VERSION


def _as_version_1(url: str) -> None:
    """Turn a store into what nbflow wrote at schema version 1 (no ``events.value``)."""
    engine = create_engine(url if "://" in url else f"sqlite:///{url}")
    with engine.begin() as conn:
        conn.execute(text("ALTER TABLE events DROP COLUMN value"))
        conn.execute(text("UPDATE meta SET value = '1' WHERE key = 'schema_version'"))
    engine.dispose()


def _columns(url: str) -> tuple[str, list[str]]:
    engine = create_engine(url if "://" in url else f"sqlite:///{url}")
    from sqlalchemy import inspect
    with engine.connect() as conn:
        version = conn.execute(text("SELECT value FROM meta WHERE key='schema_version'")).scalar()
        cols = [c["name"] for c in inspect(conn).get_columns("events")]
    engine.dispose()
    return version, cols


def _flow(url: str, broken: dict) -> nbflow.Flow:
    flow = nbflow.Flow("old", store=url)

    @flow.task
    def numbers():   # big enough for a file, as nbflow saved every result at version 1
        return [1, 2, 3] + [0] * INLINE_LIMIT

    @flow.task
    def total(numbers):   # a dict in the closure counts by type: the key stays the same
        if broken["yes"]:
            raise ValueError("not yet")
        return sum(numbers)

    return flow


def test_a_version_1_store_is_upgraded_and_keeps_its_runs(backend_url, tmp_path, monkeypatch):
    monkeypatch.setenv("NBFLOW_RESULTS", str(tmp_path / "results"))
    broken = {"yes": True}
    first = _flow(backend_url, broken).run()
    assert first.failed == ["total"]
    events = first.store.events(first.id)
    first.store.close()
    _as_version_1(backend_url)
    version, columns = _columns(backend_url)
    assert version == "1" and "value" not in columns

    store = Store(backend_url)   # what a newer nbflow does on open
    version, columns = _columns(backend_url)
    assert version == str(SCHEMA_VERSION) and "value" in columns
    assert [r["id"] for r in store.runs()] == [first.id]
    assert store.events(first.id) == events
    store.close()

    broken["yes"] = False
    again = _flow(backend_url, broken).run(resume=True)   # numbers' result is restored
    assert again.state == "succeeded" and again.result("total") == 6
    assert again.status().set_index("task")["cached"].to_dict() == {"numbers": True,
                                                                    "total": False}


def test_an_upgrade_cut_short_is_finished_on_the_next_open(store_path):
    """SQLite runs DDL outside the version's transaction: a crash between the two
    leaves the column there and the old version number."""
    Store(store_path).close()
    _as_version_1(store_path)
    engine = create_engine(f"sqlite:///{store_path}")
    with engine.begin() as conn:
        conn.execute(text("ALTER TABLE events ADD COLUMN value BLOB"))
    engine.dispose()
    Store(store_path).close()
    assert _columns(store_path)[0] == str(SCHEMA_VERSION)


@pytest.mark.parametrize("version", [SCHEMA_VERSION + 1])
def test_a_newer_store_is_still_refused(store_path, version):
    Store(store_path).close()
    engine = create_engine(f"sqlite:///{store_path}")
    with engine.begin() as conn:
        conn.execute(text(f"UPDATE meta SET value = '{version}' WHERE key='schema_version'"))
    engine.dispose()
    with pytest.raises(nbflow.errors.StoreVersionError, match=f"schema version {version}"):
        Store(store_path)


def _as_version_2(url: str) -> None:
    """Turn a store into what nbflow wrote at schema version 2 (no cells, no notebooks)."""
    engine = create_engine(url if "://" in url else f"sqlite:///{url}")
    with engine.begin() as conn:
        conn.execute(text("ALTER TABLE tasks DROP COLUMN cell_id"))
        conn.execute(text("ALTER TABLE runs DROP COLUMN notebook"))
        conn.execute(text("UPDATE meta SET value = '2' WHERE key = 'schema_version'"))
    engine.dispose()


def test_a_version_2_store_gets_cells_and_notebooks(backend_url, monkeypatch):
    """Runs written before version 3 read with no cell and no notebook; runs after
    it record both."""
    monkeypatch.setenv("JPY_SESSION_NAME", "/home/me/etl.ipynb")
    flow = nbflow.Flow("cells", store=backend_url)
    flow.cell_task("load", "x = 1", {}, cell_id="cell-a")
    first = flow.run()
    flow.store.close()
    _as_version_2(backend_url)

    store = Store(backend_url)
    version, _ = _columns(backend_url)
    assert version == str(SCHEMA_VERSION)
    assert store.run(first.id)["notebook"] is None
    assert [(t["name"], t["cell_id"], t["state"]) for t in store.tasks(first.id)] == [
        ("load", None, "succeeded")]
    store.close()

    again = nbflow.Flow("cells", store=backend_url)
    again.cell_task("load", "x = 1", {}, cell_id="cell-a")
    again.cell_task("bad id", "y = 2", {}, cell_id="</td><script>")   # not an nbformat id
    second = again.run()
    assert second.store.run(second.id)["notebook"] == "/home/me/etl.ipynb"
    assert [(t["name"], t["cell_id"]) for t in second.store.tasks(second.id)] == [
        ("load", "cell-a"), ("bad id", None)]
