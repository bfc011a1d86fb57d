// The nbflow dashboard widget (anywidget front-end module).
//
// initialize (once per model): builds the RunStore that applies snapshots and diffs.
// render (once per view):      header, DAG + detail panel, timeline, table.
// Graphviz comes from the page's VizRuntime model (`_viz`), through its exports.
import { RunStore } from "./store.js";
import { h } from "./dom.js";
import { header } from "./header.js";
import { dagView } from "./dag.js";
import { detailView } from "./detail.js";
import { timelineView } from "./timeline.js";
import { tableView } from "./table.js";
import { stepperView } from "./stepper.js";

// One store per model; the key is the model's `_uid`, as anywidget hands initialize and
// render different proxies of the same model.
const stores = new Map();

function storeOf(model, signal) {
  const uid = model.get("_uid");
  if (!stores.has(uid)) stores.set(uid, new RunStore(model, signal));
  return stores.get(uid);
}

export default {
  initialize({ model, signal }) {
    storeOf(model, signal);
    signal?.addEventListener("abort", () => stores.delete(model.get("_uid")));
  },

  async render({ model, el, signal, host }) {
    const store = storeOf(model);
    const layout = async (dot) => {
      const viz = await host.getWidget(model.get("_viz"));
      return viz.exports.svg(dot);
    };
    const section = (title, body) => h("section", { class: "nbflow-section" },
      h("h4", {}, title), body);
    // Which parts this widget shows (a Dashboard all, RunGraph & co. one each).
    const parts = new Set(model.get("_parts") ?? ["header", "graph", "detail", "timeline", "table"]);
    const graph = parts.has("graph") ? section("Graph", dagView(store, layout, signal)) : null;
    const detail = parts.has("detail") ? section("Selected task", detailView(store, signal)) : null;
    el.classList.add("nbflow-dashboard");
    el.append(...[
      parts.has("header") ? header(store, signal) : null,
      parts.has("stepper") ? section("Step by step", stepperView(store, signal)) : null,
      graph && detail ? h("div", { class: "nbflow-main" }, graph, detail) : graph,
      parts.has("timeline") ? section("Timeline", timelineView(store, signal)) : null,
      parts.has("table") ? section("Tasks", tableView(store, signal)) : null,
      graph && detail ? null : detail,
    ].filter(Boolean));
    signal.addEventListener("abort", () => el.replaceChildren());
  },
};
