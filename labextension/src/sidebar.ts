/**
 * The runs sidebar: recent runs of the current notebook (or all), and one run's
 * tasks, events and logs, read from the store through the server extension.
 *
 * It refreshes every POLL_LIVE ms while a run it lists is live, backs off to
 * POLL_IDLE when nothing is, and does not poll while hidden.
 */
import { Widget } from '@lumino/widgets';

import { api, ApiError, IRunSummary, ITaskRow, IWhere } from './api';
import { clock, h } from './dom';
import { formatDuration } from './model';
import { stateColor } from './states';

const POLL_LIVE = 2000;
const POLL_IDLE = 30000;
const EVENTS_SHOWN = 300;

export class RunsPanel extends Widget {
  constructor() {
    super();
    this.id = 'nbflow-runs';
    this.addClass('nbflow-runs');
    this.title.caption = 'nbflow runs';
    this._all.type = 'checkbox';
    this._all.onchange = () => this.refresh();
    this.node.append(
      h(
        'div',
        { class: 'nbflow-runs-toolbar' },
        h('span', { class: 'nbflow-runs-title' }, 'nbflow runs'),
        h('label', {}, this._all, ' all notebooks'),
        this._refreshButton
      ),
      this._status,
      this._body
    );
    this._refreshButton.type = 'button';
    this._refreshButton.textContent = 'Refresh';
    this._refreshButton.onclick = () => this.refresh();
  }

  /** Follow the notebook at `path` (an API path), or none. */
  follow(path: string | null): void {
    if (path === this._notebook) {
      return;
    }
    this._notebook = path;
    this._open = null;
    this.refresh();
  }

  /** Read again now (and restart the back-off). */
  refresh(): void {
    this._idle = 0;
    void this._load();
  }

  /** Show run `id`'s tasks, events and logs. */
  openRun(id: string): void {
    this._open = id;
    this._since = -1;
    this._events = [];
    this.refresh();
  }

  dispose(): void {
    window.clearTimeout(this._timer);
    super.dispose();
  }

  protected onAfterShow(): void {
    this.refresh();
  }

  private get _where(): IWhere {
    return { notebook: this._notebook };
  }

  private async _load(): Promise<void> {
    window.clearTimeout(this._timer);
    let live = false;
    try {
      if (this._open) {
        live = await this._showRun(this._open);
      } else {
        live = await this._showRuns();
      }
      this._status.textContent = '';
    } catch (err) {
      const e = err as ApiError;
      this._status.textContent = e.message;
      this._status.dataset.reason = e.reason ?? '';
      if (!this._open) {
        this._body.replaceChildren();
      }
    }
    const delay = live ? POLL_LIVE : Math.min(POLL_IDLE, POLL_LIVE * 2 ** this._idle++);
    if (live) {
      this._idle = 0;
    }
    this._timer = window.setTimeout(() => {
      if (this.isVisible) {
        void this._load();
      }
    }, delay);
  }

  private async _showRuns(): Promise<boolean> {
    const answer = await api.runs(this._where, this._all.checked || !this._notebook);
    const rows = answer.runs.map(run =>
      h(
        'tr',
        { class: 'nbflow-runs-row', 'data-run': run.id, tabindex: '0' },
        h('td', {}, run.flow),
        h('td', {}, stateChip(shownState(run))),
        h('td', {}, clock(run.created)),
        h('td', {}, duration(run)),
        h('td', { class: 'nbflow-runs-counts' }, counts(run)),
        h('td', {}, owner(run))
      )
    );
    rows.forEach((row, i) => {
      const id = answer.runs[i].id;
      row.onclick = () => this.openRun(id);
      row.onkeydown = ev => {
        if (ev.key === 'Enter') {
          this.openRun(id);
        }
      };
    });
    this._body.replaceChildren(
      h('div', { class: 'nbflow-runs-store' }, `store: ${answer.store}`),
      answer.runs.length
        ? h(
            'table',
            { class: 'nbflow-runs-table' },
            h(
              'thead',
              {},
              h(
                'tr',
                {},
                ...['flow', 'state', 'created', 'duration', 'tasks', 'owner'].map(t =>
                  h('th', {}, t)
                )
              )
            ),
            h('tbody', {}, ...rows)
          )
        : h('div', { class: 'nbflow-runs-empty' }, 'no runs yet')
    );
    return answer.runs.some(r => r.state === 'running' && r.owner_alive);
  }

  private async _showRun(id: string): Promise<boolean> {
    const { run } = await api.run(this._where, id);
    const fresh = await api.events(this._where, id, this._since);
    this._since = fresh.last;
    this._events = [...this._events, ...fresh.events].slice(-EVENTS_SHOWN);
    const back = h('button', { type: 'button', class: 'nbflow-runs-back' }, '\u2039 All runs');
    back.onclick = () => {
      this._open = null;
      this.refresh();
    };
    const logs = h('pre', { class: 'nbflow-log nbflow-runs-logs' }, 'click a task to see its logs');
    const taskRows = run.tasks.map(t => {
      const row = h(
        'tr',
        { class: 'nbflow-runs-task', 'data-task': t.name, tabindex: '0' },
        h(
          'td',
          {},
          t.name,
          t.error ? h('div', { class: 'nbflow-runs-error' }, firstLineOf(t.error)) : null
        ),
        h('td', {}, stateChip(t.state)),
        h('td', {}, t.attempt ? String(t.attempt) : ''),
        h('td', {}, taskDuration(t))
      );
      row.onclick = () => {
        logs.textContent = `loading the logs of ${t.name}\u2026`;
        api.logs(this._where, id, t.name).then(
          answer => {
            logs.textContent =
              answer.logs
                .map(l => `--- ${t.name}, attempt ${l.attempt} ---\n${l.stdout}${l.stderr}`)
                .join('\n') || `${t.name} printed nothing`;
          },
          err => {
            logs.textContent = err.message;
          }
        );
      };
      return row;
    });
    const code = recoveryCode(run);
    const parts: (HTMLElement | null)[] = [
      back,
      h(
        'div',
        { class: 'nbflow-runs-head' },
        h('span', { class: 'nbflow-runs-name' }, `${run.flow} \u00b7 run ${run.id}`),
        stateChip(shownState(run)),
        h('span', {}, ` ${duration(run)} \u00b7 ${owner(run)}`)
      ),
      code
        ? h(
            'div',
            { class: 'nbflow-runs-recover' },
            h('div', {}, 'To run it again, paste this into a cell of its notebook:'),
            h('pre', { class: 'nbflow-runs-code' }, code)
          )
        : null,
      h('h4', {}, 'Tasks'),
      h(
        'table',
        { class: 'nbflow-runs-table' },
        h(
          'thead',
          {},
          h('tr', {}, ...['task', 'state', 'attempt', 'duration'].map(t => h('th', {}, t)))
        ),
        h('tbody', {}, ...taskRows)
      ),
      h('h4', {}, 'Logs'),
      logs,
      h('h4', {}, 'Events'),
      h(
        'ol',
        { class: 'nbflow-runs-events' },
        ...this._events.map(e =>
          h(
            'li',
            { 'data-seq': String(e.seq) },
            `${clock(e.at)} ${e.task} #${e.attempt}: ${e.from_state ?? ''} \u2192 ${e.to_state}`
          )
        )
      )
    ];
    this._body.replaceChildren(...parts.filter((p): p is HTMLElement => p !== null));
    return run.state === 'running' && !!run.owner_alive;
  }

  private _notebook: string | null = null;
  private _open: string | null = null;
  private _since = -1;
  private _events: { seq: number; task: string; attempt: number; from_state: string | null;
    to_state: string; at: number }[] = [];
  private _timer = 0;
  private _idle = 0;
  private _all = document.createElement('input');
  private _refreshButton = document.createElement('button');
  private _status = h('div', { class: 'nbflow-runs-status' });
  private _body = h('div', { class: 'nbflow-runs-body' });
}

/** `crashed` for a run whose kernel stopped heartbeating; else its state. */
export function shownState(run: IRunSummary): string {
  return run.state === 'running' && run.owner_alive === false ? 'crashed' : run.state;
}

/** The code that resumes a crashed run or requeues a failed one's dead letters. */
export function recoveryCode(run: IRunSummary): string | null {
  const state = shownState(run);
  if (state === 'crashed') {
    return `%flow run --resume ${run.id}\n# or, in Python: flow.run(resume=${JSON.stringify(run.id)})`;
  }
  if (state === 'failed') {
    return (
      `%flow dlq requeue ${run.id}\n` +
      `# or, in Python: flow.requeue(${JSON.stringify(run.id)})`
    );
  }
  return null;
}

function stateChip(state: string): HTMLElement {
  return h(
    'span',
    { class: 'nbflow-runs-state', 'data-state': state, style: `--nbflow-color:${stateColor(state)}` },
    state.replace('_', ' ')
  );
}

function duration(run: IRunSummary): string {
  const end = run.finished ?? (run.state === 'running' ? Date.now() / 1000 : null);
  return end === null ? '' : formatDuration(end - run.created);
}

function taskDuration(t: ITaskRow): string {
  if (t.started === null) {
    return '';
  }
  const end = t.finished ?? (t.state === 'running' ? Date.now() / 1000 : null);
  return end === null ? '' : formatDuration(end - t.started);
}

function counts(run: IRunSummary): string {
  return Object.entries(run.counts)
    .map(([s, n]) => `${n} ${s.replace('_', ' ')}`)
    .join(', ');
}

function owner(run: IRunSummary): string {
  const who = run.host ? `${run.host} pid ${run.pid ?? '?'}` : 'a kernel';
  if (run.owner_alive === true) {
    return `live in ${who}`;
  }
  if (run.owner_alive === false) {
    return `${who} is gone`;
  }
  return 'ended';
}

function firstLineOf(text: string): string {
  return text.split('\n').find(l => l.trim()) ?? '';
}
