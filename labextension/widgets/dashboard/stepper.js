// The step-by-step panel of a simulation (nbflow/notebook/widgets/simulated.py): Step, Run
// and Reset, the virtual clock, what the last step did, the ready queue in the policy's
// order, the running tasks (with their workers) and the finished ones.
//
// Its state is the model's `_step`: {time, said, done, ready: [i], running: [[i, worker]],
// finished: [i]}. The kernel handles a button while it is idle (a step is a few engine
// turns) and answers with a new `_step` and snapshot; the DAG and the timeline beside this
// panel restyle from the snapshot as for a run.
import { h, put } from "./dom.js";
import { amount } from "./format.js";

// Tasks listed by name in each set; the rest are counted (a 5,000-task flow).
const LISTED = 60;

export function stepperView(store, signal) {
  const model = store.model;
  const actions = [
    ["step", "Step", "apply the next instant: every attempt ending then, then what starts"],
    ["run", "Run", "step to the end"],
    ["reset", "Reset", "back to the start: time 0, nothing run"],
  ];
  const buttons = actions.map(([type, label, title]) => h("button", {
    type: "button", class: `nbflow-step-button nbflow-step-${type}`, "data-action": type, title,
    onclick: () => send(type),
  }, label));
  const time = h("span", { class: "nbflow-step-time", "aria-live": "polite" });
  const said = h("div", { class: "nbflow-step-said" });
  const sets = ["ready", "running", "finished"].map((name) => {
    const items = h("div", { class: "nbflow-step-items" });
    const title = h("h5", {});
    return { name, items, title, el: h("div", { class: "nbflow-step-set", "data-set": name }, title, items) };
  });
  const el = h("div", { class: "nbflow-stepper" },
    h("div", { class: "nbflow-toolbar" }, ...buttons, time),
    said, h("div", { class: "nbflow-step-sets" }, ...sets.map((set) => set.el)));
  let waiting = false;     // a button was pressed and its answer is not in yet

  function send(type) {
    if (store.send({ type })) {
      waiting = true;
      update();
    }
  }

  function item(i, worker = null) {
    const st = store.state[i];
    return h("span", {
      class: "nbflow-badge nbflow-step-item", "data-task": i, style: store.paint(st),
      title: `${store.graph.names[i]}: ${st}${worker ? ` on ${worker}` : ""}`,
      onclick: () => store.select(i, "stepper"),
    }, worker ? `${store.graph.names[i]} · ${worker}` : store.graph.names[i]);
  }

  function update() {
    const step = model.get("_step") ?? {};
    const t = step.time ?? 0, unit = store.graph.unit;
    time.textContent = `t = ${unit === undefined ? `${Number(t.toFixed(3))} s` : amount(t, unit)}`;
    said.textContent = step.said || (step.done ? "the run is over" : "press Step to apply the next instant");
    const off = store.disconnected !== null || waiting;
    buttons[0].disabled = buttons[1].disabled = off || Boolean(step.done);
    buttons[2].disabled = off;
    const lists = { ready: step.ready ?? [], finished: step.finished ?? [],
      running: step.running ?? [] };
    for (const set of sets) {
      const all = lists[set.name];
      const label = set.name === "ready" ? "ready, in the policy's order" : set.name;
      set.title.textContent = `${label} (${all.length.toLocaleString()})`;
      const shown = all.slice(0, LISTED).map((x) => set.name === "running" ? item(x[0], x[1]) : item(x));
      if (all.length > LISTED) shown.push(h("span", { class: "nbflow-step-more" }, `… and ${(all.length - LISTED).toLocaleString()} more`));
      if (!all.length) shown.push(h("span", { class: "nbflow-step-more" }, "none"));
      put(set.items, ...shown);
    }
  }

  const answered = () => { waiting = false; update(); };
  model.on("change:_step", answered);
  const unsubscribe = store.subscribe((change) => { if (change.connection || change.tasks !== undefined) update(); });
  signal.addEventListener("abort", () => { model.off("change:_step", answered); unsubscribe(); });
  update();
  return el;
}
