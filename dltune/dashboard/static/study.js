// A study's page: summary, live plots and the trial table, updated by polling `after=`.

import { every, getInfo, getJSON, getJSONWithHeaders, paths, setStatus } from "./api.js";
import { el, field, fill } from "./dom.js";
import { fmtCount, fmtNumber, fmtTime } from "./format.js";
import { loadPlotly, renderPlots } from "./plots.js";
import { TrialTable } from "./table.js";

const OUTCOMES = ["complete", "pruned", "diverged", "not_learning", "fail", "running", "waiting"];

function crumbs(name) {
  fill(document.getElementById("crumbs"),
    el("a", { href: "/", text: "studies" }), " / ", el("span", { id: "crumb-study", text: name }));
  document.title = `${name} · dltune`;
}

/** Counts by outcome and the best value per objective, from the merged rows. */
function summarize(rows, directions) {
  const counts = {};
  const best = directions.map(() => null);
  let start = null;
  for (const row of rows.values()) {
    counts[row.outcome] = (counts[row.outcome] || 0) + 1;
    if (row.start !== null && (start === null || row.start < start)) start = row.start;
    if (row.state !== "complete" || !row.values) continue;
    directions.forEach((direction, k) => {
      const v = row.values[k];
      if (v === null || v === undefined) return;
      if (best[k] === null || (direction === "maximize" ? v > best[k] : v < best[k])) best[k] = v;
    });
  }
  return { counts, best, start };
}

function renderSummary(node, table) {
  const { counts, best, start } = summarize(table.rows, table.directions);
  const finished = table.rows.size - (counts.running || 0) - (counts.waiting || 0);
  const list = el("dl", { class: "summary" });
  field(list, "directions", table.directions.join(", "), "directions");
  field(list, "trials", fmtCount(table.rows.size), "trial-count");
  const countNodes = OUTCOMES.filter((o) => counts[o]).map((o) =>
    el("span", { class: `count state-${o}`, dataset: { outcome: o }, text: `${o} ${fmtCount(counts[o])}` }));
  field(list, "by outcome", el("span", { id: "outcome-counts" }, ...countNodes));
  const label = table.directions.length === 1 ? "best value" : "best per objective";
  field(list, label, best.map((v) => fmtNumber(v)).join(", "), "best-values");
  field(list, "started", fmtTime(start), "study-start");
  field(list, "updated", new Date().toLocaleTimeString(), "last-update");
  fill(node, list);
  return finished;
}

export async function renderStudy(main, name) {
  crumbs(name);
  const info = await getInfo();
  const summary = el("section", { id: "summary" });
  const plots = el("section", { id: "plots", "aria-label": "plots" });
  const plotStatus = el("p", { id: "plots-status", class: "muted", text: "Loading plots…" });
  const tableSection = el("section", { id: "table-section" }, el("h2", { text: "Trials" }));
  fill(main,
    el("h1", { id: "study-name", text: name }),
    summary,
    el("h2", { text: "Plots" }), plotStatus, plots,
    tableSection);
  const table = new TrialTable(tableSection, name);

  let cursor = null;
  let plotted = -1; // finished trials when the plots were last asked for
  let plotting = false;
  let nextPlotsAt = 0; // drawing a big study's plots takes seconds: not more than a third of the time
  const updatePlots = async (finished) => {
    if (plotting || finished === plotted || performance.now() < nextPlotsAt) return;
    plotting = true;
    const started = performance.now();
    try {
      const { body: answer, headers } = await getJSONWithHeaders(paths.plots(name));
      // The server redraws a big study's plots at most every few seconds; if these are
      // older than the table, ask again at the next poll.
      const drawnFrom = Number(headers.get("x-dltune-finished-trials"));
      plotted = Number.isFinite(drawnFrom) ? Math.min(drawnFrom, finished) : finished;
      await renderPlots(plots, answer);
      if (!performance.getEntriesByName("dltune:plots").length) performance.mark("dltune:plots");
      plotStatus.textContent = answer.length ? "" : "No plots yet: they appear as trials finish.";
    } catch (err) {
      plotStatus.textContent = `Plots failed: ${err.message}`;
      setStatus(`plots failed: ${err.message}`, true);
    } finally {
      plotting = false;
      const took = performance.now() - started;
      nextPlotsAt = performance.now() + Math.max(info.poll_seconds * 1000, 2 * took);
    }
  };
  const poll = async () => {
    const answer = await getJSON(paths.trials(name, cursor));
    cursor = answer.cursor;
    table.merge(answer);
    if (!performance.getEntriesByName("dltune:table").length) performance.mark("dltune:table");
    const finished = renderSummary(summary, table);
    setTimeout(() => updatePlots(finished), 0); // the table never waits for the plots
  };
  await poll();
  // plotly.js is big: compiling it blocks the page for a while, so only after the table.
  loadPlotly().catch(() => {}); // renderPlots reports a failure
  every(info.poll_seconds, poll);
}
