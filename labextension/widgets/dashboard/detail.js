// The detail panel: the selected task's state, timings, error, traceback and output.
import { h, put } from "./dom.js";
import { clock, duration } from "./format.js";

export function detailView(store, signal) {
  const el = h("div", { class: "nbflow-detail" });

  function update() {
    const i = store.ui.selected;
    if (i === null) {
      put(el, h("div", { class: "nbflow-hint" },
        "Click a task in the graph, the timeline or the table to see its output here."));
      return;
    }
    const g = store.graph;
    const state = store.state[i];
    const error = store.errors.get(i);
    const log = store.logs.get(i);
    const deps = g.deps[i].map((j) => g.names[j]);
    const facts = [
      ["level", String(g.levels[i])],
      ["attempt", String(store.attempt[i])],
      ["started", clock(store.started[i])],
      ["duration", duration(store.duration(i))],
      ["after", deps.length ? deps.join(", ") : "(no dependencies)"],
    ];
    put(el,
      h("div", { class: "nbflow-detail-head" },
        h("span", { class: "nbflow-detail-name" }, g.names[i]),
        h("span", { class: "nbflow-badge", style: store.paint(state) }, state)),
      h("dl", {}, ...facts.flatMap(([k, v]) => [h("dt", {}, k), h("dd", {}, v)])),
      error ? h("div", { class: "nbflow-detail-error" }, error[0]) : null,
      error && error[1] ? h("details", {}, h("summary", {}, "traceback"),
        h("pre", { class: "nbflow-traceback" }, error[1])) : null,
      h("div", { class: "nbflow-detail-label" }, "output"),
      h("pre", { class: "nbflow-log" }, log ? log : "(nothing printed yet)"));
  }

  const unsubscribe = store.subscribe((change) => {
    const i = store.ui.selected;
    if (change.ui === "selected" || change.structure || change.tasks === null
        || (i !== null && change.tasks && change.tasks.has(i))) update();
  });
  signal.addEventListener("abort", unsubscribe);
  update();
  return el;
}
