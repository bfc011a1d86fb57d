// The status table: one row per task, sortable, filterable by state and name, paged.
import { h, put } from "./dom.js";

const PAGE = 100;
const COLUMNS = [
  ["index", "#"], ["name", "task"], ["state", "state"], ["level", "level"],
  ["attempt", "attempt"], ["started", "start"], ["duration", "duration"], ["error", "error"],
];

export function tableView(store, signal) {
  const filter = h("select", { class: "nbflow-filter", "aria-label": "show tasks in state" });
  const search = h("input", { class: "nbflow-search", type: "search", placeholder: "filter by name" });
  const pager = h("span", { class: "nbflow-pager" });
  const prev = h("button", { type: "button", onclick: () => turn(-1) }, "‹");
  const next = h("button", { type: "button", onclick: () => turn(1) }, "›");
  const head = h("tr", {});
  const body = h("tbody", {});
  const el = h("div", { class: "nbflow-table" },
    h("div", { class: "nbflow-toolbar" }, filter, search, prev, pager, next),
    h("div", { class: "nbflow-table-scroll" }, h("table", {}, h("thead", {}, head), body)));

  filter.addEventListener("change", () => {
    store.ui.filter = filter.value;
    store.ui.page = 0;
    store.emit({ ui: "filter" });
  }, { signal });
  search.addEventListener("input", () => {
    store.ui.search = search.value;
    store.ui.page = 0;
    store.emit({ ui: "search" });  // the graph marks the matches too
  }, { signal });
  search.value = store.ui.search;

  function turn(delta) {
    store.ui.page = Math.max(0, store.ui.page + delta);
    schedule();
  }

  function value(key, i) {
    switch (key) {
      case "index": return i;
      case "name": return store.graph.names[i];
      case "state": return store.states.indexOf(store.state[i]);
      case "level": return store.graph.levels[i];
      case "attempt": return store.attempt[i];
      case "started": return store.started[i] ?? Infinity;
      case "duration": return store.duration(i) ?? -1;
      case "error": return store.errors.get(i)?.[0] ?? "";
      default: return 0;
    }
  }

  function rows() {
    const { filter: state, search: text, sort: [key, dir] } = store.ui;
    const needle = text.trim().toLowerCase();
    const names = store.graph.names;
    const out = [];
    for (let i = 0; i < store.n; i++) {
      if (state && store.state[i] !== state) continue;
      if (needle && !names[i].toLowerCase().includes(needle)) continue;
      out.push(i);
    }
    if (key !== "index" || dir !== 1) {
      out.sort((a, b) => {
        const va = value(key, a), vb = value(key, b);
        return (va < vb ? -1 : va > vb ? 1 : a - b) * dir;
      });
    }
    return out;
  }

  function update() {
    const counts = store.counts();
    put(filter, h("option", { value: "" }, `all states (${store.n.toLocaleString()})`),
      ...store.states.filter((st) => counts[st] || st === store.ui.filter).map((st) =>
        h("option", { value: st, selected: st === store.ui.filter }, `${st} (${counts[st].toLocaleString()})`)));
    filter.value = store.ui.filter;
    const [key, dir] = store.ui.sort;
    put(head, ...COLUMNS.map(([k, label]) => h("th", {
      "data-key": k,
      "aria-sort": k === key ? (dir > 0 ? "ascending" : "descending") : "none",
    }, h("button", {
      type: "button",
      class: "nbflow-sort",
      title: `sort by ${label === "#" ? "declaration order" : label}`,
      onclick: () => {
        store.ui.sort = [k, k === key ? -dir : 1];
        schedule();
      },
    }, label + (k === key ? (dir > 0 ? " ▲" : " ▼") : "")))));
    const all = rows();
    const pages = Math.max(1, Math.ceil(all.length / PAGE));
    store.ui.page = Math.min(store.ui.page, pages - 1);
    const first = store.ui.page * PAGE;
    const shown = all.slice(first, first + PAGE);
    pager.textContent = all.length
      ? `${(first + 1).toLocaleString()}–${(first + shown.length).toLocaleString()} of ${all.length.toLocaleString()}`
      : "no tasks";
    prev.disabled = store.ui.page === 0;
    next.disabled = store.ui.page >= pages - 1;
    put(body, ...shown.map((i) => {
      const st = store.state[i];
      return h("tr", {
        "data-task": i,
        class: store.ui.selected === i ? "nbflow-selected" : "",
        tabindex: "0",
        onclick: () => store.select(i, "table"),
        onkeydown: (event) => {
          if (event.key === "Enter" || event.key === " ") { event.preventDefault(); store.select(i); }
        },
      },
      h("td", {}, String(i)),
      h("td", { class: "nbflow-name" }, store.graph.names[i]),
      h("td", {}, h("span", { class: "nbflow-badge", style: store.paint(st) }, st)),
      h("td", {}, String(store.graph.levels[i])),
      h("td", {}, store.restored.has(i) ? "restored" : store.attempt[i] ? String(store.attempt[i]) : ""),
      h("td", {}, store.time(store.started[i])),
      h("td", {}, store.span(store.duration(i))),
      h("td", { class: "nbflow-error-cell" }, store.errors.get(i)?.[0] ?? ""));
    }));
  }

  let queued = false;
  function schedule() {
    if (queued) return;
    queued = true;
    requestAnimationFrame(() => { queued = false; if (!signal.aborted) update(); });
  }
  const unsubscribe = store.subscribe((change) => { if (!change.view) schedule(); });
  // Running tasks' durations grow between messages.
  const ticker = setInterval(() => { if (store.live) schedule(); }, 1000);
  signal.addEventListener("abort", () => { unsubscribe(); clearInterval(ticker); });
  update();
  return el;
}
