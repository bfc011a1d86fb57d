"""What nbflow reads from, and carries out of, the kernel request being executed.

Since ipykernel 7, output and widget messages sent from a thread reach a cell
only if that thread's parent message is set (ipykernel PR #1451).  A run
captures the parent of the cell that started it and sets it in each worker
and in the background engine thread, so whatever a task displays lands in the
cell that started the run, never in whichever cell happens to be running.

The parent message also carries the cell id that JupyterLab puts in the
execute request's metadata; ``%%task`` uses it as the identity of a cell task.
IPython hands the same id to ``pre_run_cell`` hooks (``ExecutionInfo.cell_id``):
:func:`track_cells` keeps it while the cell runs, so a ``@flow.task``
declaration knows its cell (``declaring_cell``) without reaching into the
kernel's request on every declaration.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

#: What nbformat allows as a cell id.  Anything else a client sends is not
#: recorded: it comes from the network and lands in a String(64) column.
_CELL_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")

# The cell being run, set by the pre_run_cell hook and cleared after it (one
# shell per kernel; a list so the hooks need no ``global``).
_running: list[str | None] = [None]


def _shell() -> Any:
    try:
        from IPython import get_ipython
    except ImportError:
        return None
    return get_ipython()


def thread_initializer() -> Callable[[], None] | None:
    """A function that gives the calling thread the current cell's parent, or None
    outside a kernel (or with an ipykernel older than 7, which needs none)."""
    shell = _shell()
    if shell is None or not hasattr(shell, "set_thread_parent"):
        return None
    parent = shell.get_parent()

    def init() -> None:
        shell.set_thread_parent(parent)

    return init


def current_cell_id() -> str | None:
    """The id of the notebook cell being executed, or None when the client sent none.

    JupyterLab and Notebook 7 send it as ``cellId`` in the execute request's
    metadata; nbclient 0.11 (papermill, nbval, ``nbflow run``) and terminals
    do not.
    """
    kernel = getattr(_shell(), "kernel", None)
    if kernel is None:
        return None
    parent = kernel.get_parent() or {}
    return valid_cell_id((parent.get("metadata") or {}).get("cellId"))


def valid_cell_id(value: Any) -> str | None:
    """``value`` if it is a well-formed nbformat cell id, else None."""
    return value if isinstance(value, str) and _CELL_ID.fullmatch(value) else None


def declaring_cell() -> str | None:
    """The id of the cell whose code is running now, for a task declared by it."""
    return _running[0] or current_cell_id()


def track_cells(shell: Any) -> None:
    """Keep the running cell's id for :func:`declaring_cell` (once per shell)."""
    if getattr(shell, "_nbflow_tracks_cells", False):
        return
    shell._nbflow_tracks_cells = True
    shell.events.register("pre_run_cell", _pre_run_cell)
    shell.events.register("post_run_cell", _post_run_cell)


def _pre_run_cell(info: Any) -> None:
    _running[0] = valid_cell_id(getattr(info, "cell_id", None))


def _post_run_cell(result: Any) -> None:
    _running[0] = None
