// The study list: one row per study, refreshed every poll.

import { every, getInfo, getJSON, paths } from "./api.js";
import { el, fill } from "./dom.js";
import { fmtCount, fmtNumber, fmtTime } from "./format.js";

// "paused": pruned trials another trial continues (their lineage goes on).
const OUTCOMES = ["complete", "pruned", "paused", "fail", "running", "waiting"];

function crumbs() {
  fill(document.getElementById("crumbs"), el("span", { text: "studies" }));
  document.title = "dltune dashboard";
}

function row(study) {
  const counts = study.counts || {};
  const best = study.best_values.map((v) => fmtNumber(v)).join(", "); // "inf"/"-inf" as text
  const stopped = (counts.diverged || 0) + (counts.not_learning || 0);
  return el("tr", { dataset: { study: study.name } },
    el("td", {}, el("a", { class: "study-link", href: paths.studyPage(study.name), text: study.name })),
    el("td", { text: study.directions.join(", ") }),
    el("td", { class: "num n-trials", text: fmtCount(study.n_trials) }),
    ...OUTCOMES.map((o) => el("td", {
      class: `num count-${o}`,
      text: fmtCount((counts[o] || 0) + (o === "pruned" ? stopped : 0)),
    })),
    el("td", { class: "num best", text: best }),
    el("td", { text: fmtTime(study.start) }));
}

export async function renderStudies(main) {
  crumbs();
  const info = await getInfo();
  const tbody = el("tbody");
  const empty = el("p", { id: "no-studies", class: "muted", hidden: true, text: `No studies in ${info.storage} yet.` });
  const head = el("tr", {}, ...["study", "directions", "trials", ...OUTCOMES, "best", "started"]
    .map((h) => el("th", { scope: "col", text: h })));
  fill(main,
    el("h1", { text: "Studies" }),
    el("p", { class: "muted", id: "storage", text: `storage: ${info.storage}` }),
    el("div", { class: "table-wrap" }, el("table", { id: "study-list" }, el("thead", {}, head), tbody)),
    empty);
  const refresh = async () => {
    const studies = await getJSON(paths.studies());
    fill(tbody, ...studies.map(row));
    empty.hidden = studies.length > 0;
  };
  await refresh();
  every(info.poll_seconds, refresh);
}
