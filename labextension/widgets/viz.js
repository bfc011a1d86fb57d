// The Graphviz runtime: the _esm of VizRuntime, a view-less model made once per kernel.
//
// Its exports (anywidget >= 0.11: what `initialize` returns) are what a dashboard gets
// from `host.getWidget(ref)`:
//
//   svg(dot: string) -> Promise<SVGSVGElement>   lays `dot` out with the `dot` engine
//
// The WASM module is compiled once per page and shared by every runtime on it (several
// kernels may each have one), and the last few layouts are cached by their DOT text, so
// redrawing the same graph (a second view, a re-rendered output) costs a DOM parse only.
import { instance } from "@viz-js/viz";

const SHARED = Symbol.for("nbflow.viz");
const CACHE_SIZE = 8;

function shared() {
  globalThis[SHARED] ??= { viz: null, layouts: new Map() };
  return globalThis[SHARED];
}

async function layoutText(dot) {
  const page = shared();
  let text = page.layouts.get(dot);
  if (text === undefined) {
    page.viz ??= instance();
    const result = (await page.viz).render(dot, { format: "svg", engine: "dot" });
    if (result.status !== "success") {
      const why = result.errors.map((e) => e.message).join("; ");
      throw new Error(`Graphviz could not lay out the graph: ${why}`);
    }
    text = result.output;
    if (page.layouts.size >= CACHE_SIZE) {
      page.layouts.delete(page.layouts.keys().next().value);
    }
    page.layouts.set(dot, text);
  }
  return text;
}

async function svg(dot) {
  const doc = new DOMParser().parseFromString(await layoutText(dot), "image/svg+xml");
  const root = doc.documentElement;
  if (root.nodeName !== "svg") {
    throw new Error("Graphviz returned something that is not SVG");
  }
  return document.importNode(root, true);
}

export default {
  initialize() {
    return { svg };
  },
};
