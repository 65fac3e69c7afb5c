// Drawing the study's plots with plotly.js, loaded on first use (it is large).

import { el, fill } from "./dom.js";

let plotlyPromise = null;

/** Load /static/plotly.min.js once; resolves to window.Plotly. */
export function loadPlotly() {
  if (plotlyPromise === null) {
    plotlyPromise = new Promise((resolve, reject) => {
      const script = el("script", { src: "/static/plotly.min.js" });
      script.addEventListener("load", () => resolve(window.Plotly));
      script.addEventListener("error", () => reject(new Error("could not load plotly.js")));
      document.head.append(script);
    });
  }
  return plotlyPromise;
}

const CONFIG = { responsive: true, displaylogo: false };

/** Draw (or redraw in place) one plotly figure into node. */
export async function drawFigure(node, figure) {
  const Plotly = await loadPlotly();
  const layout = Object.assign({ autosize: true }, figure.layout || {});
  await Plotly.react(node, figure.data || [], layout, CONFIG);
}

const drawnFigures = new WeakMap(); // figure node -> the JSON text it shows

/**
 * Show plots [{kind, title, notes, figure}] in container, one figure.plot each (data-kind).
 * Plots are drawn one after another in reading order, letting the page respond between them
 * (a big study's plots take seconds to draw); plots already shown are redrawn in place, and
 * only when their figure changed, so a live update does not flicker.
 */
export async function renderPlots(container, plots) {
  const existing = new Map();
  for (const node of container.querySelectorAll(":scope > .plot")) existing.set(node.dataset.key, node);
  const seen = new Set();
  const order = [];
  const counts = {};
  for (const plot of plots) {
    counts[plot.kind] = (counts[plot.kind] || 0) + 1;
    const key = `${plot.kind}:${counts[plot.kind]}`;
    seen.add(key);
    let node = existing.get(key);
    if (!node) {
      node = el("figure", { class: "plot", dataset: { kind: plot.kind, key } },
        el("figcaption", { class: "plot-title" }),
        el("div", { class: "plot-figure" }),
        el("ul", { class: "plot-notes" }));
    }
    node.querySelector(".plot-title").textContent = plot.title;
    fill(node.querySelector(".plot-notes"), ...(plot.notes || []).map((n) => el("li", { text: n })));
    order.push([node, plot]);
  }
  for (const [key, node] of existing) if (!seen.has(key)) node.remove();
  for (const [node] of order) container.append(node);
  if (!plots.length) {
    container.dataset.empty = "true";
  } else {
    delete container.dataset.empty;
  }
  for (const [node, plot] of order) {
    const target = node.querySelector(".plot-figure");
    const text = JSON.stringify(plot.figure);
    if (drawnFigures.get(target) === text) continue;
    await drawFigure(target, plot.figure);
    drawnFigures.set(target, text);
    if (!performance.getEntriesByName("dltune:first-plot").length) performance.mark("dltune:first-plot");
    await new Promise((resolve) => setTimeout(resolve, 0));
  }
}
