"""A run's summary in a cell: a snapshot while the run goes on, replaced at its end.

``run`` as the last line of a cell shows the summary of ``render.run_html``.  For a
run still going it says that it is a snapshot, and it is displayed with an id so the
run's end (``Run._when_done``, before ``run.wait()`` returns) replaces it with the
final summary: the saved notebook never says "running" for a run that ended.
"""

from __future__ import annotations

from typing import Any

from .context import for_the_running_cell_too


def _bundle(run: Any) -> dict:
    from ..render import run_html
    return {"text/html": run_html(run), "text/plain": repr(run)}


def display_run(run: Any) -> None:
    """Display ``run``'s summary; if it is still going, replace it when it ends."""
    from IPython.display import display, update_display
    handle = display(_bundle(run), raw=True, display_id=not run.done)
    if handle is None:
        return

    def replace(ended: Any) -> None:
        final = _bundle(ended)
        for_the_running_cell_too(
            lambda: update_display(final, raw=True, display_id=handle.display_id))

    run._when_done.append(replace)
    if run.done:  # it ended while the summary was being displayed: the hook came late
        replace(run)
