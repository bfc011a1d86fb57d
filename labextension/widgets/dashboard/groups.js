// What the graph says about groups and pools: a group's rolled-up state, by the rule the
// kernel ships (core/rollup.py RULES, first match wins), and the pool slots a task holds
// beside each pool's use now (a running task holds its slots).

/** The rolled-up state of the tasks `members`. */
export function rollup(store, members) {
  const seen = new Set();
  for (const i of members) seen.add(store.state[i]);
  for (const [state, test, among] of store.graph.rollup ?? []) {
    const inside = among.filter((st) => seen.has(st)).length;
    if (test === "else" || (test === "any" && inside) || (test === "mixed" && inside && inside < seen.size)
      || (test === "all" && inside === seen.size)) return state;
  }
  return "pending";
}

/** Slots in use in each pool now: `{pool: n}`. */
export function poolUse(store) {
  const use = {};
  for (const [i, holds] of Object.entries(store.graph.resources ?? {})) {
    if (store.state[Number(i)] !== "running") continue;
    for (const [pool, n] of Object.entries(holds)) use[pool] = (use[pool] ?? 0) + n;
  }
  return use;
}

/** One line per pool task `i` holds: "pool db: 1 of 2 slots, 2 of 2 in use now"
 * (`prefix` before the pool's name). */
export function poolLines(store, i, prefix = "pool ") {
  const holds = (store.graph.resources ?? {})[i];
  if (!holds) return [];
  const use = poolUse(store);
  return Object.entries(holds).map(([pool, n]) => {
    const slots = (store.graph.pools ?? {})[pool];
    const of = slots === undefined ? "" : ` of ${slots}`;
    return `${prefix}${pool}: ${n}${of} slot${(slots ?? n) === 1 ? "" : "s"}, ${use[pool] ?? 0}${of} in use now`;
  });
}
