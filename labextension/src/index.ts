/**
 * nbflow's JupyterLab extension: live task states on the cells that declared
 * the tasks (badges.ts) and a runs sidebar (sidebar.ts). Each feature is its
 * own plugin; this file only composes them.
 */
import {
  ILabShell,
  JupyterFrontEnd,
  JupyterFrontEndPlugin
} from '@jupyterlab/application';
import { INotebookTracker, NotebookPanel } from '@jupyterlab/notebook';
import { LabIcon } from '@jupyterlab/ui-components';

import { CellBadges } from './badges';
import { RunsPanel } from './sidebar';
import { showTasks } from './taskview';

export namespace CommandIDs {
  /** Show the runs sidebar. */
  export const showRuns = 'nbflow:show-runs';
  /** Read the runs sidebar again now. */
  export const refreshRuns = 'nbflow:refresh-runs';
}

const icon = new LabIcon({
  name: 'nbflow:runs',
  svgstr:
    '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 24 24"><g class="jp-icon3" fill="#616161">' +
    '<circle cx="5" cy="6" r="3"/><circle cx="5" cy="18" r="3"/><circle cx="19" cy="12" r="3"/>' +
    '<rect x="7" y="5" width="10" height="2" transform="rotate(20 7 6)"/>' +
    '<rect x="7" y="17" width="10" height="2" transform="rotate(-20 7 18)"/></g></svg>'
});

/**
 * Cell badges on every notebook.
 *
 * @param app - the application
 * @param tracker - the open notebooks: each gets a `CellBadges`
 */
function activateBadges(app: JupyterFrontEnd, tracker: INotebookTracker): void {
  const open = (tasks: Parameters<typeof showTasks>[0], panel: NotebookPanel) =>
    void showTasks(tasks, { notebook: panel.context.path });
  tracker.widgetAdded.connect((_, panel) => {
    const badges = new CellBadges({ panel, onOpen: open });
    panel.disposed.connect(() => badges.dispose());
  });
}

/**
 * The runs sidebar, following the current notebook.
 *
 * @param app - the application (its shell holds the panel)
 * @param tracker - tells which notebook is current
 * @param labShell - the JupyterLab shell, absent in Notebook 7's notebook page
 */
function activateSidebar(
  app: JupyterFrontEnd,
  tracker: INotebookTracker,
  labShell: ILabShell | null
): void {
  const panel = new RunsPanel();
  panel.title.icon = icon;
  app.shell.add(panel, 'left', { rank: 600 });
  const follow = () => panel.follow(tracker.currentWidget?.context.path ?? null);
  tracker.currentChanged.connect(follow);
  labShell?.currentChanged.connect(follow);
  follow();
  app.commands.addCommand(CommandIDs.showRuns, {
    label: 'Show nbflow runs',
    execute: () => app.shell.activateById(panel.id)
  });
  app.commands.addCommand(CommandIDs.refreshRuns, {
    label: 'Refresh nbflow runs',
    execute: () => panel.refresh()
  });
}

const badges: JupyterFrontEndPlugin<void> = {
  id: 'nbflow:plugin',
  description: 'Live task states on the notebook cells that declared the tasks.',
  autoStart: true,
  requires: [INotebookTracker],
  activate: activateBadges
};

const sidebar: JupyterFrontEndPlugin<void> = {
  id: 'nbflow:sidebar',
  description: "A sidebar of nbflow runs: their tasks, events and logs.",
  autoStart: true,
  requires: [INotebookTracker],
  optional: [ILabShell],
  activate: activateSidebar
};

export default [badges, sidebar];
