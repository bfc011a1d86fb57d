"""``nbflow.dask.get`` as a Dask scheduler: Dask's own conformance tests, and more."""

from __future__ import annotations

import pytest

dask = pytest.importorskip("dask", reason="nbflow.dask needs dask (pip install 'nbflow[dask]')")

from dask.utils_test import GetFunctionTestMixin

import nbflow.dask


class TestDaskConformance(GetFunctionTestMixin):
    get = staticmethod(nbflow.dask.get)


class TestDaskConformanceSync(GetFunctionTestMixin):
    get = staticmethod(lambda dsk, keys, **kw: nbflow.dask.get(dsk, keys, executor="sync", **kw))


class Planned(ValueError):
    """The user's own exception: it must reach the caller as itself."""


def test_a_failing_task_raises_its_own_exception_and_its_dependents_never_run():
    ran = []

    def bad(x):
        raise Planned(f"bad chunk {x}")

    def after(y):
        ran.append(y)
        return y

    x = dask.delayed(bad)(7)
    with pytest.raises(Planned, match=r"^bad chunk 7$") as info:
        dask.compute(dask.delayed(after)(x), scheduler=nbflow.dask.get)
    assert ran == []
    assert any(frame.name == "bad" for frame in info.traceback)   # the user's frame is kept


def test_dasks_order_decides_which_ready_task_starts_first():
    # Two chains declared interleaved: in declaration order a worker would
    # alternate between them; dask.order finishes one chain before the other.
    started = []

    def step(label, *_):
        started.append(label.removeprefix("run "))
        return label

    dsk = {}
    for i in range(3):
        for chain in "ab":
            dsk[f"{chain}{i}"] = (step, f"run {chain}{i}", *([f"{chain}{i - 1}"] if i else []))
    from dask.order import order
    rank = order(dsk)
    nbflow.dask.get(dsk, ["a2", "b2"], num_workers=1)
    assert started == sorted(dsk, key=rank.get)
    assert started != list(dsk)   # the case is one where the two orders differ


def test_the_default_scheduler_can_be_nbflow_and_arrays_compute():
    da = pytest.importorskip("dask.array")
    x = da.arange(1000, chunks=10)
    with dask.config.set(scheduler=nbflow.dask.get):
        assert int((x * 2).sum().compute()) == 999 * 1000
    assert x.sum().compute(scheduler=nbflow.dask.get) == 999 * 500


def test_retries_apply_to_every_key():
    calls = []

    def flaky(v):
        calls.append(v)
        if len(calls) == 1:
            raise ConnectionError("the first call fails")
        return v + 1

    assert dask.delayed(flaky)(1).compute(scheduler=nbflow.dask.get, retries=1) == 2
    assert calls == [1, 1]


def test_keys_that_print_alike_stay_apart():
    dsk = {"('a', 0)": 1, ("a", 0): 2, "x": (sum, ["('a', 0)", ("a", 0)]),
           ("b", 0): (lambda v: v * 10, "x"), "('b', 0)": (lambda v: v + 1, ("b", 0))}
    assert nbflow.dask.get(dsk, ["x", ("b", 0), "('b', 0)"]) == (3, 30, 31)


def test_nothing_is_recorded_by_default(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert dask.delayed(sum)([1, 2]).compute(scheduler=nbflow.dask.get) == 3
    assert list(tmp_path.iterdir()) == []


def test_with_a_store_every_key_is_recorded(store_path):
    from nbflow.store import Store

    x = dask.delayed(lambda a, b: a + b, name="add")(dask.delayed(lambda: 1, name="one")(), 2)
    assert x.compute(scheduler=nbflow.dask.get, store=store_path, name="arith") == 3
    store = Store(store_path)
    (row,) = store.runs()
    assert (row["flow"], row["state"]) == ("arith", "succeeded")
    tasks = {r["name"]: r["state"] for r in store.tasks(row["id"])}
    assert sorted(tasks) == sorted(str(k) for k in x.__dask_graph__())
    assert set(tasks.values()) == {"succeeded"}


def test_dashboard_true_shows_the_runs_dashboard(store_path, monkeypatch):
    pytest.importorskip("anywidget")
    shown = []
    monkeypatch.setattr(nbflow.dask, "_show", shown.append)
    x = dask.delayed(sum)([dask.delayed(abs)(-i) for i in range(5)])
    assert x.compute(scheduler=nbflow.dask.get, store=store_path, dashboard=True) == 10
    (board,) = shown
    assert type(board).__name__ == "Dashboard"
    assert board.run.counts() == {"succeeded": 6}


def test_without_dask_the_error_gives_the_install_command(monkeypatch):
    import sys
    for name in [m for m in sys.modules if m == "dask" or m.startswith("dask.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "dask", None)   # what an uninstalled package looks like
    with pytest.raises(ImportError, match=r"^nbflow\.dask\.get needs the 'dask' package, "
                                          r"which is not installed\. Install it with: "
                                          r'pip install "nbflow\[dask\]"$'):
        nbflow.dask.get({"x": 1}, "x")


def test_an_import_error_inside_dask_goes_through_unchanged(monkeypatch):
    import sys
    monkeypatch.setitem(sys.modules, "dask.local", None)
    monkeypatch.setattr("importlib.import_module",
                        lambda name: (_ for _ in ()).throw(ModuleNotFoundError(
                            "No module named 'toolz'", name="toolz")))
    with pytest.raises(ModuleNotFoundError, match="toolz"):
        nbflow.dask.get({"x": 1}, "x")


def test_a_cycle_is_named_as_a_chain_of_keys():
    from nbflow.errors import CycleError
    dsk = {"a": (abs, "b"), "b": (abs, "a")}
    with pytest.raises(CycleError, match=r"(a -> b -> a|b -> a -> b)"):
        nbflow.dask.get(dsk, "a")


def test_no_keys_compute_nothing():
    assert nbflow.dask.get({"x": (abs, -1)}, []) == ()
