/**
 * Cell badges: on each cell that declared tasks, the latest state of its tasks.
 *
 * One `CellBadges` per notebook panel keeps a `CellStates` (model.ts) fed by
 * the kernel's channel (live) and by the server's store API (after a reload,
 * or with no kernel), and paints a badge row into each cell, keyed by the
 * cell's id. Painting is idempotent and cheap, so it runs again whenever a
 * message arrives, every second while a run is live (durations tick), and
 * when the notebook's cells change; a cell that windowing detached or
 * re-rendered gets its badge back on the next pass.
 */
import { Cell } from '@jupyterlab/cells';
import { NotebookPanel } from '@jupyterlab/notebook';

import { api } from './api';
import { KernelChannel } from './channel';
import { CellStates, IBadge, ITaskView, KernelMessage } from './model';
import { stateColor } from './states';

const ROW_CLASS = 'nbflow-badge-row';
const POLL_LIVE = 2000; // ms between store polls while a run in the store is live
const POLL_IDLE = 30000; // ... at most, once nothing changes
const GONE_DELAY = 300; // ms after a kernel went away (a restart sends several signals)

export class CellBadges {
  constructor(options: CellBadges.IOptions) {
    this._panel = options.panel;
    this._onOpen = options.onOpen;
    this._channel = new KernelChannel({
      sessionContext: this._panel.sessionContext,
      onMessage: msg => this._onKernel(msg),
      onKernelGone: () => this._pollSoon(GONE_DELAY)
    });
    const notebook = this._panel.content;
    notebook.model?.cells.changed.connect(this._schedule, this);
    notebook.modelChanged.connect(this._schedule, this);
    this._ticker = window.setInterval(() => {
      if (this._states.anyRunning || this._serverLive) {
        this._schedule();
      } else {
        // Cells that windowing attached since the last pass.
        this._paint();
      }
    }, 1000);
    void this._panel.context.ready.then(() => this._pollSoon(0));
  }

  /** The model (tests and the sidebar read it). */
  get states(): CellStates {
    return this._states;
  }

  dispose(): void {
    this._disposed = true;
    this._channel.dispose();
    window.clearInterval(this._ticker);
    window.clearTimeout(this._poll);
  }

  private _onKernel(msg: KernelMessage): void {
    const error = this._states.applyKernel(msg, Date.now() / 1000);
    if (error) {
      console.warn(`nbflow: ${error}`);
    }
    this._schedule();
  }

  /** Ask the store; again after a back-off that grows while nothing is live. */
  private _pollSoon(delay: number): void {
    window.clearTimeout(this._poll);
    this._poll = window.setTimeout(() => void this._pollStore(), delay);
  }

  private async _pollStore(): Promise<void> {
    if (this._disposed) {
      return;
    }
    const path = this._panel.context.path;
    try {
      const answer = await api.cells(path);
      this._states.applyServer(answer, Date.now() / 1000);
      this._serverLive = answer.runs.some(r => r.state === 'running' && r.owner_alive);
      this._failures = 0;
    } catch (err) {
      // A notebook that never ran a flow has no store yet: nothing to show.
      this._serverLive = false;
      this._failures += 1;
    }
    this._schedule();
    const live = this._serverLive && !this._states.anyRunning;
    const delay = live ? POLL_LIVE : Math.min(POLL_IDLE, POLL_LIVE * 2 ** this._idle++);
    if (live) {
      this._idle = 0;
    }
    // A hidden notebook is not polled until it is shown again.
    this._pollSoon(this._panel.isVisible ? delay : POLL_IDLE);
  }

  private _schedule(): void {
    if (this._frame) {
      return;
    }
    this._frame = requestAnimationFrame(() => {
      this._frame = 0;
      this._paint();
    });
  }

  private _paint(): void {
    if (this._disposed) {
      return;
    }
    const now = Date.now() / 1000;
    for (const cell of this._panel.content.widgets) {
      const badge = this._states.badge(cell.model.id, now);
      Private.paint(cell, badge, tasks => this._onOpen(tasks, this._panel));
    }
  }

  private _panel: NotebookPanel;
  private _onOpen: CellBadges.OpenHandler;
  private _states = new CellStates();
  private _channel: KernelChannel;
  private _ticker: number;
  private _poll = 0;
  private _frame = 0;
  private _idle = 0;
  private _failures = 0;
  private _serverLive = false;
  private _disposed = false;
}

export namespace CellBadges {
  /** Shows a cell's tasks (logs and errors) when its badge is clicked. */
  export type OpenHandler = (tasks: ITaskView[], panel: NotebookPanel) => void;

  export interface IOptions {
    /** The notebook whose cells get badges. */
    panel: NotebookPanel;
    /** What a click on a badge does. */
    onOpen: OpenHandler;
  }
}

namespace Private {
  /** Put `badge` on `cell` (or take the cell's badge away for null). */
  export function paint(
    cell: Cell,
    badge: IBadge | null,
    open: (tasks: ITaskView[]) => void
  ): void {
    let row = cell.node.querySelector(`:scope > .${ROW_CLASS}`) as HTMLElement | null;
    if (!badge) {
      row?.remove();
      return;
    }
    if (!row) {
      row = document.createElement('div');
      row.className = ROW_CLASS;
      const button = document.createElement('button');
      button.type = 'button';
      button.className = 'nbflow-cell-badge';
      const dot = document.createElement('span');
      dot.className = 'nbflow-cell-badge-dot';
      const label = document.createElement('span');
      label.className = 'nbflow-cell-badge-label';
      button.append(dot, label);
      row.append(button);
      const input = cell.node.querySelector(':scope > .jp-Cell-inputWrapper');
      if (input && input.nextSibling) {
        cell.node.insertBefore(row, input.nextSibling);
      } else {
        cell.node.append(row);
      }
    }
    const button = row.firstElementChild as HTMLButtonElement;
    // Task names, errors and states are user data: text only, never HTML.
    const label = button.querySelector('.nbflow-cell-badge-label') as HTMLElement;
    if (label.textContent !== badge.label) {
      label.textContent = badge.label;
    }
    const dot = button.querySelector('.nbflow-cell-badge-dot') as HTMLElement;
    dot.style.background = stateColor(badge.state);
    button.dataset.state = badge.state;
    button.dataset.tasks = String(badge.tasks.length);
    button.title = `${badge.title}\n(click for logs and errors)`;
    button.onclick = () => open(badge.tasks);
  }
}
