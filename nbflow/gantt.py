"""Static Gantt charts as SVG: one lane per worker (or per task), one bar per attempt.

Used for simulations, where no run is live, and for saved notebooks and
nbconvert output, which show a static picture.  Every task name is escaped.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from typing import Any

from .render import STATE_COLORS, STATE_INK

LANE = 22          # px per lane
LABEL = 110        # px for the lane labels
AXIS = 26          # px for the time axis under the lanes
WIDTH = 760        # px of the whole chart
PAD = 8            # px of the chart's own background around what it draws
# The chart carries its own light card: shown as an <img> (JupyterLab renders SVG outputs
# so), nothing of the page's theme reaches it, and on a dark page dark ink on no background
# would be unreadable.  Both inks are dark on that card (contrast >= 7 for the text).
PAPER, INK, FAINT = "#ffffff", "#1b1f24", "#57606a"


def nice_step(span: float, ticks: int = 8) -> float:
    """A round tick step (1, 2 or 5 times a power of ten) giving about ``ticks`` ticks."""
    if span <= 0:
        return 1.0
    raw = span / ticks
    power = 10 ** math.floor(math.log10(raw))
    return next(m * power for m in (1, 2, 5, 10) if m * power >= raw)


def time_text(t: float, unit: str = "s") -> str:
    """``t`` on a simulation's clock counted in ``unit``: ``3s`` (``10m`` from 600 s on),
    ``125ms``, ``4 min``, ``12`` (no unit)."""
    if unit == "s":
        return f"{t:g}s" if t < 600 else f"{t / 60:g}m"
    return f"{t:g}{unit}" if len(unit) <= 2 else f"{t:g} {unit}"


def gantt_svg(spans: Sequence[Any], lanes: Sequence[str], *, by: str = "worker",
              title: str = "", makespan: float | None = None, width: int = WIDTH,
              unit: str = "s") -> str:
    """An SVG document of ``spans`` (objects with task, attempt, worker, start, end,
    state) on ``lanes`` (worker names, or task names when ``by="task"``); times are
    counted in ``unit`` (see :func:`time_text`)."""
    end = makespan if makespan is not None else max((s.end for s in spans), default=0.0)
    end = end or 1.0
    plot = width - LABEL - 10 - 2 * PAD
    scale = plot / end
    top = PAD + (20 if title else 4)
    height = top + LANE * len(lanes) + AXIS + PAD
    left = PAD + LABEL
    row = {name: k for k, name in enumerate(lanes)}
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'viewBox="0 0 {width} {height}" style="max-width:100%;height:auto" '
           f'font-family="Helvetica, Arial, sans-serif" font-size="11" role="img" aria-label="{html.escape(title or "Gantt chart")}">'
           f'<rect width="{width}" height="{height}" rx="4" fill="{PAPER}"/>']
    if title:
        out.append(f'<text x="{PAD}" y="{PAD + 13}" font-weight="bold" fill="{INK}">'
                   f'{html.escape(title)}</text>')
    for name, k in row.items():
        y = top + k * LANE
        out.append(f'<text x="{left - 6}" y="{y + LANE / 2 + 4}" text-anchor="end" '
                   f'fill="{INK}">{html.escape(_clip(name, 18))}</text>')
        out.append(f'<line x1="{left}" x2="{left + plot}" y1="{y + LANE}" y2="{y + LANE}" '
                   'stroke="#d0d7de" stroke-width="0.5"/>')
    for s in spans:
        lane = s.worker if by == "worker" else s.task
        if lane not in row:
            continue
        x, w = left + s.start * scale, max((s.end - s.start) * scale - 1, 1)  # 1 px gap
        y = top + row[lane] * LANE + 3
        color = STATE_COLORS.get(s.state, "#cccccc")
        tip = (f"{s.task} (attempt {s.attempt}) {s.state}: {time_text(s.start, unit)}-"
               f"{time_text(s.end, unit)} on {s.worker}")
        out.append(f'<g><title>{html.escape(tip)}</title><rect x="{x:.2f}" y="{y}" '
                   f'width="{w:.2f}" height="{LANE - 6}" rx="2" fill="{color}" '
                   'stroke="#0006" stroke-width="0.5"/>')
        label = s.task if by == "worker" else f"#{s.attempt}"
        if w > 7 * len(label) + 4:
            ink = STATE_INK.get(s.state, INK)
            out.append(f'<text x="{x + 3:.2f}" y="{y + LANE / 2 + 1}" fill="{ink}">'
                       f'{html.escape(label)}</text>')
        out.append("</g>")
    step = nice_step(end)
    y = top + LANE * len(lanes)
    k = 0
    while k * step <= end + 1e-9:
        x = left + k * step * scale
        out.append(f'<line x1="{x:.2f}" x2="{x:.2f}" y1="{top}" y2="{y + 4}" stroke="#8c959f" '
                   'stroke-width="0.5"/>')
        out.append(f'<text x="{x:.2f}" y="{y + 16}" text-anchor="middle" '
                   f'fill="{FAINT}">{time_text(round(k * step, 10), unit)}</text>')
        k += 1
    out.append("</svg>")
    return "".join(out)


def _clip(text: str, n: int) -> str:
    return text if len(text) <= n else text[:n - 1] + "…"


def side_by_side(svgs: Sequence[str]) -> str:
    """HTML that shows several charts next to each other (wrapping when narrow)."""
    cells = "".join(f'<div style="flex:0 1 auto;min-width:0">{svg}</div>' for svg in svgs)
    return f'<div style="display:flex;flex-wrap:wrap;gap:12px">{cells}</div>'


class Gantt:
    """A Gantt chart that renders as SVG in notebooks and nbconvert output."""

    def __init__(self, svg: str):
        self.svg = svg

    def _repr_svg_(self) -> str:
        return self.svg


class Charts:
    """Several charts side by side, as HTML."""

    def __init__(self, svgs: Sequence[str]):
        self.svgs = list(svgs)

    def _repr_html_(self) -> str:
        return side_by_side(self.svgs)
