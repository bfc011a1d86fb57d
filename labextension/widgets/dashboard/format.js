// Number and time formatting shared by the views.
import { poolLines } from "./groups.js";

export function duration(seconds) {
  if (seconds === null || seconds === undefined || !Number.isFinite(seconds)) return "";
  if (seconds < 1) return `${Math.round(seconds * 1000)} ms`;
  if (seconds < 60) return `${seconds.toFixed(seconds < 10 ? 2 : 1)} s`;
  const m = Math.floor(seconds / 60);
  if (m < 60) return `${m} min ${Math.round(seconds - 60 * m)} s`;
  return `${Math.floor(m / 60)} h ${m % 60} min`;
}

/** `t` on a simulation's clock counted in `unit` (gantt.py's time_text): "125ms", "4 min",
 * "12" (plain numbers). */
export function amount(t, unit) {
  const n = Number(t.toFixed(3));
  return unit.length <= 2 ? `${n}${unit}` : `${n} ${unit}`;
}

export function clock(unixSeconds) {
  if (unixSeconds === null || unixSeconds === undefined) return "";
  return new Date(unixSeconds * 1000).toLocaleTimeString([], { hour12: false });
}

export function count(n, noun) {
  return `${n.toLocaleString()} ${noun}${n === 1 ? "" : "s"}`;
}

/** Text for the hover card of a task: several short lines. */
export function taskLines(store, i) {
  const lines = [`state: ${store.state[i]}`, `level: ${store.graph.levels[i]}`];
  if (store.attempt[i]) lines.push(`attempt: ${store.attempt[i]}`);
  if (store.restored.has(i)) lines.push("restored (did not run again)");
  const d = store.duration(i);
  if (d !== null) lines.push(`duration: ${store.span(d)}${store.state[i] === "running" ? " so far" : ""}`);
  const error = store.errors.get(i);
  lines.push(...poolLines(store, i));
  if (error) lines.push(`error: ${error[0]}`);
  return lines;
}
