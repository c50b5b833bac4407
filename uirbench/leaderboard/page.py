"""The static leaderboard page ``index.html``: no server, no external assets.

CSS and the table-sorting script are inline; figures are PNG files next to the page
(``figures/``, relative links), so the folder opens from disk or any static host. Clicking a
column header sorts by it (numbers by value, a ``mean [CI]`` cell by its mean; again: reverse).
"""

from __future__ import annotations

import html
from typing import Any

from uirbench.leaderboard.ranking import BOARD_RULE, RANK_RULE, Board
from uirbench.leaderboard.tables import Table, cell_text, spec_lines

CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2rem auto; max-width: 1200px;
       padding: 0 1rem; color: #1b1f24; background: #fff; line-height: 1.45; }
h1 { font-size: 1.6rem; } h2 { border-bottom: 2px solid #d0d7de; padding-bottom: .2rem; margin-top: 2.2rem; }
h3 { margin: 1.6rem 0 .3rem; font-size: 1.05rem; }
.spec { font-size: .8rem; color: #57606a; margin: .2rem 0 .5rem; }
pre.spec { background: #f6f8fa; padding: .6rem .8rem; white-space: pre-wrap; border-radius: 6px; }
summary { cursor: pointer; font-weight: 600; }
.rule { background: #fff8c5; padding: .5rem .8rem; border-radius: 6px; font-size: .85rem; }
table { border-collapse: collapse; font-size: .82rem; margin-bottom: .8rem; display: block; overflow-x: auto; }
th, td { border: 1px solid #d0d7de; padding: .25rem .5rem; white-space: nowrap; }
th { background: #eaeef2; cursor: pointer; user-select: none; position: sticky; top: 0; }
th[aria-sort="ascending"]::after { content: " \\25B2"; } th[aria-sort="descending"]::after { content: " \\25BC"; }
td.num { text-align: right; font-variant-numeric: tabular-nums; } td.top { font-weight: 700; background: #dafbe1; }
tbody tr:nth-child(even) { background: #f6f8fa; }
.badge { font-size: .72rem; padding: .05rem .45rem; border-radius: 1rem; color: #fff; }
.recomputed { background: #1a7f37; } .self-reported { background: #9a6700; }
figure { margin: 1rem 0; } figure img { max-width: 100%; border: 1px solid #d0d7de; }
figcaption { font-size: .8rem; color: #57606a; } code { font-size: .8rem; background: #f6f8fa; padding: 0 .2rem; }
"""

SORT_JS = """
document.querySelectorAll("table.sortable").forEach(function (table) {
  var heads = table.tHead.rows[0].cells;
  Array.prototype.forEach.call(heads, function (th, col) {
    th.title = "click to sort by " + th.textContent;
    th.addEventListener("click", function () {
      var dir = th.getAttribute("aria-sort") === "ascending" ? -1 : 1;
      Array.prototype.forEach.call(heads, function (h) { h.removeAttribute("aria-sort"); });
      th.setAttribute("aria-sort", dir === 1 ? "ascending" : "descending");
      var body = table.tBodies[0];
      var rows = Array.prototype.slice.call(body.rows);
      rows.sort(function (a, b) {
        var x = a.cells[col].getAttribute("data-v"), y = b.cells[col].getAttribute("data-v");
        var nx = parseFloat(x), ny = parseFloat(y);
        if (isNaN(nx) || isNaN(ny)) { return dir * x.localeCompare(y); }
        return dir * (nx - ny);
      });
      rows.forEach(function (r) { body.appendChild(r); });
    });
  });
});
"""


def _esc(text: Any) -> str:
    return html.escape(str(text), quote=True)


def _sort_value(kind: str, value: Any) -> str:
    if value is None:
        return ""
    if kind == "stat":
        return repr(value["mean"])
    if kind == "set":
        return repr(value["value"])
    return repr(value) if kind in ("int", "number") else str(value)


def table_html(table: Table) -> str:
    head = "".join(f'<th scope="col">{_esc(c.title)}</th>' for c in table.columns)
    body = []
    for row in table.rows:
        cells = []
        for column, value in zip(table.columns, row, strict=True):
            classes = [] if column.kind == "text" else ["num"]
            if column.kind == "stat" and value and value["top"]:
                classes.append("top")
            attr = f' class="{" ".join(classes)}"' if classes else ""
            cells.append(f'<td{attr} data-v="{_esc(_sort_value(column.kind, value))}">{_esc(cell_text(column, value))}</td>')
        body.append("<tr>" + "".join(cells) + "</tr>")
    return (f'<h3 id="h-{_esc(table.id)}">{_esc(table.title)}</h3>\n<p class="spec">{_esc(table.spec)}</p>\n'
            f'<table id="{_esc(table.id)}" class="sortable"><thead><tr>{head}</tr></thead>\n<tbody>\n'
            + "\n".join(body) + "\n</tbody></table>\n")


def _commands(entry: dict[str, Any]) -> str:
    lines = [f"<li><code>{_esc(c)}</code></li>" for c in entry.get("commands", [])]
    return f"<ul>{''.join(lines)}</ul>" if lines else "<p>(no command recorded)</p>"


def render_page(boards: list[tuple[Board, list[Table], list[str]]], self_reported: Table | None,
                entries: list[dict[str, Any]], regenerate: str) -> str:
    """The whole page: rules, each board (spec block, tables, figures), self-reported entries, provenance."""
    parts = ["<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
             '<meta name="viewport" content="width=device-width, initial-scale=1">', "<title>uirbench leaderboard</title>",
             f"<style>{CSS}</style>", "</head>", "<body>", "<h1>uirbench leaderboard</h1>",
             "<p>Every ranked number is recomputed by uirbench from restored images (a model run with <code>uirbench "
             "evaluate</code> or a verified <code>uirbench submit</code>), under the conventions printed above each table. "
             "Self-reported numbers are listed apart and never ranked. Click a column header to sort.</p>",
             f"<details><summary>How boards and ranks are computed</summary><p class=\"rule\">{_esc(BOARD_RULE)}</p>"
             f'<p class="rule">{_esc(RANK_RULE)}</p></details>', f"<p>Regenerate: <code>{_esc(regenerate)}</code></p>"]
    for board, tables, figures in boards:
        on = f" on {board.source}" if board.source else ""
        parts.append(f'<section id="board-{_esc(board.slug)}"><h2>Board {_esc(board.suite)}/{_esc(board.split)}{_esc(on)} '
                     f"<small>({_esc(board.fingerprint[:12])}, {len(board.entries)} entries)</small></h2>")
        parts.append('<pre class="spec">' + _esc("\n".join(spec_lines(board))) + "</pre>")
        parts += [table_html(t) for t in tables]
        parts += [f'<figure><img src="figures/{_esc(f)}" alt="{_esc(f)}"><figcaption>{_esc(f)}</figcaption></figure>'
                  for f in figures]
        parts.append("</section>")
    if self_reported is not None:
        parts.append('<section id="self-reported-entries"><h2>Self-reported <span class="badge self-reported">'
                     "self-reported</span></h2>" + table_html(self_reported) + "</section>")
    parts.append('<section id="provenance"><h2>How each entry was made</h2>')
    for e in entries:
        extra = ""
        if "submission" in e:
            extra = f" Submitted image set: {e['submission']['images']} PNGs, sha256 <code>{_esc(e['submission']['sha256'])}</code>."
        if e["model"].get("checkpoint_sha256"):
            extra += f" Checkpoint sha256 <code>{_esc(e['model']['checkpoint_sha256'])}</code>."
        if "source" in e:
            extra += f" Source: {_esc(e['source'])}."
        parts.append(f'<h3>{_esc(e["name"])} <span class="badge {_esc(e["provenance"])}">{_esc(e["provenance"])}</span></h3>'
                     f"<p>{_esc(e['dataset']['suite'])}/{_esc(e['dataset']['split'])}.{extra}</p>{_commands(e)}")
    parts += ["</section>", f"<script>{SORT_JS}</script>", "</body>", "</html>"]
    return "\n".join(parts) + "\n"
