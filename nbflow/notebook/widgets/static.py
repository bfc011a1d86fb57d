"""The dashboard's static picture: HTML that needs no kernel and no JavaScript.

It travels in the widget's mime bundle next to the live view, so nbconvert's
HTML, GitHub's preview and papermill outputs show the run.  The DAG is an SVG
drawn by Graphviz's ``dot`` when it is installed, else a table of the tasks.
Every user string is escaped here or, inside the SVG, by Graphviz.
"""

from __future__ import annotations

import html

from ...render import STATE_COLORS, state_chips
from .layout import DagLayout

MAX_ROWS = 200
STATE_ORDER = tuple(STATE_COLORS)


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
    picture = _svg(layout, states)
    if picture is None:
        errors = {e[0]: e[1] for e in snapshot.get("errors", ())}
        picture = _table(layout, rows, errors)
    uid = html.escape(uid)
    return (f'<div class="nbflow-static" data-nbflow-static="{uid}" '
            f'style="font-family:sans-serif;font-size:13px">'
            f"<div>{head}</div>{_progress(counts, len(rows))}{picture}</div>"
            + (_HIDE_DEAD_WIDGET.format(uid=uid) if uid else ""))


def _progress(counts: dict[str, int], total: int) -> str:
    parts = "".join(f'<div style="width:{100 * n / total:.3f}%;background:{STATE_COLORS[s]}">'
                    f"</div>" for s, n in counts.items()) if total else ""
    return ('<div style="display:flex;height:6px;margin:4px 0;background:#eee;'
            f'border-radius:3px;overflow:hidden">{parts}</div>')


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
