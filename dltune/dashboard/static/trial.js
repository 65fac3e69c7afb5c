// One trial's page: state, values, reason, params, learning curve and attributes.

import { every, getInfo, getJSON, paths } from "./api.js";
import { el, field, fill } from "./dom.js";
import { fmtDuration, fmtNumber, fmtParam, fmtTime } from "./format.js";
import { drawFigure } from "./plots.js";

function crumbs(name, number) {
  fill(document.getElementById("crumbs"),
    el("a", { href: "/", text: "studies" }), " / ",
    el("a", { id: "crumb-study", href: paths.studyPage(name), text: name }), " / ",
    el("span", { text: `trial ${number}` }));
  document.title = `trial ${number} of ${name} · dltune`;
}

function values(trial) {
  if (!trial.values) return "-";
  return trial.values.map((v, k) => `${fmtNumber(v)} (${trial.directions[k] || "?"})`).join(", ");
}

function summary(trial) {
  const list = el("dl", { id: "trial-summary", class: "summary" });
  field(list, "state", el("span", { class: `state state-${trial.outcome}`, text: trial.state }), "trial-state");
  field(list, "outcome", trial.outcome, "trial-outcome");
  field(list, trial.values && trial.values.length > 1 ? "values" : "value", values(trial), "trial-values");
  field(list, "reason", trial.reason || "-", "trial-reason");
  field(list, "worker", trial.worker, "trial-worker");
  field(list, "started", fmtTime(trial.start), "trial-start");
  field(list, "completed", fmtTime(trial.complete), "trial-complete");
  field(list, "duration", fmtDuration(trial.duration_seconds), "trial-duration");
  field(list, "last step", trial.last_step === null ? "-" : `${trial.last_step} (value ${fmtNumber(trial.last_value)})`, "trial-last-step");
  if (trial.resume_of !== null) {
    field(list, "continues", el("a", { class: "trial-link", href: paths.trialPage(trial.study, trial.resume_of), text: `trial ${trial.resume_of}` }), "trial-resume-of");
  }
  if (trial.system_attrs.stopped_by) field(list, "stopped by", String(trial.system_attrs.stopped_by), "trial-stopped-by");
  return list;
}

function paramsTable(trial) {
  const rows = Object.entries(trial.params).map(([name, value]) =>
    el("tr", { dataset: { param: name } },
      el("th", { scope: "row", class: "param-name", text: name }),
      el("td", { class: "param-value", title: String(value), text: fmtParam(value) }),
      el("td", { class: "param-dist muted", text: trial.distributions[name] || "" })));
  return el("table", { id: "trial-params" },
    el("thead", {}, el("tr", {}, el("th", { text: "param" }), el("th", { text: "value" }), el("th", { text: "distribution" }))),
    el("tbody", {}, ...rows));
}

function attrsTable(id, attrs) {
  const rows = Object.entries(attrs).map(([key, value]) =>
    el("tr", {}, el("th", { scope: "row", text: key }), el("td", {}, el("code", { text: JSON.stringify(value) }))));
  return el("table", { id }, el("tbody", {}, ...rows));
}

function render(main, trial, curve) {
  const parts = [
    el("h1", { id: "trial-title", text: `Trial ${trial.number}` }),
    el("p", {}, el("a", { id: "back-to-study", href: paths.studyPage(trial.study), text: `← study ${trial.study}` })),
    summary(trial),
    el("h2", { text: "Params" }),
    Object.keys(trial.params).length ? paramsTable(trial) : el("p", { id: "trial-params", class: "muted", text: "No params." }),
    el("h2", { text: "Learning curve" }),
    trial.intermediate_values.length ? curve : el("p", { id: "learning-curve-empty", class: "muted", text: "No values reported." }),
  ];
  if (Object.keys(trial.user_attrs).length) parts.push(el("h2", { text: "User attributes" }), attrsTable("trial-user-attrs", trial.user_attrs));
  if (trial.system_attrs.hparams !== undefined) {
    parts.push(el("h2", { text: "Hyperparameters" }), el("pre", { id: "trial-hparams", text: JSON.stringify(trial.system_attrs.hparams, null, 2) }));
  }
  fill(main, ...parts);
}

export async function renderTrial(main, name, number) {
  crumbs(name, number);
  const info = await getInfo();
  const curve = el("div", { id: "learning-curve", class: "plot" }, el("div", { class: "plot-figure" }));
  let trial = await getJSON(paths.trial(name, number));
  render(main, trial, curve);
  if (trial.intermediate_values.length) await drawFigure(curve.querySelector(".plot-figure"), trial.figure);
  if (trial.state !== "running" && trial.state !== "waiting") return;
  const stop = every(info.poll_seconds, async () => {
    trial = await getJSON(paths.trial(name, number));
    render(main, trial, curve);
    if (trial.intermediate_values.length) await drawFigure(curve.querySelector(".plot-figure"), trial.figure);
    if (trial.state !== "running" && trial.state !== "waiting") stop();
  });
}
