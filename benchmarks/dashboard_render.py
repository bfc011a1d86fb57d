"""How long the dashboard's DAG view takes to first render in headless chromium.

Not a timed test: run it on demand, from the repository root::

    .venv/bin/python -m benchmarks.dashboard_render            # median of 3 page loads
    .venv/bin/python -m benchmarks.dashboard_render --repeat 5

Each measurement is a fresh page (so Graphviz's WebAssembly is compiled every time)
served from a local HTTP server.  The page imports the built ``viz.js`` and
``dashboard.js`` (``nbflow/notebook/widgets/static``), hands the dashboard a model
holding the state Python would send for a layered graph (``workloads.layered``),
and a host whose ``getWidget`` returns the Graphviz runtime's exports, as anywidget
does.  Two times are reported: from the ``render`` call to the first DAG node in the
DOM, and from the start of navigation (module loading included).  The target is
<= 1 s for 500 tasks in the default (folded) view; the unfolded view
(``collapse_above=None``) is shown for comparison.
"""

from __future__ import annotations

import argparse
import functools
import http.server
import json
import shutil
import statistics
import sys
import tempfile
import threading
from pathlib import Path

from benchmarks.workloads import layered
from nbflow.core.graph import Graph
from nbflow.mapping import item_name
from nbflow.notebook.widgets._bundles import bundle
from nbflow.notebook.widgets.dashboard import initial_state
from nbflow.notebook.widgets.layout import DagLayout

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
        "--no-first-run", "--disable-background-networking", "--disable-component-update"]
TARGET_MS = 1000.0
# (2,000 unfolded is not drawn until the user asks: dag.js MAX_DRAWN.)
# levels "map": one task, a map of n - 2 items after it, one task taking their results.
CASES = [(500, 20, 300), (500, 20, None), (2000, 40, 300), (5000, 50, 300), (10_000, 100, 300),
         (5000, "map", 300)]

PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><link rel="stylesheet" href="dashboard.css"></head>
<body><div id="root" style="width:1200px"></div>
<script type="module">
const state = await (await fetch("state.json")).json();
const [{ default: viz }, { default: dashboard }] =
  await Promise.all([import("./viz.js"), import("./dashboard.js")]);
const model = { get: (k) => state[k], set() {}, save_changes() {}, send() {}, on() {}, off() {} };
const exports = viz.initialize({ model: null });
const host = { getWidget: async () => ({ exports }) };
const signal = new AbortController().signal;
const start = performance.now();
dashboard.initialize({ model, signal });
dashboard.render({ model, el: document.getElementById("root"), signal, host });
(function check() {
  const nodes = document.querySelectorAll(".nbflow-dag-canvas g.node").length;
  if (nodes) window.result = { render: performance.now() - start, total: performance.now(), nodes };
  else requestAnimationFrame(check);
})();
</script></body></html>
"""


def page_state(n: int, levels: int, limit: int | None) -> dict:
    if levels == "map":
        items = [item_name("clean", k) for k in range(n - 2)]
        names, deps = ["fetch", *items, "join"], [[], *[["fetch"]] * len(items), items]
    else:
        names, deps = layered(n, levels)
    layout = DagLayout(f"layered {n}", Graph(names, deps), limit=limit)
    return initial_state(layout.title, "benchmark", layout, {"workers": 8})


def serve(folder: Path) -> http.server.ThreadingHTTPServer:
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    handler = functools.partial(Quiet, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def measure(repeat: int) -> list[dict]:
    from playwright.sync_api import sync_playwright
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for name in ("viz.js", "dashboard.js", "dashboard.css"):
            shutil.copy(bundle(name), folder / name)
        (folder / "index.html").write_text(PAGE)
        server = serve(folder)
        url = f"http://127.0.0.1:{server.server_address[1]}/index.html"
        try:
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
                for n, levels, limit in CASES:
                    (folder / "state.json").write_text(json.dumps(page_state(n, levels, limit)))
                    results = []
                    for _ in range(repeat):
                        page = browser.new_page(viewport={"width": 1300, "height": 900})
                        page.goto(url)
                        page.wait_for_function("window.result !== undefined", timeout=120_000)
                        results.append(page.evaluate("window.result"))
                        page.close()
                    rows.append({"tasks": n, "levels": levels, "collapse_above": limit,
                                 "nodes": results[0]["nodes"],
                                 "render_ms": statistics.median(r["render"] for r in results),
                                 "total_ms": statistics.median(r["total"] for r in results)})
                browser.close()
        finally:
            server.shutdown()
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="page loads per case (median)")
    args = parser.parse_args(argv)
    rows = measure(args.repeat)
    print("| tasks | levels | collapse_above | DAG nodes | render -> first node | "
          "navigation -> first node |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in rows:
        print(f"| {r['tasks']:,} | {r['levels']} | {r['collapse_above']} | {r['nodes']} | "
              f"{r['render_ms']:.0f} ms | {r['total_ms']:.0f} ms |")
    default_500 = next(r for r in rows if r["tasks"] == 500 and r["collapse_above"] == 300)
    ok = default_500["render_ms"] <= TARGET_MS
    print(f"{'PASS' if ok else 'FAIL'}: 500 tasks render in {default_500['render_ms']:.0f} ms "
          f"(target <= {TARGET_MS:.0f} ms)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
