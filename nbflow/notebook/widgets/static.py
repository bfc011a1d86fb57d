"""The dashboard's static picture: HTML that needs no kernel and no JavaScript.

It travels in the widget's mime bundle next to the live view, so nbconvert's
HTML, GitHub's preview and papermill outputs show the run.  The DAG is an SVG
drawn by Graphviz's ``dot`` when it is installed, else a table of the tasks.
Every user string is escaped here or, inside the SVG, by Graphviz.
"""

from __future__ import annotations

import html

from ...core.states import TERMINAL, State
from ...render import STATE_COLORS, state_chips
from .layout import DagLayout

MAX_ROWS = 200
MAX_FAILED = 20
# A picture of more tasks than this is the folded view, whatever the live view shows: a
# saved notebook must stay small and its picture readable.
STATIC_LIMIT = 300
STATE_ORDER = tuple(STATE_COLORS)
PROGRESS_ORDER = ([s.value for s in State if s in TERMINAL]
                  + [s.value for s in reversed(State) if s not in TERMINAL
                     and s is not State.PENDING])


# Beside a live dashboard the picture is an output of its own, followed by the widget's.
# Without a kernel JupyterLab writes "model not found" in the widget's output: hide it
# (an output showing no element) while the picture shows.  The live widget's own CSS
# hides the picture.
_HIDE_DEAD_WIDGET = ('<style>.jp-OutputArea-child:has([data-nbflow-static="{uid}"]) + '
                     ".jp-OutputArea-child:not(:has(.jp-OutputArea-output *))"
                     "{{display:none}}</style>")


def static_html(title: str, run_id: str | None, layout: DagLayout, snapshot: dict,
                uid: str = "") -> str:
    """HTML for the dashboard as ``snapshot`` (see ``bridge.py``) has it; ``uid``: the
    dashboard's, which the picture carries."""
    rows = snapshot["tasks"]
    states = [row[1] for row in rows]
    counts = {s: states.count(s) for s in STATE_ORDER if s in states}
    outcome = snapshot.get("outcome") or ("running" if snapshot.get("running") else "not started")
    head = (f"<b>nbflow</b> {html.escape(title)}"
            + (f" · run <code>{html.escape(run_id)}</code>" if run_id else "")
            + f" · {html.escape(outcome)} · " + state_chips(counts))
    errors = {e[0]: e[1] for e in snapshot.get("errors", ())}
    if len(rows) > STATIC_LIMIT:
        layout = layout.refolded(min(layout.limit or STATIC_LIMIT, STATIC_LIMIT))
    picture = _svg(layout, states)
    if picture is None:
        picture = _table(layout, rows, errors)
    picture += _failed(layout, states, errors)
    return framed(f"<div>{head}</div>{_progress(counts, len(rows))}{picture}", uid)


def framed(body: str, uid: str = "") -> str:
    """``body`` (HTML) as a widget's static picture: the element the live view hides while
    it is on screen, and that hides the dead widget's error in a notebook without kernel."""
    uid = html.escape(uid)
    return (f'<div class="nbflow-static" data-nbflow-static="{uid}" '
            f'style="font-family:sans-serif;font-size:13px">{body}</div>'
            + (_HIDE_DEAD_WIDGET.format(uid=uid) if uid else ""))


def _failed(layout: DagLayout, states: list[str], errors: dict[int, str]) -> str:
    """The failed tasks and their errors: what a reader of a saved big run looks for."""
    failed = [i for i, state in enumerate(states) if state == "failed"]
    if not failed:
        return ""
    names = layout.graph.names
    items = "".join(f"<li><code>{html.escape(names[i])}</code>: "
                    f"{html.escape(errors.get(i) or '')}</li>" for i in failed[:MAX_FAILED])
    more = (f"<li>… and {len(failed) - MAX_FAILED:,} more</li>"
            if len(failed) > MAX_FAILED else "")
    return f"<div>failed:</div><ul>{items}{more}</ul>"


def _progress(counts: dict[str, int], total: int) -> str:
    # Done from the left, then what is under way; pending is the background (as live).
    order = PROGRESS_ORDER
    parts = "".join(f'<div style="width:{100 * counts[s] / total:.3f}%;'
                    f'background:{STATE_COLORS[s]}"></div>'
                    for s in order if counts.get(s)) if total else ""
    return (f'<div style="display:flex;height:6px;margin:4px 0;'
            f'background:{STATE_COLORS["pending"]};border-radius:3px;overflow:hidden">'
            f"{parts}</div>")


def _svg(layout: DagLayout, states: list[str]) -> str | None:
    import graphviz
    try:
        svg = layout.digraph(states=states).pipe(format="svg", encoding="utf-8")
    except (graphviz.ExecutableNotFound, graphviz.CalledProcessError):
        return None
    start = svg.find("<svg")
    return f'<div style="overflow:auto;max-height:480px">{svg[start:]}</div>'


def _table(layout: DagLayout, rows: list[list], errors: dict[int, str]) -> str:
    level = layout.graph.level
    names = layout.graph.names
    body = []
    for i, state, attempt, started, finished in rows[:MAX_ROWS]:
        duration = f"{finished - started:.2f} s" if started is not None and finished is not None \
            else ""
        body.append(
            f'<tr><td>{html.escape(names[i])}</td><td style="background:'
            f'{STATE_COLORS.get(state, "#fff")}">{html.escape(state)}</td><td>{level[i]}</td>'
            f"<td>{attempt}</td><td>{duration}</td>"
            f"<td>{html.escape(errors.get(i) or '')}</td></tr>")
    more = len(rows) - MAX_ROWS
    tail = f'<tr><td colspan="6">… and {more:,} more tasks</td></tr>' if more > 0 else ""
    return ('<table style="border-collapse:collapse"><thead><tr><th>task</th><th>state</th>'
            "<th>level</th><th>attempt</th><th>duration</th><th>error</th></tr></thead>"
            f"<tbody>{''.join(body)}{tail}</tbody></table>")
