"""``nbflow.core`` is standard library only, and ``import nbflow`` stays light, as does
the store's writer process (it starts with every store).

Each check runs in a fresh interpreter: in this one pytest, the fixtures and
other tests have imported everything already.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

HEAVY = ["IPython", "ipykernel", "ipywidgets", "anywidget", "sqlalchemy", "pandas", "numpy",
         "dask", "distributed", "networkx", "graphviz", "psycopg", "cloudpickle"]

PROBE = """
import json, pkgutil, sys
before = set(sys.modules)
import {module}
if {all_core}:
    import nbflow.core
    for info in pkgutil.iter_modules(nbflow.core.__path__, "nbflow.core."):
        __import__(info.name)
top = {{name.partition(".")[0] for name in set(sys.modules) - before}}
print(json.dumps(sorted(top)))
"""


def imported_by(module: str, all_core: bool = False) -> set[str]:
    """Top-level packages that importing ``module`` pulls into a fresh interpreter."""
    done = subprocess.run([sys.executable, "-c", PROBE.format(module=module, all_core=all_core)],
                          capture_output=True, text=True, check=True)
    return set(json.loads(done.stdout))


@pytest.mark.parametrize("module, all_core", [("nbflow.core", True), ("nbflow", False),
                                              ("nbflow.store.writerproc", False)],
                         ids=["every nbflow.core module", "nbflow", "the writer process"])
def test_imports_only_the_standard_library(module, all_core):
    imported = imported_by(module, all_core)
    assert not imported & set(HEAVY)
    outside = imported - set(sys.stdlib_module_names) - {"nbflow"}
    assert not outside, f"importing {module} pulled in {sorted(outside)}"


def test_the_probe_sees_heavy_imports():
    # the check above could pass by not seeing anything: make sure it can fail
    assert "sqlalchemy" in imported_by("nbflow.store.store")


@pytest.mark.parametrize("module", ["nbflow.dask", "nbflow.executors"])
def test_dask_is_imported_only_when_used(module):
    assert not imported_by(module) & {"dask", "distributed"}
