// The dashboard's entry point: picks the page from the URL path.

import { ApiError, studyNameOf } from "./api.js";
import { el, fill } from "./dom.js";
import { renderStudies } from "./studies.js";
import { renderStudy } from "./study.js";
import { renderTrial } from "./trial.js";

/** The path's segments, each percent-decoded on its own (as the server splits them). */
function segments() {
  return window.location.pathname
    .split("/")
    .slice(1)
    .map((part) => {
      try {
        return decodeURIComponent(part);
      } catch (_err) {
        return part;
      }
    });
}

function showError(main, err) {
  const detail = err instanceof ApiError && err.body && err.body.studies ? err.body.studies : null;
  fill(
    main,
    el("div", { id: "error", class: "error", role: "alert" },
      el("p", { text: err.message }),
      detail && detail.length ? el("p", { text: `Studies: ${detail.join(", ")}` }) : null,
      el("p", {}, el("a", { href: "/", text: "All studies" }))),
  );
}

async function main() {
  const mainNode = document.getElementById("main");
  const parts = segments();
  try {
    if (parts.length === 1 && parts[0] === "") {
      await renderStudies(mainNode);
    } else if (parts.length === 2 && parts[0] === "studies") {
      await renderStudy(mainNode, studyNameOf(parts[1]));
    } else if (parts.length === 4 && parts[0] === "studies" && parts[2] === "trials") {
      await renderTrial(mainNode, studyNameOf(parts[1]), Number(parts[3]));
    } else {
      throw new Error(`no page at ${window.location.pathname}`);
    }
  } catch (err) {
    console.error(err);
    showError(mainNode, err);
  }
}

main();
