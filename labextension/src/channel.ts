/**
 * The front-end side of the kernel's cell-status channel
 * (nbflow/notebook/cellstatus.py): one comm target, a protocol number checked
 * on open, messages handed to a callback.
 *
 * The kernel opens a comm at each run start (and when nbflow loads), so a page
 * hears about a run even while a blocking `%flow run` keeps the kernel busy;
 * the page opens one itself when it connects to a kernel, to get the whole
 * state first (a kernel without nbflow closes it, which is fine).
 */
import { ISessionContext } from '@jupyterlab/apputils';
import { Kernel, KernelMessage } from '@jupyterlab/services';

import { KernelMessage as ChannelMessage } from './model';

export const TARGET = 'nbflow.cells';
/** Must equal PROTOCOL in nbflow/notebook/cellstatus.py. */
export const PROTOCOL = 1;

export class KernelChannel {
  constructor(options: KernelChannel.IOptions) {
    this._session = options.sessionContext;
    this._onMessage = options.onMessage;
    this._onKernelGone = options.onKernelGone;
    this._session.kernelChanged.connect(this._onKernelChanged, this);
    this._session.statusChanged.connect(this._onStatus, this);
    this._connect(this._session.session?.kernel ?? null);
  }

  get isDisposed(): boolean {
    return this._disposed;
  }

  dispose(): void {
    if (this._disposed) {
      return;
    }
    this._disposed = true;
    this._session.kernelChanged.disconnect(this._onKernelChanged, this);
    this._session.statusChanged.disconnect(this._onStatus, this);
    this._release();
  }

  /** Ask the kernel for the whole state again. */
  refresh(): void {
    if (this._comm && !this._comm.isDisposed) {
      this._comm.send({ type: 'refresh' });
    }
  }

  private _onKernelChanged(
    _: ISessionContext,
    change: { newValue: Kernel.IKernelConnection | null }
  ): void {
    this._release();
    this._onKernelGone();
    this._connect(change.newValue);
  }

  private _onStatus(_: ISessionContext, status: Kernel.Status): void {
    if (status === 'restarting' || status === 'dead' || status === 'autorestarting') {
      this._onKernelGone();
    }
  }

  private _connect(kernel: Kernel.IKernelConnection | null): void {
    if (!kernel || this._disposed) {
      return;
    }
    this._kernel = kernel;
    kernel.registerCommTarget(TARGET, this._onOpen);
    try {
      const comm = kernel.createComm(TARGET);
      this._adopt(comm);
      comm.open({ protocol: PROTOCOL });
    } catch (err) {
      console.warn('nbflow: could not open the cell-status channel', err);
    }
  }

  private _onOpen = (comm: Kernel.IComm, msg: KernelMessage.ICommOpenMsg): void => {
    this._adopt(comm);
    this._receive(msg.content.data as unknown as ChannelMessage & { protocol?: number });
  };

  private _adopt(comm: Kernel.IComm): void {
    const old = this._comm;
    this._comm = comm;
    comm.onMsg = msg => this._receive(msg.content.data as unknown as ChannelMessage);
    comm.onClose = () => {
      if (this._comm === comm) {
        this._comm = null;
      }
    };
    if (old && old !== comm && !old.isDisposed) {
      old.dispose();
    }
  }

  private _receive(data: ChannelMessage & { protocol?: number }): void {
    if (!data || typeof data !== 'object') {
      return;
    }
    if (data.type === 'state' && data.protocol !== PROTOCOL) {
      console.warn(
        `nbflow: the kernel's nbflow speaks protocol ${data.protocol}, this page ${PROTOCOL}: ` +
          'install the same nbflow version in the kernel and in JupyterLab, then reload'
      );
      return;
    }
    this._onMessage(data);
  }

  private _release(): void {
    if (this._kernel && !this._kernel.isDisposed) {
      this._kernel.removeCommTarget(TARGET, this._onOpen);
    }
    if (this._comm && !this._comm.isDisposed) {
      this._comm.dispose();
    }
    this._comm = null;
    this._kernel = null;
  }

  private _session: ISessionContext;
  private _onMessage: (msg: ChannelMessage) => void;
  private _onKernelGone: () => void;
  private _kernel: Kernel.IKernelConnection | null = null;
  private _comm: Kernel.IComm | null = null;
  private _disposed = false;
}

export namespace KernelChannel {
  export interface IOptions {
    /** The notebook's session: its kernel may change or restart. */
    sessionContext: ISessionContext;
    /** Called with each message of the channel. */
    onMessage: (msg: ChannelMessage) => void;
    /** Called when the kernel goes away (restart, shutdown, change). */
    onKernelGone: () => void;
  }
}
