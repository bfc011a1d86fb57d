"""Static views of flows and runs: Graphviz DOT and HTML (every user string escaped)."""

from __future__ import annotations

import html
import time
from collections.abc import Sequence

from .core.graph import Graph
from .core.spec import TaskSpec
from .core.states import APPEARANCE, COLORS

# One colour per state, shared by every view so a state looks the same everywhere.
STATE_COLORS = COLORS
STATE_INK = {state.value: ink for state, (_fill, ink) in APPEARANCE.items()}


def flow_digraph(name: str, graph: Graph, specs: Sequence[TaskSpec],
                 states: Sequence[str] | None = None):
    """A ``graphviz.Digraph``: one node per task, one rank per Kahn level."""
    g = base_digraph(name)
    for lv in graph.levels_idx:
        with g.subgraph() as rank:
            rank.attr(rank="same")
            for i in lv:
                attrs = {"tooltip": dot_label(f"{specs[i].name} ({specs[i].kind})")}
                if states is not None:
                    attrs["fillcolor"] = STATE_COLORS.get(states[i], "#ffffff")
                    attrs["fontcolor"] = STATE_INK.get(states[i], "#111111")
                rank.node(_node_id(i), label=dot_label(specs[i].name), **attrs)
    for i, preds in enumerate(graph.preds):
        for j in preds:
            g.edge(_node_id(j), _node_id(i))
    return g


def base_digraph(name: str):
    """An empty ``graphviz.Digraph`` in nbflow's style: left to right, rounded filled boxes."""
    import graphviz
    return graphviz.Digraph(name=dot_label(name), graph_attr={"rankdir": "LR"},
                            node_attr={"shape": "box", "style": "rounded,filled",
                                       "fontname": "Helvetica", "fillcolor": "#ffffff"})


def dot_label(text: str):
    """``text`` as a plain-text DOT label.

    graphviz passes a string in ``<...>`` through unquoted as an HTML-like label
    (a task named ``<img src=x>`` would become markup), and a backslash would
    start an escape sequence such as ``\\n``; both are turned off here.
    """
    import graphviz
    return graphviz.nohtml(text.replace("\\", "\\\\"))


def _node_id(i: int) -> str:
    return f"t{i}"


def run_html(run) -> str:
    """A compact HTML summary of a run: state counts and failed tasks."""
    chips = state_chips(run.counts())
    failed = "".join(
        f"<li><code>{html.escape(name)}</code>: {html.escape(_error(run, name))}</li>"
        for name in run.failed)
    failed_html = f"<ul>{failed}</ul>" if failed else ""
    note = "" if run.state != "running" else (
        f' <i>(as of {time.strftime("%H:%M:%S")}: <code>run.dashboard()</code> shows it live)'
        "</i>")
    return (f"<div><b>nbflow run</b> <code>{html.escape(run.id)}</code> of "
            f"<b>{html.escape(run.flow.name)}</b>: {html.escape(run.state)} {chips}{note}"
            f"{failed_html}</div>")


def state_chips(counts: dict[str, int]) -> str:
    """One coloured ``state: count`` label per state, as HTML."""
    return " ".join(f'<span style="background:{STATE_COLORS.get(s, "#eee")};'
                    f'color:{STATE_INK.get(s, "#111")};padding:1px 6px;'
                    f'border-radius:8px">{html.escape(s)}: {n:,}</span>'
                    for s, n in counts.items())


def join_attempts(texts: dict[int, str]) -> str:
    """One task's output by attempt, as one text: headed per attempt when there are several."""
    if len(texts) == 1:
        return next(iter(texts.values()))
    return "".join(f"--- attempt {a} ---\n{text}" for a, text in sorted(texts.items()))


def _error(run, name: str) -> str:
    err = run._engine.errors.get(run._index(name))
    return f"{type(err).__name__}: {err}" if err is not None else "failed"
