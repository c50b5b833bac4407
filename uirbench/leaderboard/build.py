"""``uirbench leaderboard build``: entries -> README.md, CSV/LaTeX tables, figures and index.html.

Output in ``OUT``: ``README.md`` (Markdown tables, figure links, the analyses, how each entry was made),
``index.html`` (the static page), ``tables/<board>-<table>.csv|.tex`` and ``figures/<board>-<kind>-<metric>.png``.
Every entry is loaded and validated before anything is written, so a bad entry leaves ``OUT`` as it
was. The build is deterministic: the same entries give the same bytes. ``OUT/.built`` lists the
files of the last build; files it listed that this build does not write (a removed entry's board)
are deleted, and nothing else in ``OUT`` is touched.

Analyses: every ``*.md`` file in the ``notes`` folder beside the entries folder (``leaderboard/notes/``), in name
order, is copied into README.md after the boards. They hold what a table cannot say (e.g. whether a paper's claim
holds at this scale) and name the commands that computed their numbers.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from uirbench.io import write_bytes
from uirbench.leaderboard.entry import ENTRIES_DIR, LEADERBOARD_DIR, EntryError, load_entries
from uirbench.leaderboard.figures import board_figures
from uirbench.leaderboard.page import render_page
from uirbench.leaderboard.ranking import BOARD_RULE, RANK_RULE, Board, boards
from uirbench.leaderboard.tables import Table, board_tables, self_reported_table, spec_lines, to_csv, to_latex, to_markdown

BUILT = ".built"


def regenerate_command(entries: str | Path, out: str | Path) -> str:
    words = ["uirbench", "leaderboard", "build"]
    if Path(entries) != Path(ENTRIES_DIR):
        words += ["--entries", str(entries)]
    if Path(out) != Path(LEADERBOARD_DIR):
        words += ["--out", str(out)]
    return " ".join(words)


def notes(entries_dir: str | Path) -> list[str]:
    """The analyses to copy into README.md: each ``*.md`` of ``<entries>/../notes/``, in name order."""
    folder = Path(entries_dir).parent / "notes"
    return [path.read_text(encoding="utf-8").strip() + "\n" for path in sorted(folder.glob("*.md"))] if folder.is_dir() else []


def _readme(parts: list[tuple[Board, list[Table], list[str]]], self_reported: Table | None,
            entries: list[dict[str, Any]], regenerate: str, analyses: list[str]) -> str:
    lines = ["# uirbench leaderboard", "",
             "Every ranked number here is recomputed by uirbench from restored images (a model run with `uirbench evaluate` "
             "or a verified `uirbench submit`), under the conventions printed above each table. Self-reported numbers are "
             "listed apart and never ranked. Cells: mean [95% bootstrap CI]; **bold**: the best tied-rank group. "
             "Sortable tables and the figures: [index.html](index.html); CSV and LaTeX: [tables/](tables/).", "",
             f"**Regenerate** (from the repository root, after adding or changing `entries/*.json`): `{regenerate}`", "",
             "**Add an entry**: `uirbench evaluate --model M --data DIR --out OUT` writes `OUT/entry.json`; copy it to "
             "`entries/<name>.json` and set its `name` to `<name>` (it lists the generate, train and evaluate commands that made it). Or "
             "verify and score a folder/zip of restored PNGs: `uirbench submit RESTORED --data DIR --name NAME`.", "",
             f"**Boards.** {BOARD_RULE}", "", f"**Ranks.** {RANK_RULE}", ""]
    for board, tables, figures in parts:
        on = f" on {board.source}" if board.source else ""
        lines += [f"## Board {board.suite}/{board.split}{on} ({board.fingerprint[:12]}, {len(board.entries)} entries)", "",
                  "Metric spec:", "", *[f"- {line}" for line in spec_lines(board)], ""]
        for table in tables:
            lines += [f"### {table.title}", "", to_markdown(table)]
        lines += ["### Figures", ""]
        lines += [f"![{name}](figures/{name})" for name in figures]
        lines.append("")
    for analysis in analyses:
        lines += [analysis]
    if self_reported is not None:
        lines += ["## Self-reported entries (not verified, not ranked)", "", to_markdown(self_reported)]
    lines += ["## How each entry was made", ""]
    for e in entries:
        note = f"{e['provenance']}; {e['dataset']['suite']}/{e['dataset']['split']}"
        if "submission" in e:
            note += f"; submitted set of {e['submission']['images']} PNGs, sha256 `{e['submission']['sha256']}`"
        if "source" in e:
            note += f"; source: {e['source']}"
        lines.append(f"- **{e['name']}** ({note})")
        lines += [f"  - `{c}`" for c in e.get("commands", [])]
    return "\n".join(lines) + "\n"


def build(entries_dir: str | Path, out: str | Path) -> list[str]:
    """Render the leaderboard of ``entries_dir`` into ``out``; returns the written paths relative to ``out``."""
    out = Path(out)
    entries = load_entries(entries_dir)
    if not entries:
        raise EntryError(f"--entries {entries_dir}: no *.json entries; add one with `uirbench evaluate` or `uirbench submit`")
    ranked, apart = boards(entries)
    files: dict[str, bytes] = {}
    parts = []
    for board in ranked:
        tables = board_tables(board)
        figures = board_figures(board)
        for table in tables:
            files[f"tables/{table.id}.csv"] = to_csv(table).encode()
            files[f"tables/{table.id}.tex"] = to_latex(table).encode()
        files.update({f"figures/{name}": data for name, data in figures.items()})
        parts.append((board, tables, list(figures)))
    self_reported = self_reported_table(apart) if apart else None
    if self_reported is not None:
        files["tables/self-reported.csv"] = to_csv(self_reported).encode()
        files["tables/self-reported.tex"] = to_latex(self_reported).encode()
    regenerate = regenerate_command(entries_dir, out)
    files["README.md"] = _readme(parts, self_reported, entries, regenerate, notes(entries_dir)).encode()
    files["index.html"] = render_page(parts, self_reported, entries, regenerate).encode()
    previous = (out / BUILT).read_text().splitlines() if (out / BUILT).exists() else []
    for name, data in sorted(files.items()):
        write_bytes(out / name, data)
    for stale in sorted(set(previous) - set(files)):
        (out / stale).unlink(missing_ok=True)
    write_bytes(out / BUILT, "".join(f"{name}\n" for name in sorted(files)).encode())
    return sorted(files)
