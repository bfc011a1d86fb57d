"""What nbflow reads from, and carries out of, the kernel request being executed.

Since ipykernel 7, output and widget messages sent from a thread reach a cell
only if that thread's parent message is set (ipykernel PR #1451).  A run
captures the parent of the cell that started it and sets it in each worker
and in the background engine thread, so whatever a task displays lands in the
cell that started the run, never in whichever cell happens to be running.

The parent message also carries the cell id that JupyterLab puts in the
execute request's metadata; ``%%task`` uses it as the identity of a cell task.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


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
    cell_id = (parent.get("metadata") or {}).get("cellId")
    return str(cell_id) if cell_id else None
