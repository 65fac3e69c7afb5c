// The trial table: rows kept by number, filtered, sorted and shown a page at a time, so a
// study of 10,000 trials never builds more than PAGE_SIZE rows of DOM.

import { paths } from "./api.js";
import { el, fill } from "./dom.js";
import { fmtDuration, fmtNumber, fmtParam } from "./format.js";

export const PAGE_SIZE = 100;
export const STATE_FILTERS = ["complete", "pruned", "fail", "running", "waiting", "diverged", "not_learning"];

/**
 * The text the filter searches, as the server's row_matches builds it: number, state,
 * outcome, worker, reason and name=value per param, in lower case.
 */
export function haystack(row) {
  const parts = [String(row.number), row.state, row.outcome, row.worker, row.reason ?? ""];
  for (const [name, value] of Object.entries(row.params)) parts.push(`${name}=${String(value)}`);
  return parts.join(" ").toLowerCase();
}

function durationOf(row, now) {
  if (row.duration_seconds !== null) return row.duration_seconds;
  if (row.state === "running" && row.start !== null) return Math.max(0, now - row.start);
  return null;
}

/** The columns for a study: [{key, label, get(row), show(row), numeric}]. */
function columns(directions, params) {
  const now = Date.now() / 1000;
  const cols = [
    { key: "number", label: "#", get: (r) => r.number, numeric: true },
    { key: "outcome", label: "state", get: (r) => r.outcome },
  ];
  directions.forEach((direction, k) => {
    const label = directions.length === 1 ? `value (${direction})` : `value ${k} (${direction})`;
    cols.push({ key: `value:${k}`, label, get: (r) => (r.values ? r.values[k] ?? null : null), numeric: true });
  });
  for (const name of params) {
    cols.push({ key: `param:${name}`, label: name, get: (r) => (name in r.params ? r.params[name] : null), param: true });
  }
  cols.push(
    { key: "last_step", label: "last step", get: (r) => r.last_step, numeric: true },
    { key: "last_value", label: "last value", get: (r) => r.last_value, numeric: true },
    { key: "duration", label: "duration", get: (r) => durationOf(r, now), numeric: true, duration: true },
    { key: "worker", label: "worker", get: (r) => r.worker },
    { key: "reason", label: "reason", get: (r) => r.reason },
  );
  return cols;
}

// Missing values sort last in both directions; numbers before text before booleans.
function rank(v) {
  if (v === null || v === undefined) return 3;
  if (typeof v === "number") return 0;
  if (typeof v === "string") return 1;
  return 2;
}

function compare(a, b) {
  const ra = rank(a);
  const rb = rank(b);
  if (ra !== rb) return ra - rb;
  if (ra === 0) return a - b;
  if (ra === 1) return a.localeCompare(b);
  if (ra === 2) return Number(a) - Number(b);
  return 0;
}

export class TrialTable {
  /** A table of the trials of study `name` inside `container`. */
  constructor(container, name) {
    this.name = name;
    this.rows = new Map();
    this.directions = ["minimize"];
    this.params = [];
    this.sortKey = "number";
    this.sortDescending = true;
    this.page = 0;
    this.view = [];
    this.filterText = "";
    this.stateFilter = "";
    this.build(container);
  }

  build(container) {
    this.filterInput = el("input", { id: "filter", type: "search", placeholder: "filter: text in params, state, reason…", "aria-label": "filter trials" });
    this.filterInput.addEventListener("input", () => {
      this.filterText = this.filterInput.value;
      this.page = 0;
      this.refresh();
    });
    this.stateSelect = el("select", { id: "state-filter", "aria-label": "state" },
      el("option", { value: "", text: "all states" }),
      ...STATE_FILTERS.map((s) => el("option", { value: s, text: s })));
    this.stateSelect.addEventListener("change", () => {
      this.stateFilter = this.stateSelect.value;
      this.page = 0;
      this.refresh();
    });
    this.csvLink = el("a", { id: "csv-export", class: "button", href: paths.csv(this.name), download: "", text: "Export CSV" });
    this.info = el("span", { id: "table-info", class: "muted" });
    this.prev = el("button", { id: "page-prev", type: "button", text: "‹ newer" });
    this.next = el("button", { id: "page-next", type: "button", text: "older ›" });
    this.pageInfo = el("span", { id: "page-info" });
    this.prev.addEventListener("click", () => this.turn(-1));
    this.next.addEventListener("click", () => this.turn(1));
    this.thead = el("thead");
    this.tbody = el("tbody");
    container.append(
      el("div", { class: "controls" }, this.filterInput, this.stateSelect, this.csvLink, this.info),
      el("div", { class: "table-wrap" }, el("table", { id: "trials" }, this.thead, this.tbody)),
      el("div", { class: "pager" }, this.prev, this.pageInfo, this.next),
    );
  }

  /** Merge rows from the API (by number); reset first when the server says so. */
  merge(answer) {
    if (answer.reset) this.rows.clear();
    for (const row of answer.trials) {
      row.hay = haystack(row);
      this.rows.set(row.number, row);
    }
    this.directions = answer.directions;
    this.params = answer.params;
    if (answer.reset || answer.trials.length) this.refresh();
  }

  turn(delta) {
    const pages = Math.max(1, Math.ceil(this.view.length / PAGE_SIZE));
    this.page = Math.min(pages - 1, Math.max(0, this.page + delta));
    this.renderBody();
  }

  sortBy(key) {
    if (this.sortKey === key) this.sortDescending = !this.sortDescending;
    else {
      this.sortKey = key;
      this.sortDescending = key === "number";
    }
    this.page = 0;
    this.refresh();
  }

  /** Filter and sort every row, then draw the header and the current page. */
  refresh() {
    this.cols = columns(this.directions, this.params);
    const terms = this.filterText.toLowerCase().split(/\s+/).filter(Boolean);
    const state = this.stateFilter;
    let view = [];
    for (const row of this.rows.values()) {
      if (state && row.state !== state && row.outcome !== state) continue;
      if (terms.length && !terms.every((t) => row.hay.includes(t))) continue;
      view.push(row);
    }
    const col = this.cols.find((c) => c.key === this.sortKey) || this.cols[0];
    const sign = this.sortDescending ? -1 : 1;
    view = view.map((row) => [col.get(row), row]);
    view.sort((a, b) => {
      const ra = rank(a[0]);
      const rb = rank(b[0]);
      if (ra === 3 || rb === 3) return ra - rb || a[1].number - b[1].number;
      return sign * compare(a[0], b[0]) || a[1].number - b[1].number;
    });
    this.view = view.map((pair) => pair[1]);
    this.csvLink.setAttribute("href", paths.csv(this.name, state, this.filterText.trim()));
    this.info.textContent = `${this.view.length.toLocaleString("en-US")} of ${this.rows.size.toLocaleString("en-US")} trials`;
    this.renderHead();
    this.renderBody();
  }

  renderHead() {
    const cells = this.cols.map((c) => {
      const active = c.key === this.sortKey;
      const button = el("button", { type: "button", class: "sort", text: c.label + (active ? (this.sortDescending ? " ▼" : " ▲") : "") });
      button.addEventListener("click", () => this.sortBy(c.key));
      return el("th", { scope: "col", dataset: { key: c.key }, "aria-sort": active ? (this.sortDescending ? "descending" : "ascending") : "none" }, button);
    });
    fill(this.thead, el("tr", {}, ...cells));
  }

  renderBody() {
    const pages = Math.max(1, Math.ceil(this.view.length / PAGE_SIZE));
    this.page = Math.min(this.page, pages - 1);
    const start = this.page * PAGE_SIZE;
    const shown = this.view.slice(start, start + PAGE_SIZE);
    fill(this.tbody, ...shown.map((row) => this.renderRow(row)));
    this.pageInfo.textContent = this.view.length
      ? `${start + 1}–${start + shown.length} of ${this.view.length.toLocaleString("en-US")} (page ${this.page + 1} of ${pages})`
      : "no trials";
    this.prev.disabled = this.page === 0;
    this.next.disabled = this.page >= pages - 1;
  }

  renderRow(row) {
    const cells = this.cols.map((c) => {
      const v = c.get(row);
      if (c.key === "number") {
        return el("td", { class: "num" }, el("a", { class: "trial-link", href: paths.trialPage(this.name, row.number), text: String(row.number) }));
      }
      if (c.key === "outcome") return el("td", { class: `state state-${row.outcome}`, text: row.outcome });
      if (c.duration) return el("td", { class: "num", text: fmtDuration(v) });
      if (c.param) return el("td", { class: typeof v === "number" ? "num" : "", text: v === null ? "" : fmtParam(v) });
      if (c.numeric) return el("td", { class: "num", text: v === null ? "-" : fmtNumber(v) });
      return el("td", { class: c.key === "reason" ? "reason" : "", text: v ?? "", title: c.key === "reason" && v ? v : null });
    });
    return el("tr", { dataset: { number: String(row.number), state: row.state } }, ...cells);
  }
}
