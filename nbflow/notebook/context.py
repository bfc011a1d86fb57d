"""Carrying the running cell's kernel context into nbflow's threads.

Since ipykernel 7, output and widget messages sent from a thread reach a cell
only if that thread's parent message is set (ipykernel PR #1451).  A run
captures the parent of the cell that started it and sets it in each worker.
"""

from __future__ import annotations

from collections.abc import Callable


def thread_initializer() -> Callable[[], None] | None:
    """A function that gives the calling thread the current cell's parent, or None
    outside a kernel."""
    try:
        from IPython import get_ipython
    except ImportError:
        return None
    shell = get_ipython()
    if shell is None or not hasattr(shell, "set_thread_parent"):
        return None
    parent = shell.get_parent()

    def init() -> None:
        shell.set_thread_parent(parent)

    return init
