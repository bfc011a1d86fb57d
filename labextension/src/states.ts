/**
 * The task states and their colours, read from states.json, which
 * `python -m nbflow.core.states` writes from nbflow/core/states.py (a Python
 * test keeps the two equal): the front end never spells them out again.
 */
import vocabulary from './states.json';

/** Every task state, in the order the state machine lists them. */
export const STATES: readonly string[] = vocabulary.states;

/** The states a task ends in. */
export const TERMINAL: ReadonlySet<string> = new Set(vocabulary.terminal);

const COLORS: { [state: string]: string } = vocabulary.colors;

/** The colour of `state` (a declared task that has not run is white). */
export function stateColor(state: string): string {
  return COLORS[state] ?? '#ffffff';
}
