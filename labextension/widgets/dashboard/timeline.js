// The timeline (Gantt): one lane per worker, one bar per attempt, a "now" line while
// the run goes on.  Drawn on a canvas so ten thousand bars stay cheap to redraw.
//
// A worker is named in an attempt's record only once the attempt has ended, so a
// running bar is placed in the lane of the worker that most plausibly took it: one
// that was free when it started (the latest to finish before then) and has no other
// running bar.  It moves to its real lane, if it was another, when it ends.
import { h, put } from "./dom.js";
import { duration } from "./format.js";

const LANE = 22, LABEL = 120, AXIS = 18, PAD = 16;

export function timelineView(store, signal) {
  const canvas = h("canvas", { class: "nbflow-timeline-canvas" });
  const card = h("div", { class: "nbflow-card", hidden: true });
  const el = h("div", { class: "nbflow-timeline" }, canvas, card);
  let lanes = [];   // [{name, bars: [bar...]}]
  let hits = [];    // [{x, y, w, bar}] from the last draw, for hover and click

  function assign() {
    const bars = [...store.bars.values()];
    const named = new Map();
    for (const bar of bars) {
      if (bar[2] !== null && !named.has(bar[2])) named.set(bar[2], []);
    }
    const names = [...named.keys()].sort((a, b) => a.localeCompare(b, undefined, { numeric: true }));
    const order = new Map(names.map((n, k) => [n, k]));
    lanes = names.map((name) => ({ name, bars: [], lastEnd: -Infinity, busy: false }));
    const open = [];
    for (const bar of bars) {
      if (bar[2] === null) open.push(bar);
      else {
        const lane = lanes[order.get(bar[2])];
        lane.bars.push(bar);
        if (bar[4] !== null) lane.lastEnd = Math.max(lane.lastEnd, bar[4]);
      }
    }
    const workers = store.graph.workers ?? 0;
    while (lanes.length < workers) {
      lanes.push({ name: `worker ${lanes.length + 1}`, bars: [], lastEnd: -Infinity, busy: false });
    }
    open.sort((a, b) => a[3] - b[3]);
    for (const bar of open) {
      let best = null;
      for (const lane of lanes) {
        if (lane.busy) continue;
        const fits = lane.lastEnd <= bar[3];
        if (best === null || (fits && (!best.fits || lane.lastEnd > best.lane.lastEnd))) {
          best = { lane, fits };
        }
      }
      if (best === null) {
        best = { lane: { name: "(running)", bars: [], lastEnd: -Infinity, busy: false } };
        lanes.push(best.lane);
      }
      best.lane.busy = true;
      best.lane.bars.push(bar);
    }
  }

  function draw() {
    if (signal.aborted) return;
    const width = el.clientWidth || 600;
    const height = AXIS + Math.max(1, lanes.length) * LANE + PAD;
    const ratio = window.devicePixelRatio || 1;
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
    const now = store.clock();
    let t0 = store.t0, t1 = store.live ? now : null;
    for (const bar of store.bars.values()) {
      t0 = t0 === null ? bar[3] : Math.min(t0, bar[3]);
      const end = bar[4] ?? now;
      if (end !== null) t1 = t1 === null ? end : Math.max(t1, end);
    }
    canvas.dataset.bars = "0";
    if (!lanes.length || t0 === null) {
      ctx.fillStyle = "#777";
      ctx.fillText(store.graph.run ? "no task has started yet" : "the timeline fills when the flow runs", LABEL, AXIS + LANE / 2);
      return;
    }
    const span = Math.max((t1 ?? t0) - t0, 1e-3);
    const plot = width - LABEL - PAD;
    const x = (t) => LABEL + ((t - t0) / span) * plot;
    // axis: a few round ticks
    ctx.fillStyle = "#666";
    ctx.strokeStyle = "#e4e4e4";
    const step = niceStep(span / 6);
    for (let t = 0; t <= span + 1e-9; t += step) {
      const px = x(t0 + t);
      ctx.beginPath(); ctx.moveTo(px, AXIS - 4); ctx.lineTo(px, height - PAD); ctx.stroke();
      ctx.fillText(duration(t) || "0", px + 2, AXIS / 2);
    }
    lanes.forEach((lane, k) => {
      const y = AXIS + k * LANE;
      ctx.fillStyle = "#333";
      ctx.fillText(clip(ctx, lane.name, LABEL - 8), 4, y + LANE / 2);
      for (const bar of lane.bars) {
        const bx = x(bar[3]);
        const bw = Math.max(2, x(bar[4] ?? now ?? bar[3]) - bx);
        ctx.fillStyle = store.color(bar[5]);
        ctx.fillRect(bx, y + 3, bw, LANE - 6);
        if (store.ui.selected === bar[0]) {
          ctx.strokeStyle = "#111"; ctx.lineWidth = 2;
          ctx.strokeRect(bx, y + 3, bw, LANE - 6);
          ctx.lineWidth = 1;
        }
        hits.push({ x: bx, y: y + 3, w: bw, bar });
      }
    });
    canvas.dataset.bars = String(hits.length);
    if (store.live && now !== null) {
      ctx.strokeStyle = "#d62728";
      ctx.beginPath(); ctx.moveTo(x(now), AXIS - 4); ctx.lineTo(x(now), height - PAD + 2); ctx.stroke();
      ctx.fillStyle = "#d62728";
      ctx.fillText("now", Math.min(x(now) - 10, width - 24), height - PAD / 2 + 1);
    }
  }

  function hitAt(event) {
    const rect = canvas.getBoundingClientRect();
    const px = event.clientX - rect.left, py = event.clientY - rect.top;
    for (let k = hits.length - 1; k >= 0; k--) {
      const hit = hits[k];
      if (px >= hit.x - 1 && px <= hit.x + hit.w + 1 && py >= hit.y && py <= hit.y + LANE - 6) return hit.bar;
    }
    return null;
  }

  canvas.addEventListener("mousemove", (event) => {
    const bar = hitAt(event);
    if (!bar) { card.hidden = true; return; }
    const [i, attempt, worker, start, end, state] = bar;
    const d = (end ?? store.clock()) - start;
    put(card, h("div", { class: "nbflow-card-title" }, store.graph.names[i]),
      h("div", {}, `attempt ${attempt}: ${state}`), h("div", {}, `duration: ${duration(d)}`),
      h("div", {}, `worker: ${worker ?? "(running)"}`));
    card.hidden = false;
    const rect = el.getBoundingClientRect();
    card.style.left = `${Math.min(event.clientX - rect.left + 14, rect.width - 260)}px`;
    card.style.top = `${event.clientY - rect.top + 14}px`;
  }, { signal });
  canvas.addEventListener("mouseleave", () => { card.hidden = true; }, { signal });
  canvas.addEventListener("click", (event) => {
    const bar = hitAt(event);
    if (bar) store.select(bar[0]);
  }, { signal });

  let queued = false;
  function schedule(reassign) {
    if (reassign) assign();
    if (queued) return;
    queued = true;
    requestAnimationFrame(() => { queued = false; draw(); });
  }
  const unsubscribe = store.subscribe((change) => {
    if (change.bars || change.structure) schedule(true);
    else if (change.ui === "selected" || change.connection) schedule(false);
  });
  const ticker = setInterval(() => { if (store.live) schedule(false); }, 250);
  const resize = new ResizeObserver(() => schedule(false));
  resize.observe(el);
  signal.addEventListener("abort", () => { unsubscribe(); clearInterval(ticker); resize.disconnect(); });
  assign();
  draw();
  return el;
}

function niceStep(raw) {
  const power = 10 ** Math.floor(Math.log10(raw));
  for (const m of [1, 2, 5, 10]) if (m * power >= raw) return m * power;
  return 10 * power;
}

function clip(ctx, text, width) {
  if (ctx.measureText(text).width <= width) return text;
  let cut = text;
  while (cut.length > 1 && ctx.measureText(`${cut}…`).width > width) cut = cut.slice(0, -1);
  return `${cut}…`;
}
