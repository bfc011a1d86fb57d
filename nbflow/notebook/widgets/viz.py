"""The Graphviz runtime the dashboards share: one view-less model per kernel.

Its ES module is Graphviz compiled to WebAssembly (about 1.5 MB).  Keeping it out
of the dashboard's own module means it is sent to the browser once per kernel,
not once per dashboard; each dashboard holds a reference to the runtime and asks
it for layouts through anywidget's ``host.getWidget`` (anywidget >= 0.11).
"""

from __future__ import annotations

import anywidget

from ._bundles import bundle


class VizRuntime(anywidget.AnyWidget):
    """Lays DOT out in the browser; never displayed itself."""

    _esm = bundle("viz.js")


_runtime: VizRuntime | None = None


def viz_runtime() -> VizRuntime:
    """This kernel's runtime, made on first use (again if it was closed)."""
    global _runtime
    if _runtime is None or _runtime.comm is None:
        _runtime = VizRuntime()
    return _runtime
