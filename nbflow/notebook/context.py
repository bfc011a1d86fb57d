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

import os
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


def renders_widgets() -> bool:
    """Whether the front end running the current cell renders widgets.

    JupyterLab and Notebook 7 do, and say who they are with a cell id; Voila runs a
    notebook like nbclient (no cell id) but renders widgets, and says so in the kernel's
    environment.  nbclient, papermill, nbconvert ``--execute`` and ``nbflow run`` render
    nothing.  Outside a kernel (a script, a test) the answer is yes: a widget made there
    is for whoever asks.  ``NBFLOW_DASHBOARD=live`` or ``static`` overrides the guess.

    Raises
    ------
    ValueError
        ``NBFLOW_DASHBOARD`` is set to something else.
    """
    choice = os.environ.get("NBFLOW_DASHBOARD", "").strip().lower()
    if choice in ("live", "static"):
        return choice == "live"
    if choice:
        raise ValueError(f"NBFLOW_DASHBOARD is {os.environ['NBFLOW_DASHBOARD']!r}: set it to "
                         "'live' or 'static', or unset it to let nbflow tell from the front end")
    if getattr(_shell(), "kernel", None) is None:
        return True
    return (current_cell_id() is not None
            or os.environ.get("SERVER_SOFTWARE", "").startswith("voila"))


def for_the_running_cell_too(send: Callable[[], None]) -> None:
    """Call ``send`` (it publishes a display update) as this thread's parent, then once
    more as the request the kernel runs now, if that is another one.

    JupyterLab applies an update to a display wherever it comes from; nbclient
    (papermill, ``nbflow run``) only takes the messages of the cell it runs, so an
    update a background thread sends for an earlier cell would be lost there.
    """
    send()
    shell = _shell()
    kernel = getattr(shell, "kernel", None)
    if kernel is None or not hasattr(shell, "set_thread_parent"):
        return
    running, mine = kernel.get_parent("shell") or {}, shell.get_parent() or {}
    if not running or running.get("header") == mine.get("header"):
        return
    tokens = shell.set_thread_parent(running)
    try:
        send()
    finally:
        shell.reset_thread_parent(tokens)
