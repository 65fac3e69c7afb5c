"""The report's fixed parts: its style sheet, its two small scripts and the inlined plotly.js.

Nothing here is fetched at view time: the report is one file that opens offline, so plotly.js
comes from the installed plotly package and is written into the page.
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path

from dltune._imports import require
from dltune.exceptions import MissingDependencyError

__all__ = ["CSS", "DRAW_SCRIPT", "PAGE_ROWS", "TABLE_SCRIPT", "plotly_js"]

#: The report's style sheet (no web fonts, no images: nothing to fetch).
CSS = """
:root { --fg: #1d2330; --muted: #5b6474; --line: #d9dde5; --band: #f4f6f9; --accent: #2a5db0; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif;
  color: var(--fg); background: #fff; }
header, main { max-width: 1200px; margin: 0 auto; padding: 0 20px; }
header { padding-top: 18px; border-bottom: 1px solid var(--line); }
header h1 { margin: 0 0 4px; font-size: 22px; }
header p { margin: 0 0 10px; color: var(--muted); }
nav a { margin-right: 14px; color: var(--accent); text-decoration: none; }
section { margin: 26px 0; }
h2 { font-size: 18px; border-bottom: 1px solid var(--line); padding-bottom: 4px; }
h3 { font-size: 15px; margin: 18px 0 6px; }
code { font: 13px ui-monospace, SFMono-Regular, Menlo, monospace; }
table { border-collapse: collapse; margin: 6px 0; }
th, td { padding: 3px 9px; border-bottom: 1px solid var(--line); text-align: left;
  vertical-align: top; }
th { background: var(--band); font-weight: 600; }
td.n { text-align: right; font-variant-numeric: tabular-nums; }
dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: 3px 16px; margin: 0; }
dl.facts dt { color: var(--muted); }
dl.facts dd { margin: 0; }
.note { color: var(--muted); margin: 4px 0; }
.plot { border: 1px solid var(--line); border-radius: 4px; margin: 8px 0 4px; }
.plot-frame { min-height: 440px; }
.bar { display: inline-block; height: 10px; background: var(--accent); vertical-align: middle; }
.scroll { max-height: 640px; overflow: auto; border: 1px solid var(--line); }
.scroll table { margin: 0; width: 100%; }
.scroll td { white-space: nowrap; }
.scroll td.r { white-space: normal; min-width: 280px; }
.scroll th { position: sticky; top: 0; cursor: pointer; user-select: none; }
.scroll th[aria-sort="ascending"]::after { content: " \\25B2"; }
.scroll th[aria-sort="descending"]::after { content: " \\25BC"; }
tr.o-pruned td.o, tr.o-diverged td.o, tr.o-not_learning td.o { color: #9a6700; }
tr.o-fail td.o { color: #b3261e; }
tr.o-paused td.o { color: var(--muted); }
tr.o-complete td.o { color: #1a7f37; }
tr.best td { background: #eef6ee; }
input.filter { padding: 4px 8px; width: 320px; margin: 4px 8px 8px 0; }
.pager { display: inline-block; color: var(--muted); }
.pager button { margin-left: 4px; }
"""

#: Draws each plot from its JSON block when it scrolls into view (all at once without
#: IntersectionObserver), so a long report opens fast.
DRAW_SCRIPT = """
(function () {
  "use strict";
  var config = {responsive: true, displaylogo: false, showLink: false, showSendToCloud: false};
  function draw(div) {
    if (div.dataset.drawn) { return; }
    div.dataset.drawn = "1";
    var block = document.getElementById(div.dataset.figure);
    var figure = JSON.parse(block.textContent);
    window.Plotly.newPlot(div, figure.data, figure.layout, config);
  }
  var divs = Array.prototype.slice.call(document.querySelectorAll("div.plot[data-figure]"));
  if (!window.Plotly) {
    divs.forEach(function (div) { div.textContent = "plotly.js did not load; no plot."; });
    return;
  }
  if (!("IntersectionObserver" in window)) { divs.forEach(draw); return; }
  var seen = new IntersectionObserver(function (entries) {
    entries.forEach(function (entry) {
      if (entry.isIntersecting) { seen.unobserve(entry.target); draw(entry.target); }
    });
  }, {rootMargin: "400px"});
  divs.forEach(function (div) { seen.observe(div); });
  window.addEventListener("beforeprint", function () { divs.forEach(draw); });
})();
"""

#: Rows shown per page of the trial table; the rest are in the page but hidden until asked
#: for, so 10,000 trials cost the browser no layout.
PAGE_ROWS = 100

#: The trial table: pages of PAGE_ROWS rows, click a header to sort (numbers as numbers, blanks
#: last), type to keep only the rows holding every word. The rows stay static HTML in the page
#: (a reader without scripts sees them all); the script only picks which to show.
TABLE_SCRIPT = """
(function () {
  "use strict";
  function parse(cell) {
    var text = cell.getAttribute("data-s");
    if (text === null) { text = cell.textContent; }
    var number = Number(text);
    return {blank: text === "" || text === "-", text: text,
            number: text !== "" && !isNaN(number) ? number : null};
  }
  function compare(a, b) {
    if (a.number !== null && b.number !== null) { return a.number - b.number; }
    return a.text < b.text ? -1 : (a.text > b.text ? 1 : 0);
  }
  document.querySelectorAll("table.paged").forEach(function (table) {
    var size = Number(table.dataset.page) || 100;
    var body = table.tBodies[0];
    var all = Array.prototype.slice.call(body.rows);
    var pager = document.getElementById(table.id + "-pager");
    var info = pager.querySelector(".info");
    var buttons = pager.querySelectorAll("button");
    var input = document.querySelector("input.filter[data-table='" + table.id + "']");
    var texts = null, keys = {}, shown = all, page = 0, column = -1, down = false;
    function columnKeys(c) {
      if (!keys[c]) { keys[c] = all.map(function (row) { return parse(row.cells[c]); }); }
      return keys[c];
    }
    function render() {
      var pages = Math.max(1, Math.ceil(shown.length / size));
      page = Math.max(0, Math.min(page, pages - 1));
      var rows = shown.slice(page * size, (page + 1) * size);
      var fragment = document.createDocumentFragment();
      rows.forEach(function (row) { row.hidden = false; fragment.appendChild(row); });
      body.textContent = "";
      body.appendChild(fragment);
      var first = shown.length ? page * size + 1 : 0;
      info.textContent = "rows " + first + "-" + (page * size + rows.length) + " of " +
        shown.length + (shown.length < all.length ? " (filtered from " + all.length + ")" : "");
      buttons[0].disabled = buttons[1].disabled = page === 0;
      buttons[2].disabled = buttons[3].disabled = page >= pages - 1;
    }
    function update() {
      var words = input ? input.value.toLowerCase().split(/\\s+/).filter(Boolean) : [];
      var index = all.map(function (row, i) { return i; });
      if (words.length) {
        if (!texts) { texts = all.map(function (row) { return row.textContent.toLowerCase(); }); }
        index = index.filter(function (i) {
          return words.every(function (w) { return texts[i].indexOf(w) >= 0; });
        });
      }
      if (column >= 0) {
        var k = columnKeys(column);
        index.sort(function (i, j) {
          if (k[i].blank || k[j].blank) {
            return k[i].blank === k[j].blank ? i - j : (k[i].blank ? 1 : -1);
          }
          var c = compare(k[i], k[j]);
          return (down ? -c : c) || i - j;
        });
      }
      shown = index.map(function (i) { return all[i]; });
      render();
    }
    table.querySelectorAll("thead th").forEach(function (th, c) {
      th.addEventListener("click", function () {
        down = column === c && !down;
        column = c;
        table.querySelectorAll("thead th").forEach(function (h) {
          h.removeAttribute("aria-sort");
        });
        th.setAttribute("aria-sort", down ? "descending" : "ascending");
        page = 0;
        update();
      });
    });
    var moves = [function () { page = 0; }, function () { page -= 1; },
                 function () { page += 1; }, function () { page = Infinity; }];
    buttons.forEach(function (button, i) {
      button.addEventListener("click", function () { moves[i](); render(); });
    });
    if (input) { input.addEventListener("input", function () { page = 0; update(); }); }
    pager.hidden = false;
    render();
  });
})();
"""

_SCRIPT_END = re.compile(r"</(script)", re.IGNORECASE)


@lru_cache(maxsize=1)
def _read_plotly_js(path: str) -> str:
    text = Path(path).read_text(encoding="utf-8")
    # Inside a <script> element only "</script" ends it; plotly.min.js has none today, but a
    # later version must not be able to cut the page short.
    return _SCRIPT_END.sub(r"<\\/\1", text)


def plotly_js() -> str:
    """The installed plotly package's ``plotly.min.js``, safe to place inside ``<script>``.

    Read once per process (about 4.7 MB) and kept.

    Returns:
        The script's text, with any ``</script`` in it written as ``<\\/script``.

    Raises:
        MissingDependencyError: If plotly is not installed, or ships no ``plotly.min.js``.

    Example:
        >>> script = plotly_js()  # needs the 'plots' extra
        >>> "plotly.js v" in script[:200], "</script" in script.lower()
        (True, False)
    """
    plotly = require("plotly", extra="plots", feature="the HTML report")
    path = Path(str(plotly.__file__)).parent / "package_data" / "plotly.min.js"
    if not path.is_file():
        raise MissingDependencyError(
            f"the plotly package at {path.parent.parent} has no {path.name}; reinstall it with "
            "pip install --force-reinstall 'dltune[plots]'"
        )
    return _read_plotly_js(str(path))
