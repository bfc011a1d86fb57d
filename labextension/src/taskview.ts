/**
 * What a click on a badge shows: each task's state, error and logs, read from
 * the store through the server (so it works with no kernel too).
 */
import { Dialog, showDialog } from '@jupyterlab/apputils';
import { Widget } from '@lumino/widgets';

import { api, IWhere } from './api';
import { h } from './dom';
import { describe, ITaskView } from './model';
import { stateColor } from './states';

/** Show `tasks` (of the notebook at `notebook`) in a dialog. */
export async function showTasks(tasks: ITaskView[], where: IWhere): Promise<void> {
  const body = h('div', { class: 'nbflow-taskview' });
  const now = Date.now() / 1000;
  for (const t of tasks) {
    const logs = h('pre', { class: 'nbflow-log' }, t.run ? 'loading the logs\u2026' : '');
    body.append(
      h(
        'section',
        { class: 'nbflow-taskview-task', 'data-task': t.task },
        h(
          'div',
          { class: 'nbflow-taskview-head' },
          h('span', {
            class: 'nbflow-cell-badge-dot',
            style: `background:${stateColor(t.state)}`
          }),
          h('span', { class: 'nbflow-taskview-name' }, t.task),
          h('span', { class: 'nbflow-taskview-state' }, describe(t, now))
        ),
        t.run ? h('div', { class: 'nbflow-taskview-run' }, `flow ${t.flow}, run ${t.run}`) : null,
        t.error ? h('pre', { class: 'nbflow-taskview-error' }, t.error) : null,
        t.run ? logs : h('div', {}, 'declared; it has not run since')
      )
    );
    if (t.run) {
      void api.logs(where, t.run, t.task).then(
        answer => {
          const text = answer.logs
            .map(l => `--- attempt ${l.attempt} ---\n${l.stdout}${l.stderr}`)
            .join('\n');
          logs.textContent = text || '(nothing printed)';
        },
        err => {
          logs.textContent = `the logs could not be read: ${err.message}`;
        }
      );
    }
  }
  await showDialog({
    title: tasks.length === 1 ? `Task ${tasks[0].task}` : `${tasks.length} tasks`,
    body: new Widget({ node: body }),
    buttons: [Dialog.okButton({ label: 'Close' })]
  });
}
