// The browser-side copy of a run's task table, one per widget model.
//
// It is built in `initialize` (once per model, before and independently of any view),
// so every diff is applied exactly once even when no view is on screen, and a view
// rendered later (a second view, a re-rendered output) starts from the current state.
// The wire format is described in nbflow/notebook/bridge.py and widgets/dashboard.py.

import { amount, clock, duration } from "./format.js";

const EMPTY = {
  flow: "", run: null, names: [], levels: [], deps: [], workers: null,
  colors: {}, ink: {}, terminal: [], legend: [], jump: [],
};

// Kernel states after which this model's kernel side is gone for good: a restarted
// kernel is a new process that never heard of it.
const GONE = new Set(["restarting", "autorestarting", "dead"]);
// Once it is gone, how often the page asks the server extension what the store says of
// the run (ms), first and at most (the wait doubles while the store says nothing new).
const ASK_FIRST = 2000, ASK_MOST = 30000;

export class RunStore {
  constructor(model, signal) {
    this.model = model;
    this.listeners = new Set();
    // Null while the kernel side answers, else why it does not (shown in the header).
    this.disconnected = null;
    this.gone = false;
    // What the store says of the run once the kernel is gone: {state, alive} (askStore).
    this.stored = null;
    this.signal = signal;
    // What the user chose; kept per model so a re-rendered view keeps it.
    this.ui = { selected: null, sort: ["index", 1], filter: "", search: "", page: 0 };
    this.awaitingResync = false;
    this.setStructure();
    this.applySnapshot(model.get("_snapshot"));
    this.applyDiff(model.get("_diff"));
    model.on("change:_graph", () => this.sync("structure"));
    model.on("change:_snapshot", () => this.sync("snapshot"));
    model.on("change:_diff", () => this.sync("diff"));
    model.on("change:_view", () => this.emit({ view: true }));
    // ipywidgets sets comm_live (firing this) to false when the kernel restarts; the
    // poll also catches a kernel that stopped or a lost connection, at once.
    model.on("comm_live_update", () => this.lose("the kernel restarted"));
    const poll = setInterval(() => this.watchKernel(), 250);
    signal?.addEventListener("abort", () => clearInterval(poll));
  }

  watchKernel() {
    const kernel = this.model.widget_manager?.kernel;
    if (kernel === undefined || this.gone) return;  // a manager without one: only the event
    if (kernel === null || kernel.isDisposed || GONE.has(kernel.status)) {
      this.lose(kernel && kernel.status === "dead" ? "the kernel stopped" : "the kernel restarted");
    } else if (kernel.connectionStatus !== "connected") {
      this.setDisconnected("the connection to the kernel is lost");
    } else {
      this.setDisconnected(null);
    }
  }

  lose(why) {
    const first = !this.gone;
    this.gone = true;
    this.setDisconnected(why);
    if (first && this.running) this.askStore(ASK_FIRST);
  }

  /** The page's Jupyter server (base URL, token, root) from its page config, or null. */
  static server() {
    try {
      const config = JSON.parse(document.getElementById("jupyter-config-data").textContent);
      return { base: config.baseUrl ?? "/", token: config.token ?? "", root: config.serverRoot ?? null };
    } catch {
      return null;
    }
  }

  // While the kernel is gone and the run was going, ask the server extension (which reads
  // the store: nbflow/server) whether the run is still held by a live kernel: a run whose
  // kernel died is "crashed" there as soon as its process is gone (or its lease expired).
  async askStore(wait) {
    const server = RunStore.server();
    const file = this.graph.store_file, run = this.graph.run;
    const root = server?.root?.replace(/\/+$/, "");
    if (!server || !file || !run || !root || !file.startsWith(`${root}/`)) return;
    await new Promise((done) => setTimeout(done, wait));
    if (this.signal?.aborted || this.graph.run !== run || !this.gone) return;
    const url = `${server.base.replace(/\/?$/, "/")}nbflow/api/runs/${encodeURIComponent(run)}`
      + `?store=${encodeURIComponent(file.slice(root.length + 1))}`;
    let answer = null;
    try {
      const response = await fetch(url, { credentials: "same-origin",
        headers: server.token ? { Authorization: `token ${server.token}` } : {} });
      if (response.ok) answer = (await response.json()).run;
    } catch {
      answer = null;  // no server extension, or the server is gone too: ask again later
    }
    if (answer && (answer.state !== "running" || answer.owner_alive === false)) {
      this.stored = { state: answer.state === "running" ? "crashed" : answer.state,
        alive: answer.owner_alive, heartbeat: answer.heartbeat };
      this.emit({ connection: true });
      return;
    }
    this.askStore(Math.min(ASK_MOST, wait * 2));
  }

  setDisconnected(why) {
    if (this.disconnected === why) return;
    this.disconnected = why;
    this.emit({ connection: true });
  }

  /** Send a message to the kernel side; false (and nothing thrown) if it cannot hear it. */
  send(msg) {
    if (this.disconnected !== null) return false;
    try {
      this.model.send(msg);
      return true;
    } catch (err) {  // "Cannot send": the kernel went away before the poll noticed
      this.lose("the kernel is gone");
      return false;
    }
  }

  // Backbone sets every attribute of a message before it fires the change events, so
  // whatever fired, the model already holds the matching graph, snapshot and diff.
  sync(what) {
    if (this.raw !== this.model.get("_graph")) {
      this.setStructure();
      this.applySnapshot(this.model.get("_snapshot"));
      this.emit({ structure: true, tasks: null, bars: true });
      return;
    }
    if (what === "snapshot") this.applySnapshot(this.model.get("_snapshot"));
    else if (what === "diff") this.applyDiff(this.model.get("_diff"));
  }

  setStructure() {
    this.raw = this.model.get("_graph");
    const graph = this.raw && this.raw.names ? this.raw : EMPTY;
    const n = graph.names.length;
    this.graph = graph;
    // Every state, in the order Python lists their colours (core/states.py APPEARANCE).
    this.states = Object.keys(graph.colors);
    this.terminal = new Set(graph.terminal);
    // Done first, then what is under way; pending is the bar's background.  So the
    // progress bar grows from the left.
    this.progressOrder = [
      ...this.states.filter((st) => this.terminal.has(st)),
      ...this.states.filter((st) => !this.terminal.has(st) && st !== this.states[0]).reverse(),
    ];
    // States a task of this run has been in, as far as this page knows: the legend keeps
    // them after the run moved on (a retry is over in an instant between two diffs).
    this.seen = new Set(graph.legend);
    this.n = n;
    this.state = new Array(n).fill("pending");
    this.attempt = new Array(n).fill(0);
    this.started = new Array(n).fill(null);
    this.finished = new Array(n).fill(null);
    this.errors = new Map();
    this.logs = new Map();      // task -> Map(attempt -> what it printed)
    this.displays = new Map();  // task -> Map(attempt -> [bundle]: what it displayed)
    this.bars = new Map();
    this.restored = new Set();
    this.abandoned = new Set();
    this.cancel = null;         // [when, why] once the run is cancelled
    this.seq = 0;
    this.now = null;
    this.nowAt = 0;
    this.t0 = null;
    this.t1 = null;
    this.running = false;
    this.outcome = null;
    if (this.ui.selected !== null && this.ui.selected >= n) this.ui.selected = null;
  }

  applySnapshot(snap) {
    if (!snap || snap.run !== this.graph.run) return;
    // Older than what this page has (a state restored from the saved notebook after the
    // kernel's): applying it would bring back rows that later diffs have moved on.
    if (snap.seq < this.seq) return;
    this.state.fill("pending");
    this.attempt.fill(0);
    this.started.fill(null);
    this.finished.fill(null);
    this.errors.clear();
    this.logs.clear();
    this.displays.clear();
    this.bars.clear();
    this.restored = new Set();
    this.abandoned = new Set();
    this.cancel = null;
    this.seq = snap.seq;
    this.outcome = snap.outcome;
    this.awaitingResync = false;
    this.applyRows(snap);
    this.emit({ tasks: null, bars: true });
  }

  applyDiff(diff) {
    if (!diff || diff.run !== this.graph.run || diff.run === null || diff.seq <= this.seq) return;
    // A diff holds every change since `base` (bridge.py): right after the page got the
    // whole table, that is the table's seq, so diffs it missed while it loaded leave no gap.
    const base = diff.base ?? diff.seq - 1;
    if (base > this.seq && !this.awaitingResync) {
      // A diff went missing (the page reloaded mid-run): values in this one are still
      // the newest, but ask for the whole table to fill the gap.
      this.awaitingResync = true;
      this.send({ type: "resync" });
    }
    this.seq = diff.seq;
    const changed = this.applyRows(diff);
    this.emit({ tasks: changed, bars: diff.bars.length > 0 });
  }

  applyRows(msg) {
    const changed = new Set();
    for (const [i, state, attempt, started, finished] of msg.tasks) {
      this.state[i] = state;
      this.attempt[i] = attempt;
      this.started[i] = started;
      this.finished[i] = finished;
      changed.add(i);
    }
    for (const [i, summary, traceback] of msg.errors) {
      if (summary === null) this.errors.delete(i);
      else this.errors.set(i, [summary, traceback]);
      changed.add(i);
    }
    for (const [i, attempt, text] of msg.logs) {
      if (!this.logs.has(i)) this.logs.set(i, new Map());
      this.logs.get(i).set(attempt, text);
      changed.add(i);
    }
    for (const [i, attempt, shown] of msg.displays ?? []) {
      if (!this.displays.has(i)) this.displays.set(i, new Map());
      this.displays.get(i).set(attempt, shown);
      changed.add(i);
    }
    if (msg.cancel) {
      this.cancel = msg.cancel;
      this.abandoned = new Set(msg.abandoned);
      for (const i of this.abandoned) changed.add(i);
    }
    if (msg.restored?.length) {
      for (const i of msg.restored) if (!this.restored.has(i)) changed.add(i);
      this.restored = new Set(msg.restored);
    }
    for (const bar of msg.bars) {
      this.bars.set(`${bar[0]}:${bar[1]}`, bar);
      this.seen.add(bar[5]);
    }
    for (const [, state] of msg.tasks) this.seen.add(state);
    if (msg.now !== null && msg.now !== undefined) {
      this.now = msg.now;
      this.nowAt = performance.now();
    }
    if (msg.t0 !== null && msg.t0 !== undefined) this.t0 = msg.t0;
    if (msg.t1 !== null && msg.t1 !== undefined) this.t1 = msg.t1;
    this.running = Boolean(msg.running);
    return changed;
  }

  // -- reading ------------------------------------------------------------------------
  /** True while the run goes on and the kernel side is there to say how it goes. */
  get live() {
    return this.running && this.disconnected === null;
  }

  /** The server's clock now, estimated from the last message (Unix seconds); it stops
   * at the last message once the kernel is gone. */
  clock() {
    if (this.now === null) return null;
    return this.live ? this.now + (performance.now() - this.nowAt) / 1000 : this.now;
  }

  /** Seconds since the first event while running, else from the first to the last. */
  elapsed() {
    if (this.t0 === null) return null;
    const end = this.running ? this.clock() : this.t1;
    return end === null ? null : Math.max(0, end - this.t0);
  }

  /** A time as the views show it: the wall clock, or seconds on a simulation's virtual
   * clock. */
  time(t) {
    if (!this.graph.virtual) return clock(t);
    if (t === null || t === undefined) return "";
    return `t=${amount(t, this.graph.unit ?? "s")}`;
  }

  /** A length of time as the views show it: "2.00 s", or in the unit a simulation's
   * durations count (`flow.simulate(unit="ms")`), which is not converted. */
  span(seconds) {
    const unit = this.graph.unit;
    if (unit === undefined || seconds === null || seconds === undefined
        || !Number.isFinite(seconds)) return duration(seconds);
    return amount(seconds, unit);
  }

  duration(i) {
    const start = this.started[i];
    if (start === null) return null;
    const end = this.finished[i] ?? (this.state[i] === "running" ? this.clock() : null);
    return end === null ? null : Math.max(0, end - start);
  }

  /** Task i's attempts, oldest first: [{attempt, state, start, end, worker, error, log,
   * displays}]. */
  attempts(i) {
    const out = [];
    const logs = this.logs.get(i);
    const displays = this.displays.get(i);
    for (let a = 1; a <= this.attempt[i]; a++) {
      const bar = this.bars.get(`${i}:${a}`);
      const log = logs?.get(a);
      const shown = displays?.get(a) ?? [];
      if (!bar && log === undefined && !shown.length) continue;
      out.push({ attempt: a, state: bar?.[5] ?? this.state[i], start: bar?.[3] ?? null,
        end: bar?.[4] ?? null, worker: bar?.[2] ?? null, error: bar?.[6] ?? null, log: log ?? "",
        displays: shown });
    }
    return out;
  }

  counts(members = null) {
    const counts = Object.fromEntries(this.states.map((s) => [s, 0]));
    if (members === null) for (const st of this.state) counts[st] += 1;
    else for (const i of members) counts[this.state[i]] += 1;
    return counts;
  }

  color(state) {
    return this.graph.colors[state] ?? "#ffffff";
  }

  /** The text colour that reads on color(state). */
  ink(state) {
    return this.graph.ink[state] ?? "#111111";
  }

  /** Inline style for a badge of `state`. */
  paint(state) {
    return `background:${this.color(state)};color:${this.ink(state)}`;
  }

  /** Tasks in a terminal state. */
  done(counts) {
    let n = 0;
    for (const st of this.terminal) n += counts[st] ?? 0;
    return n;
  }

  // -- changes ------------------------------------------------------------------------
  /** Call fn(change) after every change; returns the function that unsubscribes. */
  subscribe(fn) {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  /** change: {structure?, view?, tasks?: Set of indices or null for all, bars?, ui?,
   * connection?} */
  emit(change) {
    for (const fn of this.listeners) fn(change);
  }

  /** Select task i; `from` names the view it was picked in (it need not scroll to it). */
  select(i, from = null) {
    this.ui.selected = i;
    this.emit({ ui: "selected", from });
  }
}
