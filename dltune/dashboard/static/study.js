// A study's page: summary, live plots and the trial table, updated by polling `after=`.

import { every, getInfo, getJSON, getJSONWithHeaders, paths, setStatus } from "./api.js";
import { el, field, fill } from "./dom.js";
import { fmtCount, fmtNumber, fmtTime } from "./format.js";
import { loadPlotly, renderPlots } from "./plots.js";
import { TrialTable } from "./table.js";

const OUTCOMES = ["complete", "pruned", "paused", "diverged", "not_learning", "fail", "running", "waiting"];

function crumbs(name) {
  fill(document.getElementById("crumbs"),
    el("a", { href: "/", text: "studies" }), " / ", el("span", { id: "crumb-study", text: name }));
  document.title = `${name} · dltune`;
}

/**
 * The summary the server sent with the trials: counts by outcome (a paused trial another
 * continues counts as "paused"), the best value per objective by study.best_trial's rule
 * (infinities as "inf"/"-inf") and the start.
 */
function renderSummary(node, table, summary) {
  const counts = summary.counts;
  const best = summary.best_values;
  const start = summary.start;
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
  let plotted = null; // the plots key (trials finished, started, reports) of the plots shown
  let plotting = false;
  let nextPlotsAt = 0; // drawing a big study's plots takes seconds: not more than a third of the time
  const updatePlots = async (key) => {
    if (plotting || key === plotted || performance.now() < nextPlotsAt) return;
    plotting = true;
    const started = performance.now();
    try {
      const { body: answer, headers } = await getJSONWithHeaders(paths.plots(name));
      // The server redraws a big study's plots at most every few seconds; if these are
      // older than the table, their key differs and the next poll asks again.
      plotted = headers.get("x-dltune-plots-key") || key;
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
    renderSummary(summary, table, answer.summary);
    setTimeout(() => updatePlots(answer.plots_key), 0); // the table never waits for the plots
  };
  await poll();
  // plotly.js is big: compiling it blocks the page for a while, so only after the table.
  loadPlotly().catch(() => {}); // renderPlots reports a failure
  every(info.poll_seconds, poll);
}
