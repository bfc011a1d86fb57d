// The DAG view: Graphviz lays the DOT out once; status changes only restyle nodes.
//
// Node ids in the DOT are `t<i>` (task i) and `u<key>` (a folded unit of tasks); they are
// read back from each node's <title>, which is then removed so the browser shows our
// hover card instead of a native tooltip.
import { h, s, put } from "./dom.js";
import { count, taskLines } from "./format.js";

export function dagView(store, layout, signal) {
  const canvas = h("div", { class: "nbflow-dag-canvas" });
  const card = h("div", { class: "nbflow-card", hidden: true });
  const info = h("span", { class: "nbflow-dag-info" });
  const collapse = h("button", {
    type: "button", class: "nbflow-collapse", hidden: true,
    onclick: () => store.send({ type: "collapse" }),
  }, "Collapse all");
  const fit = h("button", {
    type: "button", class: "nbflow-fit", title: "Switch between fitting the width and full size",
    onclick: () => { canvas.classList.toggle("nbflow-full"); },
  }, "Fit / 1:1");
  const legend = h("span", { class: "nbflow-legend" });
  let legendSize = -1;
  const el = h("div", { class: "nbflow-dag" },
    h("div", { class: "nbflow-toolbar" }, legend, info, collapse, fit), canvas, card);

  let nodes = new Map();      // node id -> {g, shape, box, bar, members}
  let unitOf = new Map();     // task index -> unit node id
  let generation = 0;

  async function relayout() {
    const view = store.model.get("_view");
    const mine = ++generation;
    info.textContent = "laying out…";
    let svg;
    try {
      svg = await layout(view.dot);
    } catch (err) {
      if (mine === generation) put(canvas, h("pre", { class: "nbflow-error" }, String(err)));
      return;
    }
    if (mine !== generation || signal.aborted) return;
    nodes = new Map();
    unitOf = new Map();
    for (const g of svg.querySelectorAll("g.node")) {
      const title = g.querySelector("title");
      const id = title ? title.textContent : "";
      title?.remove();
      const shape = g.querySelector("path, polygon, ellipse");
      const node = { g, shape, box: shape ? bbox(shape) : null, bar: null, members: null };
      g.dataset.node = id;
      // Focusable, so the keyboard reaches the graph (Enter or Space clicks).
      g.setAttribute("tabindex", "0");
      g.setAttribute("role", "button");
      if (id.startsWith("u") && view.units[id]) {
        node.members = view.units[id].members;
        for (const i of node.members) unitOf.set(i, id);
        node.bar = s("g", { class: "nbflow-unit-bar" });
        g.append(node.bar);
        g.classList.add("nbflow-unit");
      }
      nodes.set(id, node);
    }
    svg.querySelector("g.graph > title")?.remove();
    // Graphviz paints a white page under the graph: the theme's background shows instead.
    svg.querySelector("g.graph > polygon")?.setAttribute("fill", "transparent");
    put(canvas, svg);
    // Fitting a long chain of levels to the width would make it unreadable: show it
    // full size (scrolling) when fitting would shrink it below about half.
    const natural = (svg.viewBox.baseVal?.width ?? 0) * (4 / 3);
    canvas.classList.toggle("nbflow-full", natural > 2 * (canvas.clientWidth || 800));
    const shown = nodes.size;
    info.textContent = shown < store.n
      ? `${count(shown, "node")} for ${count(store.n, "task")}: click a grey-bordered node to expand it`
      : count(store.n, "task");
    collapse.hidden = !(view.expanded && view.expanded.length);
    restyle(null);
  }

  function updateLegend() {
    if (legendSize === store.seen.size) return;
    legendSize = store.seen.size;
    put(legend, ...store.states.filter((st) => store.seen.has(st)).map((st) =>
      h("span", { class: "nbflow-legend-item" },
        h("span", { class: "nbflow-swatch", style: `background:${store.color(st)}` }), st)));
  }

  function restyle(changed) {
    updateLegend();
    const units = new Set();
    const tasks = changed === null ? Array.from({ length: store.n }, (_, i) => i) : changed;
    for (const i of tasks) {
      const unit = unitOf.get(i);
      if (unit !== undefined) { units.add(unit); continue; }
      const node = nodes.get(`t${i}`);
      if (!node || !node.shape) continue;
      node.shape.setAttribute("fill", store.color(store.state[i]));
      for (const text of node.g.querySelectorAll("text")) text.setAttribute("fill", store.ink(store.state[i]));
      node.g.dataset.state = store.state[i];
    }
    for (const id of units) drawBar(nodes.get(id));
    const selected = store.ui.selected;
    for (const [id, node] of nodes) {
      node.g.classList.toggle("nbflow-selected", selected !== null && id === `t${selected}`);
    }
  }

  function drawBar(node) {
    if (!node || !node.box) return;
    const counts = store.counts(node.members);
    const { x, y, width, height } = node.box;
    const left = x + 8, span = width - 16, top = y + height - 11;
    let at = left;
    const parts = [s("rect", { x: left, y: top, width: span, height: 6, fill: store.color(store.states[0]) })];
    for (const st of store.progressOrder) {
      if (!counts[st]) continue;
      const w = (span * counts[st]) / node.members.length;
      parts.push(s("rect", { x: at, y: top, width: w, height: 6, fill: store.color(st) }));
      at += w;
    }
    put(node.bar, ...parts);
    const busy = node.members.length - counts[store.states[0]] - store.done(counts) > 0;
    node.g.dataset.state = busy ? "running" : "";
  }

  // -- hover card and clicks -------------------------------------------------------------
  function nodeAt(target) {
    const g = target.closest ? target.closest("g.node") : null;
    return g ? g.dataset.node : null;
  }

  function showCard(id, event) {
    const node = nodes.get(id);
    if (!node) return;
    let lines;
    if (node.members) {
      const view = store.model.get("_view");
      const counts = store.counts(node.members);
      lines = [view.units[id].label, count(node.members.length, "task"),
        ...store.states.filter((st) => counts[st]).map((st) => `${st}: ${counts[st].toLocaleString()}`),
        "click to expand"];
    } else {
      const i = Number(id.slice(1));
      lines = [store.graph.names[i], ...taskLines(store, i)];
    }
    put(card, ...lines.map((line, k) => h("div", { class: k === 0 ? "nbflow-card-title" : "" }, line)));
    card.hidden = false;
    const rect = el.getBoundingClientRect();
    card.style.left = `${Math.min(event.clientX - rect.left + 14, rect.width - 260)}px`;
    card.style.top = `${event.clientY - rect.top + 14}px`;
  }

  let hovered = null;  // the node under the pointer and where it was, for the ticking card
  canvas.addEventListener("mousemove", (event) => {
    const id = nodeAt(event.target);
    hovered = id ? { id, event } : null;
    if (id) showCard(id, event); else card.hidden = true;
  }, { signal });
  const ticker = setInterval(() => {
    if (store.live && hovered && !card.hidden) showCard(hovered.id, hovered.event);
  }, 1000);
  signal.addEventListener("abort", () => clearInterval(ticker));
  canvas.addEventListener("mouseleave", () => { card.hidden = true; hovered = null; }, { signal });
  function activate(id) {
    if (nodes.get(id)?.members) {
      card.hidden = true;  // the node it describes is about to go
      info.textContent = store.send({ type: "expand", node: id })
        ? "expanding…" : "expanding a node needs the kernel: run the cell again";
    } else {
      store.select(Number(id.slice(1)));
    }
  }
  canvas.addEventListener("click", (event) => {
    const id = nodeAt(event.target);
    if (id) activate(id);
  }, { signal });
  canvas.addEventListener("keydown", (event) => {
    const id = nodeAt(event.target);
    if (id && (event.key === "Enter" || event.key === " ")) {
      event.preventDefault();
      activate(id);
    }
  }, { signal });

  const unsubscribe = store.subscribe((change) => {
    if (change.connection) collapse.disabled = store.disconnected !== null;
    if (change.structure || change.view) relayout();
    else if (change.tasks !== undefined || change.ui === "selected") {
      restyle(change.tasks === undefined ? new Set() : change.tasks);
    }
  });
  signal.addEventListener("abort", unsubscribe);
  relayout();
  return el;
}

/** The bounding box of a Graphviz shape, from its coordinates (works while detached). */
function bbox(shape) {
  const text = shape.getAttribute("points") ?? shape.getAttribute("d") ?? "";
  const numbers = (text.match(/-?\d+(\.\d+)?/g) ?? []).map(Number);
  if (shape.tagName === "ellipse") {
    const cx = +shape.getAttribute("cx"), cy = +shape.getAttribute("cy");
    const rx = +shape.getAttribute("rx"), ry = +shape.getAttribute("ry");
    return { x: cx - rx, y: cy - ry, width: 2 * rx, height: 2 * ry };
  }
  let x0 = Infinity, y0 = Infinity, x1 = -Infinity, y1 = -Infinity;
  for (let k = 0; k + 1 < numbers.length; k += 2) {
    x0 = Math.min(x0, numbers[k]); x1 = Math.max(x1, numbers[k]);
    y0 = Math.min(y0, numbers[k + 1]); y1 = Math.max(y1, numbers[k + 1]);
  }
  return { x: x0, y: y0, width: x1 - x0, height: y1 - y0 };
}
