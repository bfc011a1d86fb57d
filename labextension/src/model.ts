/**
 * The client-side state of the cell badges: which tasks each cell declared and
 * the latest state of each, from the kernel's channel (live) and from the
 * server's store API (after a reload, or with no kernel).
 *
 * Pure: no DOM, no JupyterLab, no I/O, so node's test runner checks it alone
 * (test/model.test.mjs). The messages it takes are those of
 * nbflow/notebook/cellstatus.py (kernel) and nbflow/server/handlers.py (server).
 */

/** One task's row as the kernel sends it: [index, state, attempt, started, finished]. */
export type Row = [number, string, number, number | null, number | null];

/** One run as the kernel describes it (a `run` message, or an entry of `state.runs`). */
export interface IKernelRun {
  id: string;
  flow: string;
  names: string[];
  cells: (string | null)[];
  attempts: number[];
  running: boolean;
  outcome: string | null;
  now: number;
  tasks: Row[];
  errors: [number, string | null][];
}

/** A kernel message on the nbflow.cells channel. */
export type KernelMessage =
  | {
      type: 'state';
      protocol: number;
      notebook: string | null;
      declared: [string, string, string][];
      runs: IKernelRun[];
    }
  | ({ type: 'run' } & IKernelRun)
  | {
      type: 'diff';
      run: string;
      seq: number;
      now: number;
      running: boolean;
      outcome: string | null;
      tasks: Row[];
      errors: [number, string | null][];
    }
  | { type: 'declared'; declared: [string, string, string][] }
  | { type: 'error'; message: string };

/** One task of a cell, as the server's `cells` endpoint answers. */
export interface IServerTask {
  name: string;
  state: string;
  attempt: number;
  started: number | null;
  finished: number | null;
  error: string | null;
  run: string;
}

/** The server's `cells` answer. */
export interface IServerCells {
  runs: { id: string; flow: string; state: string; owner_alive: boolean | null }[];
  cells: { [cell: string]: IServerTask[] };
}

/** What a badge shows about one task. */
export interface ITaskView {
  run: string | null;
  flow: string;
  task: string;
  state: string;
  attempt: number;
  attempts: number | null;
  started: number | null;
  finished: number | null;
  error: string | null;
}

/** What one cell's badge shows. */
export interface IBadge {
  /** The state that colours the badge (the most pressing one of its tasks). */
  state: string;
  /** The badge's text. */
  label: string;
  /** The hover text: one line per task. */
  title: string;
  tasks: ITaskView[];
}

/** Runs a page keeps (a cell shows the newest run that covers it). */
const KEPT_RUNS = 16;

/** The badge state of a task that is declared but has not run since. */
export const DECLARED = 'declared';

/** Which state a cell with several tasks shows: the first of these its tasks are in. */
const PRESSING = [
  'failed',
  'running',
  'retrying',
  'upstream_failed',
  'ready',
  'pending',
  'compensating',
  'cancelled',
  'skipped',
  'compensated',
  'succeeded',
  DECLARED
];

interface IRunTable {
  id: string;
  flow: string;
  order: number;
  names: string[];
  cells: (string | null)[];
  attempts: (number | null)[];
  state: string[];
  attempt: number[];
  started: (number | null)[];
  finished: (number | null)[];
  errors: Map<number, string>;
  running: boolean;
  seq: number;
  /** Kernel time minus page time when the kernel last spoke (seconds). */
  skew: number;
}

/**
 * The latest state of every cell's tasks.
 *
 * A later run wins over an earlier one for the cells it covers; the kernel's
 * live data wins over the server's for the same run; a task declared again
 * after its last run shows `declared` until it runs.
 */
export class CellStates {
  /** Apply a kernel message; returns an error text for an `error` message. */
  applyKernel(msg: KernelMessage, pageNow: number): string | null {
    switch (msg.type) {
      case 'state':
        this._setDeclared(msg.declared);
        for (const run of msg.runs) {
          this._kernelRun(run, pageNow);
        }
        return null;
      case 'run':
        this._kernelRun(msg, pageNow);
        return null;
      case 'diff': {
        const table = this._runs.get(msg.run);
        if (!table) {
          return null;
        }
        table.running = msg.running;
        table.skew = msg.now - pageNow;
        this._rows(table, msg.tasks, msg.errors);
        return null;
      }
      case 'declared':
        this._setDeclared(msg.declared);
        return null;
      case 'error':
        return msg.message;
      default:
        return null;
    }
  }

  /** Apply the server's `cells` answer (the store's view; a kernel's live runs win). */
  applyServer(answer: IServerCells, pageNow: number): void {
    const live = new Set(
      [...this._runs.values()].filter(t => t.order >= 0).map(t => t.id)
    );
    const runs = new Map(answer.runs.map(r => [r.id, r]));
    for (const [cell, tasks] of Object.entries(answer.cells)) {
      for (const t of tasks) {
        if (live.has(t.run)) {
          continue;
        }
        let table = this._runs.get(t.run);
        if (!table) {
          const info = runs.get(t.run);
          table = newTable(t.run, info ? info.flow : '', this._serverOrder(t.run));
          table.running = info ? info.state === 'running' && !!info.owner_alive : false;
          this._runs.set(t.run, table);
          this._prune();
        }
        let i = table.names.indexOf(t.name);
        if (i < 0) {
          i = table.names.length;
          table.names.push(t.name);
          table.cells.push(cell);
          table.attempts.push(null);
          table.state.push(t.state);
          table.attempt.push(0);
          table.started.push(null);
          table.finished.push(null);
        }
        table.state[i] = t.state;
        table.attempt[i] = t.attempt;
        table.started[i] = t.started;
        table.finished[i] = t.finished;
        if (t.error) {
          table.errors.set(i, firstLine(t.error));
        } else {
          table.errors.delete(i);
        }
      }
    }
    void pageNow;
  }

  /** Whether a kernel run is still going (its badges need a ticking clock). */
  get anyRunning(): boolean {
    return [...this._runs.values()].some(t => t.running);
  }

  /** The ids of the cells that have a badge. */
  cells(): string[] {
    const out = new Set<string>(this._declared.keys());
    for (const table of this._runs.values()) {
      for (const c of table.cells) {
        if (c) {
          out.add(c);
        }
      }
    }
    return [...out];
  }

  /** The tasks of cell `cell` (its latest known state each), or [] if it declared none. */
  tasks(cell: string): ITaskView[] {
    const byTask = new Map<string, ITaskView>();
    const tables = [...this._runs.values()].sort((a, b) => b.order - a.order);
    for (const table of tables) {
      table.cells.forEach((c, i) => {
        const key = `${table.flow}\u0000${table.names[i]}`;
        const now = this._declaredAt.get(key);
        // A task declared again in another cell has left this one.
        if (c !== cell || byTask.has(key) || (now !== undefined && now !== cell)) {
          return;
        }
        byTask.set(key, {
          run: table.id,
          flow: table.flow,
          task: table.names[i],
          state: table.state[i],
          attempt: table.attempt[i],
          attempts: table.attempts[i],
          started: table.started[i],
          finished: table.finished[i],
          error: table.errors.get(i) ?? null
        });
      });
    }
    for (const [flow, task] of this._declared.get(cell) ?? []) {
      const key = `${flow}\u0000${task}`;
      if (!byTask.has(key)) {
        byTask.set(key, {
          run: null,
          flow,
          task,
          state: DECLARED,
          attempt: 0,
          attempts: null,
          started: null,
          finished: null,
          error: null
        });
      }
    }
    return [...byTask.values()];
  }

  /** The badge of cell `cell` at page time `pageNow` (seconds), or null. */
  badge(cell: string, pageNow: number): IBadge | null {
    const tasks = this.tasks(cell);
    if (!tasks.length) {
      return null;
    }
    const skew = this._skew(tasks);
    const lines = tasks.map(t => `${t.task}: ${describe(t, pageNow + skew)}`);
    if (tasks.length === 1) {
      return {
        state: tasks[0].state,
        label: describe(tasks[0], pageNow + skew),
        title: lines[0],
        tasks
      };
    }
    const counts = new Map<string, number>();
    for (const t of tasks) {
      counts.set(t.state, (counts.get(t.state) ?? 0) + 1);
    }
    const state = PRESSING.find(s => counts.has(s)) ?? tasks[0].state;
    const parts = PRESSING.filter(s => counts.has(s)).map(
      s => `${counts.get(s)} ${s.replace('_', ' ')}`
    );
    return {
      state,
      label: `${tasks.length} tasks: ${parts.join(', ')}`,
      title: lines.join('\n'),
      tasks
    };
  }

  private _setDeclared(declared: [string, string, string][]): void {
    this._declared = declaredMap(declared);
    this._declaredAt = new Map(declared.map(([flow, task, cell]) => [`${flow}\u0000${task}`, cell]));
  }

  private _kernelRun(run: IKernelRun, pageNow: number): void {
    const table = newTable(run.id, run.flow, this._order++);
    table.names = [...run.names];
    table.cells = [...run.cells];
    table.attempts = [...run.attempts];
    const n = run.names.length;
    table.state = new Array(n).fill('pending');
    table.attempt = new Array(n).fill(0);
    table.started = new Array(n).fill(null);
    table.finished = new Array(n).fill(null);
    table.running = run.running;
    table.skew = run.now - pageNow;
    this._runs.set(run.id, table);
    this._rows(table, run.tasks, run.errors);
    this._prune();
  }

  /** Keep the newest KEPT_RUNS runs: a long session must not grow without bound. */
  private _prune(): void {
    if (this._runs.size <= KEPT_RUNS) {
      return;
    }
    const oldest = [...this._runs.values()].sort((a, b) => a.order - b.order);
    for (const table of oldest.slice(0, this._runs.size - KEPT_RUNS)) {
      this._runs.delete(table.id);
    }
  }

  private _rows(table: IRunTable, rows: Row[], errors: [number, string | null][]): void {
    for (const [i, state, attempt, started, finished] of rows) {
      if (i < 0 || i >= table.names.length) {
        continue;
      }
      table.state[i] = state;
      table.attempt[i] = attempt;
      table.started[i] = started;
      table.finished[i] = finished;
    }
    for (const [i, line] of errors) {
      if (line === null) {
        table.errors.delete(i);
      } else {
        table.errors.set(i, line);
      }
    }
  }

  private _skew(tasks: ITaskView[]): number {
    for (const t of tasks) {
      const table = t.run ? this._runs.get(t.run) : undefined;
      if (table && table.order >= 0) {
        return table.skew;
      }
    }
    return 0;
  }

  private _serverOrder(id: string): number {
    // Server runs rank below every kernel run, and among themselves by age:
    // a run id starts with its UTC time (YYYYmmdd-HHMMSS).
    return -1e15 + Number(id.replace(/\D/g, '').slice(0, 14) || 0);
  }

  private _runs = new Map<string, IRunTable>();
  private _declared = new Map<string, [string, string][]>();
  private _declaredAt = new Map<string, string>();
  private _order = 0;
}

function newTable(id: string, flow: string, order: number): IRunTable {
  return {
    id,
    flow,
    order,
    names: [],
    cells: [],
    attempts: [],
    state: [],
    attempt: [],
    started: [],
    finished: [],
    errors: new Map(),
    running: false,
    seq: 0,
    skew: 0
  };
}

function declaredMap(declared: [string, string, string][]): Map<string, [string, string][]> {
  const out = new Map<string, [string, string][]>();
  for (const [flow, task, cell] of declared) {
    if (!out.has(cell)) {
      out.set(cell, []);
    }
    out.get(cell)!.push([flow, task]);
  }
  return out;
}

/** One task's state in words, e.g. `running 3.2 s` or `retrying (attempt 2 of 3)`. */
export function describe(t: ITaskView, now: number): string {
  const of = t.attempts ? ` of ${t.attempts}` : '';
  switch (t.state) {
    case 'running': {
      const d = t.started !== null ? formatDuration(now - t.started) : '';
      const attempt = t.attempt > 1 ? ` (attempt ${t.attempt}${of})` : '';
      return `running ${d}${attempt}`.replace('  ', ' ').trim();
    }
    case 'retrying':
      return `retrying (attempt ${t.attempt}${of} failed)`;
    case 'succeeded': {
      const d =
        t.started !== null && t.finished !== null ? ` ${formatDuration(t.finished - t.started)}` : '';
      return `succeeded${d}`;
    }
    case 'failed':
      return t.error ? `failed: ${t.error}` : 'failed';
    case 'upstream_failed':
      return 'upstream failed';
    default:
      return t.state;
  }
}

/** Seconds as `850 ms`, `3.2 s`, `2 min 5 s`, `1 h 3 min`. */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds)) {
    return '';
  }
  const s = Math.max(0, seconds);
  if (s < 1) {
    return `${Math.round(s * 1000)} ms`;
  }
  if (s < 60) {
    return `${s.toFixed(1)} s`;
  }
  const m = Math.floor(s / 60);
  if (m < 60) {
    return `${m} min ${Math.round(s - 60 * m)} s`;
  }
  return `${Math.floor(m / 60)} h ${m % 60} min`;
}

/** The first non-blank line of `text`, at most 300 characters. */
export function firstLine(text: string): string {
  const line = text.split(/\r?\n/).find(l => l.trim()) ?? '';
  const trimmed = line.trim();
  return trimmed.length <= 300 ? trimmed : `${trimmed.slice(0, 299)}\u2026`;
}
