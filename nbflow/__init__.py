"""nbflow: declare tasks in notebook cells and run them as a DAG.

The public surface is short: :class:`Flow` (declare and run), :class:`Run`
(inspect one run), the error types, and the IPython extension hooks.  Heavy
modules (SQLAlchemy, pandas, IPython) load only when first needed, so
``import nbflow.core`` stays standard-library only.
"""

from __future__ import annotations

from .core.worker import check_cancelled, current_task
from .errors import (
    CycleError,
    DuplicateTaskError,
    LeaseHeldError,
    NbflowError,
    NoSuchRun,
    NoSuchTask,
    SkipTask,
    StoreError,
    StoreLockedError,
    StoreVersionConflict,
    StoreVersionError,
    TaskCancelled,
    TaskFailedError,
    UnknownDependencyError,
)

__version__ = "0.1.0"

__all__ = [
    "CycleError",
    "DuplicateTaskError",
    "Flow",
    "LeaseHeldError",
    "NbflowError",
    "NoSuchRun",
    "NoSuchTask",
    "Run",
    "SkipTask",
    "StoreError",
    "StoreLockedError",
    "StoreVersionConflict",
    "StoreVersionError",
    "TaskCancelled",
    "TaskFailedError",
    "UnknownDependencyError",
    "__version__",
    "check_cancelled",
    "compare",
    "current_task",
]


#: Submodules reachable as attributes of a bare ``import nbflow``, as the docs write them.
SUBMODULES = ("policies", "executors", "dask")


def __getattr__(name: str):
    if name in ("Flow", "Run"):
        from . import api
        return getattr(api, name)
    if name == "compare":
        from .simulation import compare
        return compare
    if name in SUBMODULES:   # nbflow.policies.Aging(...) without importing it first
        import importlib
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'nbflow' has no attribute {name!r}")


def _jupyter_server_extension_points() -> list[dict]:
    """The server extension: a read-only REST API over the stores (``nbflow/server``)."""
    from .server.app import NbflowServer
    return [{"module": "nbflow.server.app", "app": NbflowServer}]


def _jupyter_labextension_paths() -> list[dict]:
    """The prebuilt JupyterLab extension shipped in the package (``labextension/``)."""
    return [{"src": "labextension", "dest": "nbflow"}]


def load_ipython_extension(ipython) -> None:
    """``%load_ext nbflow``: register the ``%%task`` and ``%flow`` magics."""
    from .notebook.magics import load
    load(ipython)
