"""Static Gantt charts as SVG: one lane per worker (or per task), one bar per attempt.

Used for simulations, where no run is live, and for saved notebooks and
nbconvert output, which show a static picture.  Every task name is escaped.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from typing import Any

from .render import STATE_COLORS

LANE = 22          # px per lane
LABEL = 110        # px for the lane labels
AXIS = 26          # px for the time axis under the lanes
WIDTH = 760        # px of the whole chart


def nice_step(span: float, ticks: int = 8) -> float:
    """A round tick step (1, 2 or 5 times a power of ten) giving about ``ticks`` ticks."""
    if span <= 0:
        return 1.0
    raw = span / ticks
    power = 10 ** math.floor(math.log10(raw))
    return next(m * power for m in (1, 2, 5, 10) if m * power >= raw)


def _seconds(t: float) -> str:
    return f"{t:g}s" if t < 600 else f"{t / 60:g}m"


def gantt_svg(spans: Sequence[Any], lanes: Sequence[str], *, by: str = "worker",
              title: str = "", makespan: float | None = None, width: int = WIDTH) -> str:
    """An SVG document of ``spans`` (objects with task, attempt, worker, start, end,
    state) on ``lanes`` (worker names, or task names when ``by="task"``)."""
    end = makespan if makespan is not None else max((s.end for s in spans), default=0.0)
    end = end or 1.0
    plot = width - LABEL - 10
    scale = plot / end
    top = 20 if title else 4
    height = top + LANE * len(lanes) + AXIS
    row = {name: k for k, name in enumerate(lanes)}
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'viewBox="0 0 {width} {height}" font-family="Helvetica, Arial, sans-serif" '
           f'font-size="11" role="img" aria-label="{html.escape(title or "Gantt chart")}">']
    if title:
        out.append(f'<text x="0" y="13" font-weight="bold" fill="currentColor">'
                   f'{html.escape(title)}</text>')
    for name, k in row.items():
        y = top + k * LANE
        out.append(f'<text x="{LABEL - 6}" y="{y + LANE / 2 + 4}" text-anchor="end" '
                   f'fill="currentColor">{html.escape(_clip(name, 18))}</text>')
        out.append(f'<line x1="{LABEL}" x2="{LABEL + plot}" y1="{y + LANE}" y2="{y + LANE}" '
                   'stroke="#8884" stroke-width="0.5"/>')
    for s in spans:
        lane = s.worker if by == "worker" else s.task
        if lane not in row:
            continue
        x, w = LABEL + s.start * scale, max((s.end - s.start) * scale - 1, 1)  # 1 px gap
        y = top + row[lane] * LANE + 3
        color = STATE_COLORS.get(s.state, "#cccccc")
        tip = f"{s.task} (attempt {s.attempt}) {s.state}: {s.start:g}-{s.end:g}s on {s.worker}"
        out.append(f'<g><title>{html.escape(tip)}</title><rect x="{x:.2f}" y="{y}" '
                   f'width="{w:.2f}" height="{LANE - 6}" rx="2" fill="{color}" '
                   'stroke="#0006" stroke-width="0.5"/>')
        label = s.task if by == "worker" else f"#{s.attempt}"
        if w > 7 * len(label) + 4:
            out.append(f'<text x="{x + 3:.2f}" y="{y + LANE / 2 + 1}" fill="#000">'
                       f'{html.escape(label)}</text>')
        out.append("</g>")
    step = nice_step(end)
    y = top + LANE * len(lanes)
    k = 0
    while k * step <= end + 1e-9:
        x = LABEL + k * step * scale
        out.append(f'<line x1="{x:.2f}" x2="{x:.2f}" y1="{top}" y2="{y + 4}" stroke="#8886" '
                   'stroke-width="0.5"/>')
        out.append(f'<text x="{x:.2f}" y="{y + 16}" text-anchor="middle" '
                   f'fill="currentColor">{_seconds(round(k * step, 10))}</text>')
        k += 1
    out.append("</svg>")
    return "".join(out)


def _clip(text: str, n: int) -> str:
    return text if len(text) <= n else text[:n - 1] + "…"


def side_by_side(svgs: Sequence[str]) -> str:
    """HTML that shows several charts next to each other (wrapping when narrow)."""
    cells = "".join(f'<div style="flex:0 0 auto">{svg}</div>' for svg in svgs)
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
