// The header: run title and outcome, counts per state, progress bar, cancel button.
import { h, put } from "./dom.js";

export function header(store, signal) {
  const title = h("span", { class: "nbflow-title" });
  const status = h("span", { class: "nbflow-status" });
  const elapsed = h("span", { class: "nbflow-elapsed" });
  const chips = h("span", { class: "nbflow-chips" });
  const progress = h("div", { class: "nbflow-progress", role: "progressbar" });
  const cancel = h("button", {
    class: "nbflow-cancel",
    type: "button",
    title: "Cancel the run: nothing new starts, running tasks are cancelled",
    onclick: () => {
      cancel.disabled = true;
      if (store.send({ type: "cancel" })) cancel.textContent = "Cancelling…";
    },
  }, "Cancel");
  const note = h("div", { class: "nbflow-cancel-note", hidden: true });
  const el = h("div", { class: "nbflow-header" },
    h("div", { class: "nbflow-header-row" }, title, status, elapsed, chips, cancel),
    progress, note);

  // While a cancel waits for running tasks, say which and why, and the time left; after,
  // which were abandoned.
  function cancelNote() {
    if (!store.cancel) return null;
    const [at, why] = store.cancel;
    const grace = store.graph.cancel_grace;
    const reason = why ? ` (${why})` : "";
    if (store.running) {
      const running = [];
      for (let i = 0; i < store.n; i++) if (store.state[i] === "running") running.push(store.graph.names[i]);
      if (!running.length) return `cancelling${reason}…`;
      const left = grace === null || grace === undefined ? null : Math.max(0, at + grace - (store.clock() ?? at));
      const names = running.slice(0, 5).join(", ") + (running.length > 5 ? `, … (${running.length})` : "");
      return `cancelling${reason}: still running ${names}. A running task stops at its next ` +
        "nbflow.check_cancelled(); one that never calls it is abandoned" +
        (left === null ? "" : ` in ${Math.ceil(left)} s`) + ".";
    }
    const n = store.abandoned.size;
    return n ? `${n} task${n === 1 ? " was" : "s were"} abandoned: still running when the ` +
      `${grace ?? ""} s grace period ended (they never called nbflow.check_cancelled()); ` +
      "their results are discarded, and their threads may still be running." : null;
  }

  function update() {
    const g = store.graph;
    title.textContent = g.run
      ? `${g.flow} · run ${g.run}${g.resumed_from ? ` (resumes run ${g.resumed_from})` : ""}`
      : `${g.flow} · not run yet`;
    const known = store.running ? "running" : (store.outcome ?? (g.run ? "starting" : "not started"));
    // Once the kernel is gone, the store (read by the server extension) has the last word.
    const stored = store.disconnected !== null && store.running ? store.stored : null;
    const state = stored ? stored.state
      : store.disconnected === null || !store.running ? known : "disconnected";
    status.textContent = state;
    status.dataset.state = state;
    status.style.cssText = store.states.includes(state) ? store.paint(state) : "";
    status.title = store.disconnected === null ? ""
      : stored ? `${store.disconnected}, and the store says the run ${stored.state === "crashed"
        ? "crashed: no kernel holds it any more (flow.run(resume=...) goes on with it)"
        : `ended ${stored.state}`}; the counts are the last this page heard`
      : `${store.disconnected}: this is the run's last known state (${known}); `
        + "run the cell again to see it live";
    elapsed.textContent = elapsedText();
    const text = cancelNote();
    note.hidden = text === null;
    note.textContent = text ?? "";
    const counts = store.counts();
    put(chips, ...store.states.filter((st) => counts[st] > 0).map((st) =>
      h("button", {
        class: "nbflow-chip",
        type: "button",
        "data-state": st,
        "aria-pressed": store.ui.filter === st ? "true" : "false",
        title: `show only ${st} tasks in the table`,
        style: store.paint(st),
        onclick: () => {
          store.ui.filter = store.ui.filter === st ? "" : st;
          store.ui.page = 0;
          store.emit({ ui: "filter" });
        },
      }, `${st} ${counts[st].toLocaleString()}`)));
    const done = store.done(counts);
    progress.setAttribute("aria-valuenow", String(store.n ? Math.round((100 * done) / store.n) : 0));
    progress.title = `${done.toLocaleString()} of ${store.n.toLocaleString()} tasks done`;
    progress.style.background = store.color(store.states[0]);
    put(progress, ...store.progressOrder.filter((st) => counts[st] > 0).map((st) =>
      h("div", { "data-state": st, style: `width:${(100 * counts[st]) / store.n}%;background:${store.color(st)}` })));
    const live = store.live && g.run !== null;
    if (!live) {
      cancel.disabled = true;
      cancel.textContent = "Cancel";
    } else if (cancel.textContent === "Cancel") {
      cancel.disabled = false;
    }
  }

  let queued = false;
  const unsubscribe = store.subscribe(() => {
    if (queued) return;
    queued = true;
    requestAnimationFrame(() => { queued = false; update(); });
  });
  function elapsedText() {
    return store.span(store.elapsed());
  }
  const ticker = setInterval(() => {
    if (!store.live) return;
    elapsed.textContent = elapsedText();
    if (store.cancel) note.textContent = cancelNote() ?? "";
  }, 500);
  signal.addEventListener("abort", () => { unsubscribe(); clearInterval(ticker); });
  update();
  return el;
}
