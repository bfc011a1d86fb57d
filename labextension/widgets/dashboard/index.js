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
    el.classList.add("nbflow-dashboard");
    el.append(
      header(store, signal),
      h("div", { class: "nbflow-main" },
        section("Graph", dagView(store, layout, signal)),
        section("Selected task", detailView(store, signal))),
      section("Timeline", timelineView(store, signal)),
      section("Tasks", tableView(store, signal)));
    signal.addEventListener("abort", () => el.replaceChildren());
  },
};
