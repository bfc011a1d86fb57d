/**
 * The server extension's REST API (nbflow/server/handlers.py), read-only.
 */
import { URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';

import { IServerCells } from './model';

/** A run as the `runs` endpoint lists it. */
export interface IRunSummary {
  id: string;
  flow: string;
  state: string;
  created: number;
  finished: number | null;
  owner: string | null;
  host: string | null;
  pid: number | null;
  heartbeat: number | null;
  resumed_from: string | null;
  notebook: string | null;
  owner_alive: boolean | null;
  counts: { [state: string]: number };
}

/** A task row of one run. */
export interface ITaskRow {
  name: string;
  idx: number;
  level: number;
  deps: string[];
  kind: string;
  state: string;
  attempt: number;
  started: number | null;
  finished: number | null;
  error: string | null;
  cell_id: string | null;
}

/** One event of a run's log. */
export interface IEvent {
  seq: number;
  task: string;
  attempt: number;
  from_state: string | null;
  to_state: string;
  at: number;
  detail: { [key: string]: unknown } | null;
}

/** What one attempt printed. */
export interface ILog {
  task: string;
  attempt: number;
  stdout: string;
  stderr: string;
}

/** A failed request, with the server's message (it ends with the fix). */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly reason: string,
    message: string
  ) {
    super(message);
  }
}

/** Where a request's store is: beside `notebook`, or the file `store`. */
export interface IWhere {
  notebook?: string | null;
  store?: string | null;
}

/** GET `nbflow/api/<path>?<params>`; the parsed JSON, or an ApiError. */
export async function get<T>(
  path: string[],
  params: { [key: string]: string | null | undefined },
  settings: ServerConnection.ISettings = ServerConnection.makeSettings()
): Promise<T> {
  const query = Object.entries(params)
    .filter(([, v]) => v !== null && v !== undefined && v !== '')
    .map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v as string)}`)
    .join('&');
  const url =
    URLExt.join(settings.baseUrl, 'nbflow', 'api', ...path.map(encodeURIComponent)) +
    (query ? `?${query}` : '');
  let response: Response;
  try {
    response = await ServerConnection.makeRequest(url, {}, settings);
  } catch (err) {
    throw new ApiError(0, 'network', `the Jupyter server could not be reached (${err})`);
  }
  let body: any = null;
  try {
    body = await response.json();
  } catch {
    body = null;
  }
  if (!response.ok) {
    const message =
      (body && typeof body.message === 'string' && body.message) ||
      `the nbflow server extension answered ${response.status}; is it enabled? ` +
        '(jupyter server extension list)';
    throw new ApiError(response.status, (body && body.reason) || '', message);
  }
  return body as T;
}

export const api = {
  runs: (where: IWhere, all: boolean) =>
    get<{ store: string; runs: IRunSummary[] }>(['runs'], {
      ...where,
      all: all ? '1' : null
    }),
  run: (where: IWhere, id: string) =>
    get<{ run: IRunSummary & { tasks: ITaskRow[] } }>(['runs', id], { ...where }),
  events: (where: IWhere, id: string, since: number) =>
    get<{ events: IEvent[]; last: number }>(['runs', id, 'events'], {
      ...where,
      since: String(since)
    }),
  logs: (where: IWhere, id: string, task: string) =>
    get<{ logs: ILog[] }>(['runs', id, 'logs'], { ...where, task }),
  cells: (notebook: string) => get<IServerCells>(['cells'], { notebook })
};
