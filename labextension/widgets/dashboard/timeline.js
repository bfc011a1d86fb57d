// The timeline (Gantt), drawn on a canvas so ten thousand bars stay cheap to redraw.
//
// Two views of the same bars (one per attempt):
//   by worker  one lane per worker slot, "worker 0" to "worker n-1". An attempt's worker is
//              known only once it ended, so lanes are slots: a bar takes the first slot free
//              when it starts and keeps it (it never jumps), no lane is empty, and there
//              are never more lanes than the run has workers. On Dask (graph.lanes
//              "named") one lane per worker the attempts name, in the order each first
//              ran one, so the workers an adaptive cluster adds and retires come and go;
//              an attempt still running (its worker is known when it ends) has a lane
//              "running" below them.
//   by task    one row per task that ran, grouped by level, in declaration order.
//   by pool    (a run with resource pools) one lane per slot of each pool, "db 0" to
//              "db n-1": an attempt of a task that holds n slots of a pool is drawn in n of
//              its lanes, the first ones free when it started (the engine counts slots;
//              which ones is the view's choice, and never more than the pool has).
// The time axis zooms (wheel, +/-, buttons) around the pointer and pans (drag, arrows);
// "fit" (or a double click) shows the whole run again. Rows are drawn only where the
// scroll box shows them, so the per-task view of a big flow stays cheap.
import { h, put } from "./dom.js";
import { amount } from "./format.js";

const ROW = 20, LABEL = 130, AXIS = 20, PAD = 14, MAX_HEIGHT = 320, TICK_SPACING = 90;
// Below this width a label column would leave the bars no room (or the labels none).
const NARROW = 340, LINE = 14;

/** Where rows, labels and bars go at this width: beside each other, or, when narrow, each
 * row's label on a line of its own above its bars, which then get the whole width. */
function geometry(width) {
  return width < NARROW ? { left: 4, row: ROW + LINE, top: LINE, labels: "stacked", room: width - 8 }
    : { left: LABEL, row: ROW, top: 0, labels: "column", room: LABEL - 8 };
}

export function timelineView(store, signal) {
  const canvas = h("canvas", { class: "nbflow-timeline-canvas", tabindex: "0",
    "aria-label": "timeline: wheel or +/- to zoom, drag or arrows to pan, 0 to fit" });
  const spacer = h("div", { class: "nbflow-timeline-spacer" });
  const scroller = h("div", { class: "nbflow-timeline-scroll" }, canvas, spacer);
  const card = h("div", { class: "nbflow-card", hidden: true });
  const legend = h("span", { class: "nbflow-legend" });
  const modes = [["workers", "by worker"], ["tasks", "by task"], ["pools", "by pool"]].map(([mode, label]) =>
    h("button", { type: "button", class: "nbflow-timeline-mode", "data-mode": mode,
      onclick: () => { store.ui.timeline = mode; scroller.scrollTop = 0; schedule(true); } }, label));
  const zoomButtons = [["−", "zoom out", () => zoom(2)], ["+", "zoom in", () => zoom(0.5)],
    ["fit", "show the whole run", () => fit()]].map(([text, title, fn]) =>
    h("button", { type: "button", class: "nbflow-zoom", title, onclick: fn }, text));
  const el = h("div", { class: "nbflow-timeline" },
    h("div", { class: "nbflow-toolbar" }, ...modes, legend, h("span", { class: "nbflow-spring" }), ...zoomButtons),
    scroller, card);
  store.ui.timeline ??= store.graph.timeline ?? "workers";
  let rows = [];          // [{label, bars, level?}]
  let hits = [];          // [{x, y, w, bar}] from the last draw, for hover and click
  let slotOf = new Map(); // bar key -> worker slot, kept for the bars' lifetime
  let shown = null;      // [t0, t1] shown, or null: the whole run (following it live)
  let span = null;        // [t0, t1] of the whole run at the last draw
  let geo = geometry(600); // the geometry of the last draw

  function assignSlots(bars) {
    const slots = [];     // per slot: the latest end of its bars (Infinity while one runs)
    for (const bar of bars) {
      const k = slotOf.get(key(bar));
      if (k === undefined) continue;
      while (slots.length <= k) slots.push(-Infinity);
      slots[k] = Math.max(slots[k], bar[4] ?? Infinity);
    }
    // The run never has more attempts going than workers: a bar that seems to overlap
    // every lane does so because its start and the previous end come from different
    // clocks (a worker's own start, the engine's end; another machine's, on Dask), so it
    // takes the lane that freed first rather than open a lane no worker had.
    const workers = store.graph.workers ?? Infinity;
    for (const bar of bars) {
      if (slotOf.has(key(bar))) continue;
      let k = slots.findIndex((end) => end <= bar[3]);
      if (k < 0 && slots.length >= workers) k = slots.indexOf(Math.min(...slots));
      if (k < 0) { k = slots.length; slots.push(-Infinity); }
      slots[k] = bar[4] ?? Infinity;
      slotOf.set(key(bar), k);
    }
    return slots.length;
  }

  // A simulation names every attempt's worker from its start: its lanes are the workers.
  function simulatedSlots(bars) {
    let n = store.graph.workers ?? 1;
    for (const bar of bars) {
      const k = Number(/(\d+)$/.exec(bar[2] ?? "")?.[1] ?? 0);
      slotOf.set(key(bar), k);
      n = Math.max(n, k + 1);
    }
    return n;
  }

  function arrange() {
    const bars = [...store.bars.values()].sort((a, b) => a[3] - b[3] || a[0] - b[0] || a[1] - b[1]);
    const pools = Object.entries(store.graph.pools ?? {});
    if (store.ui.timeline === "pools" && !pools.length) store.ui.timeline = "workers";
    if (store.ui.timeline === "pools") {
      rows = poolLanes(pools, bars);
    } else if (store.ui.timeline === "tasks") {
      const byTask = new Map();
      for (const bar of bars) {
        if (!byTask.has(bar[0])) byTask.set(bar[0], []);
        byTask.get(bar[0]).push(bar);
      }
      const levels = store.graph.levels;
      rows = [...byTask.keys()].sort((a, b) => levels[a] - levels[b] || a - b)
        .map((i) => ({ label: store.graph.names[i], bars: byTask.get(i), level: levels[i] }));
    } else if (store.graph.lanes === "named" && !store.graph.virtual) {
      rows = namedLanes(bars);
    } else {
      const n = store.graph.virtual ? simulatedSlots(bars) : assignSlots(bars);
      rows = Array.from({ length: n }, (_, k) => ({ label: `worker ${k}`, bars: [] }));
      for (const bar of bars) rows[slotOf.get(key(bar))].bars.push(bar);
    }
    const states = store.states.filter((st) => bars.some((bar) => bar[5] === st));
    put(legend, ...states.map((st) => h("span", { class: "nbflow-legend-item" },
      h("span", { class: "nbflow-swatch", style: `background:${store.color(st)}` }), st)));
    for (const button of modes) {
      button.setAttribute("aria-pressed", String(button.dataset.mode === store.ui.timeline));
      button.hidden = button.dataset.mode === "pools" && !pools.length;
    }
  }

  /** One lane per worker the bars name, then one per attempt still running. */
  function namedLanes(bars) {
    const byWorker = new Map(), running = [];
    for (const bar of bars) {
      if (bar[2] == null) { running.push({ label: "running", bars: [bar] }); continue; }
      if (!byWorker.has(bar[2])) byWorker.set(bar[2], []);
      byWorker.get(bar[2]).push(bar);
    }
    // "tcp://10.0.0.5:40123" reads as "10.0.0.5:40123"; the hover card has the whole name.
    return [...[...byWorker].map(([name, list]) => ({ label: name.replace(/^\w+:\/\//, ""), bars: list })),
      ...running];
  }

  /** One lane per slot of each pool, each attempt in as many lanes as it holds slots. */
  function poolLanes(pools, bars) {
    // {task index: {pool: slots}}; JSON made the indexes strings.
    const held = new Map(Object.entries(store.graph.resources ?? {}).map(([i, r]) => [Number(i), r]));
    const out = [];
    for (const [pool, slots] of pools) {
      const ends = new Array(slots).fill(-Infinity);   // per lane: when it is free again
      const lanes = Array.from({ length: slots }, (_, k) => ({ label: `${pool} ${k}`, bars: [] }));
      for (const bar of bars) {
        const n = held.get(bar[0])?.[pool];
        if (!n) continue;
        // The lanes free at its start, else (clocks of worker and engine differ by a hair)
        // those that free first: never a lane the pool does not have.
        const busy = (k) => ends[k] > bar[3];
        const order = ends.map((end, k) => k).sort((a, b) =>
          busy(a) - busy(b) || (busy(a) ? ends[a] - ends[b] : 0) || a - b);
        for (const k of order.slice(0, n)) {
          ends[k] = bar[4] ?? Infinity;
          lanes[k].bars.push(bar);
        }
      }
      out.push(...lanes);
    }
    return out;
  }

  function runSpan() {
    const now = store.clock();
    let t0 = store.t0, t1 = store.live ? now : store.t1;
    for (const bar of store.bars.values()) {
      t0 = t0 === null ? bar[3] : Math.min(t0, bar[3]);
      const end = bar[4] ?? now;
      if (end !== null) t1 = t1 === null ? end : Math.max(t1, end);
    }
    // A simulation at its clock's start has running bars of no width yet: one unit of
    // its clock shows them, where a live run's first millisecond would be all axis.
    const least = store.graph.virtual ? 1 : 1e-3;
    return t0 === null ? null : [t0, Math.max(t1 ?? t0, t0 + least)];
  }

  function draw() {
    if (signal.aborted) return;
    const style = getComputedStyle(el);
    const fg = style.getPropertyValue("--nbflow-fg").trim() || "#222";
    const muted = style.getPropertyValue("--nbflow-muted").trim() || "#666";
    const grid = style.getPropertyValue("--nbflow-border").trim() || "#e0e0e0";
    // Not on screen (a hidden output, a closed tab, a theme being swapped): drawn at a
    // made-up width it would stay wrong once shown; the resize observer draws it when it
    // has a width.
    const width = scroller.clientWidth;
    if (!width) return;
    geo = geometry(width);
    const ROW_H = geo.row, LEFT = geo.left;
    const full = AXIS + Math.max(1, rows.length) * ROW_H + PAD;
    const height = Math.min(full, MAX_HEIGHT);
    spacer.style.height = `${Math.max(0, full - height)}px`;
    const ratio = globalThis.devicePixelRatio || 1;
    canvas.width = Math.round(width * ratio);
    canvas.height = Math.round(height * ratio);
    canvas.style.width = `${width}px`;
    canvas.style.height = `${height}px`;
    const ctx = canvas.getContext("2d");
    ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
    ctx.clearRect(0, 0, width, height);
    ctx.font = "11px sans-serif";
    ctx.textBaseline = "middle";
    hits = [];
    canvas.dataset.bars = "0";
    span = runSpan();
    if (!rows.length || span === null) {
      ctx.fillStyle = muted;
      ctx.fillText(store.graph.run ? "no task has started yet" : "the timeline fills when the flow runs", LEFT, AXIS + ROW / 2);
      return;
    }
    const [v0, v1] = shown ?? span;
    const plot = width - LEFT - PAD;
    const x = (t) => LEFT + ((t - v0) / (v1 - v0)) * plot;
    const now = store.clock();

    // The axis: round steps from the run's start, every label in one format, none cut off.
    const step = niceStep(((v1 - v0) * TICK_SPACING) / Math.max(plot, 1));
    const format = tickFormat(step, store.graph.unit);
    ctx.strokeStyle = grid;
    ctx.fillStyle = muted;
    for (let t = Math.ceil((v0 - span[0]) / step) * step; span[0] + t <= v1 + 1e-9; t += step) {
      const px = x(span[0] + t);
      ctx.beginPath(); ctx.moveTo(px, AXIS - 4); ctx.lineTo(px, height - PAD); ctx.stroke();
      const text = format(t);
      if (px + ctx.measureText(text).width + 2 <= width) ctx.fillText(text, px + 2, AXIS / 2);
    }

    const first = Math.floor(scroller.scrollTop / ROW_H);
    const visible = Math.ceil((height - AXIS - PAD) / ROW_H) + 1;
    ctx.save();
    ctx.beginPath(); ctx.rect(0, AXIS, width, height - AXIS - PAD + 4); ctx.clip();
    const offset = scroller.scrollTop - first * ROW_H;
    let shownBars = 0, clipped = 0;
    for (let r = first; r < Math.min(rows.length, first + visible); r++) {
      const row = rows[r];
      const top = AXIS + (r - first) * ROW_H - offset, y = top + geo.top;
      if (row.level !== undefined && (r === 0 || rows[r - 1].level !== row.level)) {
        ctx.strokeStyle = muted;
        ctx.beginPath(); ctx.moveTo(0, top); ctx.lineTo(width - PAD, top); ctx.stroke();
      }
      ctx.fillStyle = fg;
      const label = row.level !== undefined ? `L${row.level} ${row.label}` : row.label;
      const labelText = clip(ctx, label, geo.room);
      if (labelText !== label) clipped++;
      ctx.fillText(labelText, 4, geo.top ? top + LINE / 2 + 1 : y + ROW / 2);
      ctx.save();
      ctx.beginPath(); ctx.rect(LEFT, y, plot, ROW); ctx.clip();
      for (const bar of row.bars) {
        const end = bar[4] ?? now ?? bar[3];
        if (end < v0 || bar[3] > v1) continue;
        const bx = x(bar[3]);
        // A pixel of gap after each bar keeps back-to-back attempts apart.
        const bw = Math.max(2, x(end) - bx - 1);
        ctx.fillStyle = store.color(bar[5]);
        ctx.fillRect(bx, y + 3, bw, ROW - 6);
        if (bar[4] === null) {  // still running: an open end
          ctx.strokeStyle = fg; ctx.setLineDash([3, 2]);
          ctx.strokeRect(bx + 0.5, y + 3.5, bw - 1, ROW - 7);
          ctx.setLineDash([]);
        }
        if (store.ui.selected === bar[0]) {
          ctx.strokeStyle = fg; ctx.lineWidth = 2;
          ctx.strokeRect(bx, y + 2, bw, ROW - 4);
          ctx.lineWidth = 1;
        }
        const name = store.ui.timeline === "tasks" ? `#${bar[1]}` : store.graph.names[bar[0]];
        if (bw > 24) {
          ctx.fillStyle = store.ink(bar[5]);
          ctx.fillText(clip(ctx, name, bw - 6), Math.max(bx, LEFT) + 3, y + ROW / 2);
        }
        hits.push({ x: bx, y: y + 3, w: bw, bar });
        shownBars++;
      }
      ctx.restore();
    }
    ctx.restore();
    canvas.dataset.bars = String(store.bars.size);
    canvas.dataset.drawn = String(shownBars);
    canvas.dataset.rows = String(rows.length);
    canvas.dataset.lanes = store.graph.lanes === "named" ? rows.map((row) => row.label).join(" | ") : "";
    canvas.dataset.labels = geo.labels;
    canvas.dataset.clipped = String(clipped);
    canvas.dataset.plot = String(Math.round(plot));
    canvas.dataset.width = String(v1 - v0);   // the time shown across the plot
    if (store.live && now !== null && now >= v0 && now <= v1) {
      ctx.strokeStyle = fg; ctx.setLineDash([2, 2]);
      ctx.beginPath(); ctx.moveTo(x(now), AXIS - 4); ctx.lineTo(x(now), height - PAD + 2); ctx.stroke();
      ctx.setLineDash([]);
      ctx.fillStyle = fg;
      ctx.fillText("now", Math.min(x(now) - 10, width - 24), height - PAD / 2 + 1);
    }
  }

  // -- zoom and pan ----------------------------------------------------------------------
  function zoom(factor, at = null) {
    if (span === null) return;
    const [v0, v1] = shown ?? span;
    const plot = (scroller.clientWidth || 600) - geo.left - PAD;
    const pivot = at === null ? (v0 + v1) / 2 : v0 + ((at - geo.left) / plot) * (v1 - v0);
    const width = Math.min(span[1] - span[0], Math.max(1e-4, (v1 - v0) * factor));
    setWindow(pivot - (pivot - v0) * (width / (v1 - v0)), width);
  }

  function pan(fraction) {
    if (span === null) return;
    const [v0, v1] = shown ?? span;
    setWindow(v0 + fraction * (v1 - v0), v1 - v0);
  }

  function setWindow(start, width) {
    if (width >= span[1] - span[0] - 1e-9) { fit(); return; }
    start = Math.min(Math.max(start, span[0]), span[1] - width);
    shown = [start, start + width];
    schedule(false);
  }

  function fit() {
    shown = null;
    schedule(false);
  }

  canvas.addEventListener("wheel", (event) => {
    if (!event.ctrlKey && !event.metaKey && Math.abs(event.deltaX) > Math.abs(event.deltaY)) {
      event.preventDefault();
      pan(event.deltaX / 500);
      return;
    }
    if (event.shiftKey) return;  // leaves the page scrolling
    event.preventDefault();
    const rect = canvas.getBoundingClientRect();
    zoom(event.deltaY > 0 ? 1.25 : 0.8, event.clientX - rect.left);
  }, { signal, passive: false });
  canvas.addEventListener("keydown", (event) => {
    const action = { "+": () => zoom(0.5), "=": () => zoom(0.5), "-": () => zoom(2),
      "0": fit, ArrowLeft: () => pan(-0.2), ArrowRight: () => pan(0.2) }[event.key];
    if (action) { event.preventDefault(); action(); }
  }, { signal });
  let drag = null;
  canvas.addEventListener("pointerdown", (event) => {
    drag = { x: event.clientX, moved: false };
  }, { signal });
  canvas.addEventListener("pointermove", (event) => {
    if (drag === null || !(event.buttons & 1)) return;
    const dx = event.clientX - drag.x;
    if (Math.abs(dx) < 3 && !drag.moved) return;
    drag.moved = true;
    drag.x = event.clientX;
    pan(-dx / Math.max(1, (scroller.clientWidth || 600) - geo.left - PAD));
  }, { signal });
  canvas.addEventListener("dblclick", fit, { signal });
  scroller.addEventListener("scroll", () => schedule(false), { signal });

  // -- hover and clicks ------------------------------------------------------------------
  /** The pool slots task i holds while it runs, for the hover card (null: none). */
  function held(i) {
    const found = (store.graph.resources ?? {})[i];
    if (!found) return null;
    const slots = Object.entries(found).map(([pool, n]) => `${pool} × ${n}`).join(", ");
    return h("div", {}, `pool slots: ${slots}`);
  }

  function hitAt(event) {
    const rect = canvas.getBoundingClientRect();
    const px = event.clientX - rect.left, py = event.clientY - rect.top;
    for (let k = hits.length - 1; k >= 0; k--) {
      const hit = hits[k];
      if (px >= hit.x - 1 && px <= hit.x + hit.w + 1 && py >= hit.y && py <= hit.y + ROW - 6) return hit.bar;
    }
    return null;
  }

  canvas.addEventListener("mousemove", (event) => {
    const bar = drag?.moved ? null : hitAt(event);
    if (!bar) { card.hidden = true; return; }
    const [i, attempt, worker, start, end, state] = bar;
    put(card, h("div", { class: "nbflow-card-title" }, store.graph.names[i]),
      h("div", {}, `attempt ${attempt}: ${state}`),
      h("div", {}, `start: ${store.time(start)}`),
      h("div", {}, `duration: ${store.span((end ?? store.clock()) - start)}${end === null ? " so far" : ""}`),
      h("div", {}, `worker: ${worker ?? "(known when it ends)"}`),
      held(i));
    card.hidden = false;
    const rect = el.getBoundingClientRect();
    card.style.left = `${Math.min(event.clientX - rect.left + 14, rect.width - 260)}px`;
    card.style.top = `${event.clientY - rect.top + 14}px`;
  }, { signal });
  canvas.addEventListener("mouseleave", () => { card.hidden = true; }, { signal });
  canvas.addEventListener("click", (event) => {
    const moved = drag?.moved;
    drag = null;
    const bar = moved ? null : hitAt(event);
    if (bar) store.select(bar[0]);
  }, { signal });

  let queued = false, rearrange = false;
  function schedule(again) {
    rearrange ||= again;
    if (queued) return;
    queued = true;
    requestAnimationFrame(() => {
      queued = false;
      if (rearrange) { rearrange = false; arrange(); }
      draw();
    });
  }
  const unsubscribe = store.subscribe((change) => {
    if (change.structure) { slotOf = new Map(); shown = null; }
    if (change.bars || change.structure) schedule(true);
    else if (change.ui === "selected" || change.connection) schedule(false);
  });
  const ticker = setInterval(() => { if (store.live) schedule(false); }, 250);
  const resize = new ResizeObserver(() => schedule(false));
  resize.observe(el);
  // The canvas holds the theme's colours as they were when drawn: a theme switch (which
  // JupyterLab marks on <body> once applied) changes no size, so it must ask for a redraw.
  const themed = new MutationObserver(() => schedule(false));
  themed.observe(document.body, { attributes: true, attributeFilter: ["data-jp-theme-light", "data-jp-theme-name"] });
  signal.addEventListener("abort", () => {
    unsubscribe(); clearInterval(ticker); resize.disconnect(); themed.disconnect();
  });
  arrange();
  draw();
  return el;
}

function key(bar) {
  return `${bar[0]}:${bar[1]}`;
}

function niceStep(raw) {
  const power = 10 ** Math.floor(Math.log10(raw));
  for (const m of [1, 2, 5, 10]) if (m * power >= raw) return m * power;
  return 10 * power;
}

/** One label format for every tick of an axis whose ticks are `step` seconds apart (or
 * `step` of a simulation's own `unit`, which is not converted). */
function tickFormat(step, unit) {
  if (unit !== undefined) return (t) => amount(Number(t.toPrecision(12)), unit);
  if (step >= 60) {
    return (t) => {
      const m = Math.floor(t / 60 + 1e-9), s = Math.round(t - 60 * m);
      return `${m}:${String(s).padStart(2, "0")} min`;
    };
  }
  const decimals = Math.max(0, Math.min(4, -Math.floor(Math.log10(step) + 1e-9)));
  return (t) => `${t.toFixed(decimals)} s`;
}

function clip(ctx, text, width) {
  if (ctx.measureText(text).width <= width) return text;
  let cut = text;
  while (cut.length > 1 && ctx.measureText(`${cut}…`).width > width) cut = cut.slice(0, -1);
  return cut.length > 1 ? `${cut}…` : "";
}
