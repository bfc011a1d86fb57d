// The detail panel: the selected task's state, timings and dependencies, then one entry per
// attempt (state, start, duration, worker, error, output), the latest open; the traceback of
// the latest error. While an attempt runs its output streams in and its duration ticks.
// What an attempt displayed (display(df), figures) follows its printed output (richout.js).
import { h, put } from "./dom.js";
import { ansi } from "./ansi.js";
import { richOutput } from "./richout.js";
import { poolLines } from "./groups.js";

export function detailView(store, signal) {
  const el = h("div", { class: "nbflow-detail" });
  const open = new Map();   // task -> attempts the user opened or closed (survives updates)

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
    const deps = g.deps[i].map((j) => g.names[j]);
    const restored = store.restored.has(i);
    const facts = [
      ["level", String(g.levels[i])],
      ["attempt", restored ? "restored" : String(store.attempt[i] || "")],
      ["started", store.time(store.started[i])],
      ["duration", store.span(store.duration(i)) + (state === "running" ? " so far" : "")],
      ["after", deps.length ? deps.join(", ") : "(no dependencies)"],
      ...poolLines(store, i, "").map((line) => ["pool", line]),
    ];
    const attempts = store.attempts(i);
    const chosen = open.get(i) ?? new Set();
    put(el,
      h("div", { class: "nbflow-detail-head" },
        h("span", { class: "nbflow-detail-name" }, g.names[i]),
        h("span", { class: "nbflow-badge", style: store.paint(state) }, state)),
      restored ? h("div", { class: "nbflow-restored" }, g.resumed_from
        ? `restored from run ${g.resumed_from}: its result was saved there, so it did not run again`
        : "restored from the cache: a saved result with the same key, so it did not run again") : null,
      store.abandoned.has(i) ? h("div", { class: "nbflow-restored" },
        "abandoned: still running when the cancel's grace period ended (it never called "
        + "nbflow.check_cancelled()); its result is discarded") : null,
      h("dl", {}, ...facts.flatMap(([k, v]) => [h("dt", {}, k), h("dd", {}, v)])),
      // The latest error is under its attempt; a task that never ran (upstream failed,
      // cancelled) has it here.
      error && !attempts.some((a) => a.error === error[0])
        ? h("div", { class: "nbflow-detail-error" }, error[0]) : null,
      error && error[1] ? h("details", {}, h("summary", {}, "traceback"),
        h("div", { class: "jp-RenderedText" },
          h("pre", { class: "nbflow-traceback" }, ...ansi(error[1])))) : null,
      attempts.length ? null : h("div", { class: "nbflow-detail-label" },
        restored ? "(it printed nothing in this run)" : "(nothing printed yet)"),
      ...attempts.map((a, k) => {
        const last = k === attempts.length - 1;
        const running = a.end === null && a.state === "running";
        const took = a.start === null ? null : (a.end ?? store.clock()) - a.start;
        const entry = h("details", {
          class: "nbflow-attempt", "data-attempt": a.attempt,
          open: chosen.has(a.attempt) ? !chosen.has(-a.attempt) : last,
        },
        h("summary", {},
          h("span", { class: "nbflow-badge", style: store.paint(a.state) }, a.state),
          ` attempt ${a.attempt}`,
          a.start !== null ? ` · ${store.time(a.start)}` : "",
          took !== null ? ` · ${store.span(took)}${running ? " so far" : ""}` : "",
          a.worker ? ` · ${a.worker}` : ""),
        a.error ? h("div", { class: "nbflow-detail-error" }, a.error) : null,
        // jp-RenderedText: JupyterLab's theme colours for the ansi-* classes apply inside.
        h("div", { class: "jp-RenderedText" },
          h("pre", { class: "nbflow-log" }, ...(a.log ? ansi(a.log) : [running ? "(nothing printed yet)" : "(nothing printed)"]))),
        a.displays.length ? h("div", { class: "nbflow-displays" },
          h("div", { class: "nbflow-detail-label" }, `displayed (${a.displays.length})`),
          ...a.displays.map(richOutput)) : null);
        // Remember what the user opened or closed (a click on the summary; not the
        // "toggle" event, which also fires for the initial state).
        entry.firstChild.addEventListener("click", () => {
          const mine = open.get(i) ?? new Set();
          mine.delete(-a.attempt);
          mine.add(a.attempt);
          if (entry.open) mine.add(-a.attempt);  // it is about to close
          open.set(i, mine);
        });
        return entry;
      }),
      h("div", { class: "nbflow-hint" }, "whole logs: run.logs(name)"));
  }

  const unsubscribe = store.subscribe((change) => {
    const i = store.ui.selected;
    if (change.ui === "selected" || change.structure || change.tasks === null
        || (i !== null && change.tasks && change.tasks.has(i))) update();
  });
  // A running attempt's duration grows between messages.
  const ticker = setInterval(() => {
    const i = store.ui.selected;
    if (store.live && i !== null && store.state[i] === "running") update();
  }, 1000);
  signal.addEventListener("abort", () => { unsubscribe(); clearInterval(ticker); });
  update();
  return el;
}
