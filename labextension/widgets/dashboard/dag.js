// The DAG view: Graphviz lays the DOT out once; status changes only restyle nodes.
//
// Node ids in the DOT are `t<i>` (task i) and `u<key>` (a folded unit of tasks: levels,
// a map `uM<k>`, a group `uG<k>`), clusters `cluster_G<k>` (an open group); they are read
// back from each <title>, which is then removed so the browser shows our hover card
// instead of a native tooltip. A cluster's label says its group's rolled-up state and,
// clicked, folds the group into one node.
import { h, s, put } from "./dom.js";
import { count, taskLines } from "./format.js";
import { rollup } from "./groups.js";

// Above this many nodes to lay out unfolded, the graph waits for the user to ask: Graphviz
// runs on the page's thread and would freeze it for seconds.
const MAX_DRAWN = 1500;

export function dagView(store, layout, signal) {
  const canvas = h("div", { class: "nbflow-dag-canvas" });
  const card = h("div", { class: "nbflow-card", hidden: true });
  const info = h("span", { class: "nbflow-dag-info" });
  const collapse = h("button", {
    type: "button", class: "nbflow-collapse", hidden: true,
    onclick: () => store.send({ type: "collapse" }),
  }, "Collapse all");
  const button = (text, title, onclick, cls = "") =>
    h("button", { type: "button", class: `nbflow-zoom ${cls}`, title, onclick }, text);
  const jumps = store.graph.jump.map((st) => button(`${st} ›`, `show the next ${st} task`,
    () => jump(st), "nbflow-jump")).map((b, k) => { b.dataset.state = store.graph.jump[k]; return b; });
  const zooms = [button("−", "zoom out (Ctrl+wheel, -)", () => zoomBy(1 / 1.5)),
    button("+", "zoom in (Ctrl+wheel, +)", () => zoomBy(1.5)),
    button("fit", "fit the width (0)", () => setScale(null), "nbflow-fit")];
  const legend = h("span", { class: "nbflow-legend" });
  let legendSize = -1;
  const el = h("div", { class: "nbflow-dag" },
    h("div", { class: "nbflow-toolbar" }, legend, info, collapse,
      h("span", { class: "nbflow-spring" }), ...jumps, ...zooms), canvas, card);
  canvas.setAttribute("tabindex", "0");
  canvas.setAttribute("aria-label", "graph: Ctrl+wheel or +/- to zoom, drag or arrows to move, 0 to fit");

  let nodes = new Map();      // node id -> {g, shape, box, bar, members}
  let unitOf = new Map();     // task index -> unit node id
  let clusters = new Map();   // G<k> -> {g, text, shape, label, members}
  let generation = 0;
  let scale = null;           // null: fit the width; else a zoom factor on the natural size
  let natural = 0;            // the drawing's natural width in px
  let drawAll = false;        // the user asked for a graph above MAX_DRAWN nodes anyway
  let pendingReveal = null;   // a task to bring into view once the next layout is drawn

  async function relayout() {
    const view = store.model.get("_view");
    const mine = ++generation;
    const size = Object.keys(view.units ?? {}).length || store.n;
    if (size > MAX_DRAWN && !Object.keys(view.units ?? {}).length && !drawAll) {
      // Graphviz lays out on the page's thread: thousands of nodes would freeze it.
      put(canvas, h("div", { class: "nbflow-hint" },
        `${count(store.n, "task")} unfolded: laying them all out blocks the page for seconds. `,
        h("button", { type: "button", class: "nbflow-draw-all", onclick: () => { drawAll = true; relayout(); } },
          "draw them anyway"),
        " or fold them with collapse_above (e.g. run.dashboard(collapse_above=300))."));
      info.textContent = "";
      return;
    }
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
        node.kind = view.units[id].kind;
        for (const i of node.members) unitOf.set(i, id);
        node.bar = s("g", { class: "nbflow-unit-bar" });
        g.append(node.bar);
        g.classList.add("nbflow-unit", `nbflow-unit-${node.kind}`);
      }
      nodes.set(id, node);
    }
    clusters = new Map();
    for (const g of svg.querySelectorAll("g.cluster")) {
      const title = g.querySelector("title");
      const key = title ? title.textContent.replace(/^cluster_/, "") : "";
      title?.remove();
      const about = (view.clusters ?? {})[key];
      if (!about) continue;
      const text = g.querySelector("text");
      g.dataset.cluster = key;
      g.classList.add("nbflow-cluster");
      if (text) {
        text.setAttribute("tabindex", "0");
        text.setAttribute("role", "button");
        text.classList.add("nbflow-cluster-label");
        text.append(s("title", {}, "click to fold this group into one node"));
      }
      clusters.set(key, { g, text, shape: g.querySelector("path, polygon"), label: about.label,
        members: about.members });
    }
    svg.querySelector("g.graph > title")?.remove();
    // Graphviz paints a white page under the graph: the theme's background shows instead.
    svg.querySelector("g.graph > polygon")?.setAttribute("fill", "transparent");
    put(canvas, svg);
    // Fitting a long chain of levels to the width would make it unreadable: show it
    // full size (scrolling) when fitting would shrink it below about half.
    natural = (svg.viewBox.baseVal?.width ?? 0) * (4 / 3);
    setScale(natural > 2 * (canvas.clientWidth || 800) ? 1 : null);
    const shown = nodes.size;
    info.textContent = shown < store.n
      ? `${count(shown, "node")} for ${count(store.n, "task")}: click a node with a bar of states to open it`
      : count(store.n, "task");
    collapse.hidden = !((view.expanded ?? []).length || (view.folded ?? []).length);
    restyle(null);
    // What was just expanded comes into view (the old scroll position means nothing now).
    if (pendingReveal !== null) reveal(nodeOf(pendingReveal));
    pendingReveal = null;
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
    styleClusters();
    highlight();
  }

  // A cluster's label and outline show its group's rolled-up state.
  function styleClusters() {
    for (const c of clusters.values()) {
      const st = rollup(store, c.members);
      if (c.g.dataset.state === st) continue;
      c.g.dataset.state = st;
      if (c.text) c.text.firstChild.textContent = `${c.label} · ${st}`;
      if (c.shape) c.shape.style.stroke = store.color(st);
    }
  }

  /** The node that shows task i: its own, or the folded one that holds it. */
  function nodeOf(i) {
    return nodes.get(`t${i}`) ?? nodes.get(unitOf.get(i));
  }

  // Selection and search marks: a folded node is marked for what it holds.
  function highlight() {
    const selected = store.ui.selected;
    const mine = selected === null ? null : nodeOf(selected);
    const needle = store.ui.search.trim().toLowerCase();
    const names = store.graph.names;
    for (const [id, node] of nodes) {
      node.g.classList.toggle("nbflow-selected", node === mine);
      const match = needle !== "" && (node.members
        ? node.members.some((i) => names[i].toLowerCase().includes(needle))
        : names[Number(id.slice(1))].toLowerCase().includes(needle));
      node.g.classList.toggle("nbflow-match", match);
    }
  }

  /** Scroll the graph so `node` is in view, and flash it. */
  function reveal(node) {
    if (!node) return;
    const box = node.g.getBoundingClientRect(), view = canvas.getBoundingClientRect();
    canvas.scrollLeft += box.left + box.width / 2 - (view.left + view.width / 2);
    canvas.scrollTop += box.top + box.height / 2 - (view.top + view.height / 2);
    node.g.classList.remove("nbflow-reveal");
    void node.g.getBoundingClientRect();  // restart the animation
    node.g.classList.add("nbflow-reveal");
  }

  // "running ›": the next node (in declaration order of its tasks) holding that state.
  const lastJump = {};
  function jump(state) {
    const found = [];
    for (let i = 0; i < store.n; i++) {
      if (store.state[i] !== state) continue;
      const node = nodeOf(i);
      if (node && !found.includes(node)) found.push(node);
    }
    if (!found.length) {
      info.textContent = `no ${state} task`;
      return;
    }
    const k = ((lastJump[state] ?? -1) + 1) % found.length;
    lastJump[state] = k;
    reveal(found[k]);
    info.textContent = `${state}: ${k + 1} of ${count(found.length, "node")}`;
  }

  // -- zoom and pan ----------------------------------------------------------------------
  function setScale(next) {
    const svg = canvas.querySelector("svg");
    scale = next;
    if (!svg) return;
    canvas.classList.toggle("nbflow-full", scale !== null);
    svg.style.width = scale === null ? "" : `${Math.round(natural * scale)}px`;
    canvas.dataset.scale = scale === null ? "fit" : scale.toFixed(2);
  }

  function zoomBy(factor, at = null) {
    const svg = canvas.querySelector("svg");
    if (!svg || !natural) return;
    const current = scale ?? svg.getBoundingClientRect().width / natural;
    const next = Math.min(8, Math.max(0.05, current * factor));
    const view = canvas.getBoundingClientRect();
    const px = at ? at.x - view.left : view.width / 2, py = at ? at.y - view.top : view.height / 2;
    const fx = (canvas.scrollLeft + px) / current, fy = (canvas.scrollTop + py) / current;
    setScale(next);
    canvas.scrollLeft = fx * next - px;
    canvas.scrollTop = fy * next - py;
  }

  canvas.addEventListener("wheel", (event) => {
    if (!event.ctrlKey && !event.metaKey) return;  // plain wheel scrolls, as everywhere
    event.preventDefault();
    zoomBy(event.deltaY < 0 ? 1.2 : 1 / 1.2, { x: event.clientX, y: event.clientY });
  }, { signal, passive: false });
  let drag = null;
  canvas.addEventListener("pointerdown", (event) => {
    if (event.button === 0 && !nodeAt(event.target) && !clusterAt(event.target)) {
      drag = { x: event.clientX, y: event.clientY, left: canvas.scrollLeft, top: canvas.scrollTop };
    }
  }, { signal });
  canvas.addEventListener("pointermove", (event) => {
    if (drag === null || !(event.buttons & 1)) { drag = null; return; }
    canvas.scrollLeft = drag.left - (event.clientX - drag.x);
    canvas.scrollTop = drag.top - (event.clientY - drag.y);
  }, { signal });
  canvas.addEventListener("pointerup", () => { drag = null; }, { signal });
  canvas.addEventListener("keydown", (event) => {
    if ((nodeAt(event.target) || clusterAt(event.target)) && (event.key === "Enter" || event.key === " ")) return;
    const step = 60;
    const action = { "+": () => zoomBy(1.5), "=": () => zoomBy(1.5), "-": () => zoomBy(1 / 1.5),
      "0": () => setScale(null), ArrowLeft: () => { canvas.scrollLeft -= step; },
      ArrowRight: () => { canvas.scrollLeft += step; }, ArrowUp: () => { canvas.scrollTop -= step; },
      ArrowDown: () => { canvas.scrollTop += step; } }[event.key];
    if (action) { event.preventDefault(); action(); }
  }, { signal });

  function drawBar(node) {
    if (!node || !node.box) return;
    const counts = store.counts(node.members);
    const { x, y, width, height } = node.box;
    const left = x + 8, span = width - 16, top = y + height - 11;
    let at = left;
    const parts = [s("rect", { x: left, y: top, width: span, height: 6, fill: store.color(store.states[0]) })];
    // A state of a few tasks among thousands (one failed item of a 5,000-task map) keeps
    // 2 px, taken from the widest part, so that it can be seen.
    const shown = store.progressOrder.filter((st) => counts[st]);
    const widths = shown.map((st) => Math.max(2, (span * counts[st]) / node.members.length));
    const widest = widths.indexOf(Math.max(...widths));
    const done = shown.reduce((sum, st) => sum + counts[st], 0);
    // (never below those 2 px itself: alone, the widest is the few-task state).
    const excess = widths.reduce((a, b) => a + b, 0) - (span * done) / node.members.length;
    widths[widest] = Math.max(2, widths[widest] - excess);
    shown.forEach((st, k) => {
      parts.push(s("rect", { x: at, y: top, width: widths[k], height: 6, fill: store.color(st) }));
      at += widths[k];
    });
    put(node.bar, ...parts);
    if (node.kind !== "levels") {  // a map or a group is one thing: outlined by its state
      const st = rollup(store, node.members);
      node.g.dataset.rollup = st;
      for (const shape of node.g.querySelectorAll("path, polygon")) shape.style.stroke = store.color(st);
    }
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
      const map = node.kind === "map";
      lines = [view.units[id].label, count(node.members.length, map ? "mapped task" : "task"),
        ...(node.kind === "levels" ? [] : [`state: ${rollup(store, node.members)}`]),
        ...store.states.filter((st) => counts[st]).map((st) => `${st}: ${counts[st].toLocaleString()}`),
        map ? "click to unfold into its tasks" : "click to expand"];
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
  function fold(key) {
    card.hidden = true;
    info.textContent = store.send({ type: "fold", cluster: key })
      ? "folding…" : "folding a group needs the kernel: run the cell again";
  }
  function clusterAt(target) {
    const text = target.closest ? target.closest("text.nbflow-cluster-label") : null;
    return text ? text.closest("g.cluster").dataset.cluster : null;
  }
  function activate(id) {
    if (nodes.get(id)?.members) {
      card.hidden = true;  // the node it describes is about to go
      pendingReveal = nodes.get(id).members[0];
      info.textContent = store.send({ type: "expand", node: id })
        ? "expanding…" : "expanding a node needs the kernel: run the cell again";
    } else {
      store.select(Number(id.slice(1)), "graph");
    }
  }
  canvas.addEventListener("click", (event) => {
    const id = nodeAt(event.target);
    if (id) activate(id);
    else if (clusterAt(event.target)) fold(clusterAt(event.target));
  }, { signal });
  canvas.addEventListener("keydown", (event) => {
    const id = nodeAt(event.target), key = clusterAt(event.target);
    if ((id || key) && (event.key === "Enter" || event.key === " ")) {
      event.preventDefault();
      if (id) activate(id); else fold(key);
    }
  }, { signal });

  const unsubscribe = store.subscribe((change) => {
    if (change.connection) collapse.disabled = store.disconnected !== null;
    if (change.structure) drawAll = false;
    if (change.structure || change.view) relayout();
    else if (change.tasks !== undefined) restyle(change.tasks);
    else if (change.ui === "search") highlight();
    else if (change.ui === "selected") {
      highlight();
      if (store.ui.selected !== null && change.from !== "graph") reveal(nodeOf(store.ui.selected));
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
