// The client-side state of the cell badges (src/model.ts), with node's test runner.
// `jlpm test` bundles model.ts to build/test/model.mjs first.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { CellStates, describe, firstLine, formatDuration } from '../build/test/model.mjs';

const T0 = 1_700_000_000;

function kernelRun(overrides = {}) {
  return {
    id: '20261203-170000-aaaaaa',
    flow: 'etl',
    names: ['load', 'clean', 'report'],
    cells: ['c1', 'c2', 'c2'],
    attempts: [1, 3, 1],
    running: true,
    outcome: null,
    now: T0,
    tasks: [
      [0, 'pending', 0, null, null],
      [1, 'pending', 0, null, null],
      [2, 'pending', 0, null, null]
    ],
    errors: [],
    ...overrides
  };
}

test('a state message paints declared cells before any run', () => {
  const s = new CellStates();
  s.applyKernel(
    { type: 'state', protocol: 1, notebook: null, declared: [['etl', 'load', 'c1']], runs: [] },
    T0
  );
  assert.deepEqual(s.cells(), ['c1']);
  assert.equal(s.badge('c1', T0).label, 'declared');
  assert.equal(s.badge('nope', T0), null);
});

test('diffs move one cell through its states; durations tick with the page clock', () => {
  const s = new CellStates();
  s.applyKernel({ type: 'run', ...kernelRun() }, T0);
  assert.equal(s.badge('c1', T0).state, 'pending');
  s.applyKernel(
    { type: 'diff', run: kernelRun().id, seq: 1, now: T0 + 1, running: true, outcome: null,
      tasks: [[0, 'running', 1, T0, null]], errors: [] },
    T0 + 1
  );
  assert.equal(s.badge('c1', T0 + 3.5).label, 'running 3.5 s');
  assert.ok(s.anyRunning);
  s.applyKernel(
    { type: 'diff', run: kernelRun().id, seq: 2, now: T0 + 5, running: false, outcome: 'failed',
      tasks: [[0, 'failed', 1, T0, T0 + 4]], errors: [[0, 'ValueError: boom']] },
    T0 + 5
  );
  assert.equal(s.badge('c1', T0 + 9).label, 'failed: ValueError: boom');
  assert.ok(!s.anyRunning);
});

test('a retrying task says which attempt of how many', () => {
  const s = new CellStates();
  s.applyKernel({ type: 'run', ...kernelRun({ cells: ['c1', 'c2', 'c3'] }) }, T0);
  s.applyKernel(
    { type: 'diff', run: kernelRun().id, seq: 1, now: T0, running: true, outcome: null,
      tasks: [[1, 'retrying', 1, T0, T0 + 1]], errors: [[1, 'OSError: flaky']] },
    T0
  );
  assert.equal(s.badge('c2', T0).label, 'retrying (attempt 1 of 3 failed)');
  s.applyKernel(
    { type: 'diff', run: kernelRun().id, seq: 2, now: T0, running: true, outcome: null,
      tasks: [[1, 'running', 2, T0 + 2, null]], errors: [[1, null]] },
    T0
  );
  assert.equal(s.badge('c2', T0 + 3).label, 'running 1.0 s (attempt 2 of 3)');
});

test('a cell with several tasks shows counts, the most pressing state and a hover list', () => {
  const s = new CellStates();
  s.applyKernel(
    { type: 'run', ...kernelRun({ tasks: [[0, 'succeeded', 1, T0, T0 + 1],
      [1, 'running', 1, T0, null], [2, 'succeeded', 1, T0, T0 + 0.25]] }) },
    T0
  );
  const b = s.badge('c2', T0 + 2);
  assert.equal(b.state, 'running');
  assert.equal(b.label, '2 tasks: 1 running, 1 succeeded');
  assert.equal(b.title, 'clean: running 2.0 s\nreport: succeeded 250 ms');
});

test('the kernel wins over the store for the same run; a newer run wins over an older', () => {
  const s = new CellStates();
  const old = '20261203-160000-bbbbbb';
  s.applyServer({
    runs: [{ id: old, flow: 'etl', state: 'failed', owner_alive: null }],
    cells: { c1: [{ name: 'load', state: 'failed', attempt: 1, started: 1, finished: 2,
                    error: 'KeyError: x\n  more', run: old }] }
  }, T0);
  assert.equal(s.badge('c1', T0).label, 'failed: KeyError: x');
  s.applyKernel({ type: 'run', ...kernelRun() }, T0);   // a new run in the kernel
  assert.equal(s.badge('c1', T0).state, 'pending');
  // The store catching up on the kernel's run does not undo live states.
  s.applyKernel(
    { type: 'diff', run: kernelRun().id, seq: 1, now: T0, running: true, outcome: null,
      tasks: [[0, 'running', 1, T0, null]], errors: [] },
    T0
  );
  s.applyServer({
    runs: [{ id: kernelRun().id, flow: 'etl', state: 'running', owner_alive: true }],
    cells: { c1: [{ name: 'load', state: 'pending', attempt: 0, started: null, finished: null,
                    error: null, run: kernelRun().id }] }
  }, T0);
  assert.equal(s.badge('c1', T0).state, 'running');
});

test('after a reload the store alone paints the latest run of each flow', () => {
  const s = new CellStates();
  const older = '20261203-150000-cccccc';
  const newer = '20261203-151500-dddddd';
  for (const id of [newer, older]) {
    s.applyServer({
      runs: [{ id, flow: 'etl', state: 'succeeded', owner_alive: null }],
      cells: { c1: [{ name: 'load', state: id === newer ? 'succeeded' : 'failed', attempt: 1,
                      started: 0, finished: 1, error: null, run: id }] }
    }, T0);
  }
  assert.equal(s.badge('c1', T0).label, 'succeeded 1.0 s');
});

test('a task declared again in another cell leaves its old cell', () => {
  const s = new CellStates();
  s.applyKernel({ type: 'run', ...kernelRun() }, T0);
  s.applyKernel({ type: 'declared', declared: [['etl', 'load', 'c9'], ['etl', 'clean', 'c2'],
    ['etl', 'report', 'c2']] }, T0);
  assert.equal(s.badge('c9', T0).state, 'declared');   // the new declaration has not run
  assert.equal(s.badge('c1', T0), null);
  assert.equal(s.badge('c2', T0).label, '2 tasks: 2 pending');
});

test('hostile task names and errors stay plain strings', () => {
  const s = new CellStates();
  const name = '<img src=x onerror=alert(1)>';
  s.applyKernel({ type: 'run', ...kernelRun({ names: [name], cells: ['c1'], attempts: [1],
    tasks: [[0, 'failed', 1, T0, T0 + 1]], errors: [[0, '<script>x</script>']] }) }, T0);
  const b = s.badge('c1', T0);
  assert.equal(b.label, 'failed: <script>x</script>');
  assert.equal(b.tasks[0].task, name);
});

test('rows for tasks the run does not have are ignored', () => {
  const s = new CellStates();
  s.applyKernel({ type: 'run', ...kernelRun() }, T0);
  s.applyKernel({ type: 'diff', run: kernelRun().id, seq: 1, now: T0, running: true,
    outcome: null, tasks: [[99, 'running', 1, T0, null], [-1, 'failed', 1, 0, 0]], errors: [] }, T0);
  s.applyKernel({ type: 'diff', run: 'unknown', seq: 1, now: T0, running: true, outcome: null,
    tasks: [[0, 'failed', 1, 0, 0]], errors: [] }, T0);
  assert.equal(s.badge('c1', T0).state, 'pending');
});

test('an error message from the kernel is handed back', () => {
  assert.equal(new CellStates().applyKernel({ type: 'error', message: 'speaks protocol 2' }, T0),
    'speaks protocol 2');
});

test('formatting', () => {
  assert.equal(formatDuration(0.8504), '850 ms');
  assert.equal(formatDuration(3.21), '3.2 s');
  assert.equal(formatDuration(125), '2 min 5 s');
  assert.equal(formatDuration(3 * 3600 + 120), '3 h 2 min');
  assert.equal(formatDuration(-1), '0 ms');
  assert.equal(formatDuration(NaN), '');
  assert.equal(firstLine('\n\n  boom  \nmore'), 'boom');
  assert.equal(firstLine('x'.repeat(400)).length, 300);
  assert.equal(describe({ state: 'upstream_failed', attempt: 0, attempts: 1, started: null,
    finished: null, error: null }, 0), 'upstream failed');
});

test('a long session keeps only the newest runs', () => {
  const s = new CellStates();
  for (let k = 0; k < 40; k++) {
    s.applyKernel({ type: 'run', ...kernelRun({ id: `run-${k}`, cells: [`c${k}`, null, null] }) }, T0);
  }
  assert.equal(s.badge('c0', T0), null);          // dropped with its run
  assert.equal(s.badge('c39', T0).state, 'pending');
  assert.equal(s.cells().length, 16);
});
