"""Leaderboard tables of one board: built once as :class:`Table`, rendered as Markdown, CSV and LaTeX.

Tables per board (see ``ranking``): overall (ranked by the board's first metric), mean rank, and for
each metric per degradation, per severity and per track (mixed vs single vs out-of-distribution);
set-level metrics (FID/KID) per degradation when entries have them. Every table carries the board's
one-line metric spec, printed above it in every format. Cells of a metric are ``mean [CI low, CI high]``
(95% bootstrap CI over images); in per-cell tables the entries of the best tied-rank group are bold.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from typing import Any

from uirbench.leaderboard.ranking import Board, cell_ranks, mean_ranks


@dataclass(frozen=True)
class Column:
    """A column; ``kind``: text, int, number (float), stat (``{"mean", "ci95", "top"}``) or set (``{"value", "n"}``)."""

    title: str
    kind: str
    digits: int = 2


@dataclass(frozen=True)
class Table:
    """A rendered table: ``id`` (HTML id, file name), title, one-line spec, columns, rows of cells (None = missing)."""

    id: str
    title: str
    spec: str
    columns: tuple[Column, ...]
    rows: tuple[tuple[Any, ...], ...]


def digits(board: Board, metric: str) -> int:
    """Decimals shown: 2 for metrics in dB (PSNR), 4 otherwise (SSIM, LPIPS)."""
    return 2 if board.metric_spec[metric].get("unit") == "dB" else 4


def order_degradations(names: list[str]) -> list[str]:
    """Single degradations first, then mixed chains (a+b), each alphabetical."""
    return sorted(names, key=lambda n: ("+" in n, n))


def order_levels(labels: list[str]) -> list[str]:
    """Severity levels s1..s5 first, then continuous ranges (ood, train)."""
    return sorted(labels, key=lambda s: (not s.startswith("s"), s))


def spec_lines(board: Board) -> list[str]:
    """The full metric-spec block of a board: dataset, each metric's conventions, averaging, quantisation."""
    spec = board.metric_spec
    lines = [f"dataset: suite {board.suite}, split {board.split}, {board.pairs} pairs, fingerprint {board.fingerprint}"
             + (f"; clean images: {board.source}" if board.source else "")]
    for metric in board.metrics:
        direction = "higher is better" if board.higher_is_better(metric) else "lower is better"
        details = ", ".join(f"{k} {v}" for k, v in spec[metric].items() if k not in ("higher_is_better", "per_image"))
        lines.append(f"{metric} ({direction}): {details}")
    lines.append(f"averaging: {spec['averaging']}; 95% percentile-bootstrap CI over images")
    lines += [f"{k}: {v}" for k, v in spec.items() if k not in ("averaging", *board.metrics)]
    return lines


CONVENTIONS = ("color_space", "crop_border", "data_range")
"""The conventions that change a score's value most (RGB vs Y PSNR differ by several dB), shown on every table."""


def conventions(metric_spec: Any) -> str:
    """``color_space=RGB, crop_border=0, data_range=1.0`` of one metric's spec; "not stated" when it gives none."""
    stated = [f"{k}={metric_spec[k]}" for k in CONVENTIONS if isinstance(metric_spec, dict) and k in metric_spec]
    return ", ".join(stated) or "not stated"


def spec_line(board: Board) -> str:
    """One-line spec printed above every table (the full block heads the board)."""
    conv = "; ".join(f"{m}: {conventions(board.metric_spec[m])}" for m in board.metrics)
    return (f"{board.suite}/{board.split}, {board.pairs} pairs, fingerprint {board.fingerprint[:12]}; {conv}; "
            f"{board.metric_spec['averaging']}, 95% bootstrap CI; restored images quantised to 8 bits")


def _set_point(entry: dict[str, Any], metric: str, degradation: str | None = None) -> dict[str, Any] | None:
    """A set-level metric's ``{"value", "n"}`` overall or for one degradation; None when the entry lacks it."""
    value = entry.get("set_metrics", {}).get(metric)
    if value is None:
        return None
    return value["overall"] if degradation is None else value["per_degradation"].get(degradation)


def _stat(stat: dict[str, Any], top: bool) -> dict[str, Any]:
    return {"mean": stat["mean"], "ci95": stat.get("ci95"), "top": top}


def ranked_names(board: Board) -> list[str]:
    """Entry names in the overall order: tied-group rank on the first metric, then mean, then name."""
    metric = board.metrics[0]
    ranks = cell_ranks(board, metric, "overall")
    sign = -1 if board.higher_is_better(metric) else 1
    means = {e["name"]: e["results"]["overall"][metric]["mean"] for e in board.entries}
    return sorted(ranks, key=lambda n: (ranks[n], sign * means[n], n))


def board_tables(board: Board) -> list[Table]:
    """Every table of a board, in page order."""
    line = spec_line(board)
    entries = {e["name"]: e for e in board.entries}
    names = ranked_names(board)
    primary = board.metrics[0]
    set_names = sorted({m for e in board.entries for m in e.get("set_metrics", {})})
    ranks = {m: cell_ranks(board, m, "overall") for m in board.metrics}

    columns = [Column("rank", "int"), Column("model", "text")]
    columns += [Column(m, "stat", digits(board, m)) for m in board.metrics]
    columns += [Column(m, "set") for m in set_names]
    columns += [Column("parameters", "int"), Column("ms/image", "number", 1), Column("device", "text")]
    rows = []
    for name in names:
        e = entries[name]
        row = [ranks[primary][name], name]
        row += [_stat(e["results"]["overall"][m], ranks[m][name] == 1) for m in board.metrics]
        row += [_set_point(e, m) for m in set_names]
        row += [e["model"].get("parameters"), e["runtime"].get("mean_ms_per_image"), e["runtime"]["device"]]
        rows.append(tuple(row))
    tables = [Table(f"{board.slug}-overall", f"Overall (ranked by {primary}; tied-rank groups from 95% CIs)", line,
                    tuple(columns), tuple(rows))]

    mean = {m: mean_ranks(board, m) for m in board.metrics}
    columns = [Column("model", "text")]
    for m in board.metrics:
        columns += [Column(f"{m} overall rank", "int"), Column(f"{m} mean rank over degradations", "number", 2)]
    order = sorted(names, key=lambda n: (mean[primary][n], n))
    rows = [tuple([n, *[v for m in board.metrics for v in (ranks[m][n], mean[m][n])]]) for n in order]
    tables.append(Table(f"{board.slug}-mean-rank", "Mean rank (tied-group rank per degradation, averaged)", line,
                        tuple(columns), tuple(rows)))

    for group, label, keys in (("per_degradation", "degradation", order_degradations(board.keys("per_degradation"))),
                               ("per_severity", "severity", order_levels(board.keys("per_severity"))),
                               ("per_track", "track", board.keys("per_track"))):
        for m in board.metrics:
            columns = (Column(label, "text"), *(Column(n, "stat", digits(board, m)) for n in names))
            rows = []
            for key in keys:
                best = cell_ranks(board, m, group, key)
                rows.append((key, *(_stat(entries[n]["results"][group][key][m], best[n] == 1) for n in names)))
            tables.append(Table(f"{board.slug}-{group.replace('_', '-')}-{m}", f"{m} per {label}", line, columns, tuple(rows)))
    for m in set_names:
        keys = order_degradations(list({k for e in board.entries for k in e.get("set_metrics", {}).get(m, {}).get("per_degradation", {})}))
        columns = (Column("degradation", "text"), *(Column(n, "set") for n in names))
        rows = [(k, *(_set_point(entries[n], m, k) for n in names)) for k in keys]
        tables.append(Table(f"{board.slug}-per-degradation-{m}", f"{m} per degradation (set-level; N images per set)", line,
                            columns, tuple(rows)))
    return tables


SELF_REPORTED_SPEC = "self-reported numbers, copied from their source: not recomputed by uirbench, never ranked; conventions per row"


def _unit(entry: dict[str, Any], metric: str) -> Any:
    spec = entry["metric_spec"].get(metric)
    return spec.get("unit") if isinstance(spec, dict) else None


def self_reported_table(entries: list[dict[str, Any]]) -> Table:
    """Self-reported entries (never ranked): dataset, overall numbers as reported, their conventions and source."""
    metrics = sorted({m for e in entries for m in e["results"]["overall"]})
    columns = (Column("model", "text"), Column("dataset", "text"), Column("fingerprint", "text"),
               *(Column(m, "stat", 2 if any(_unit(e, m) == "dB" for e in entries) else 4) for m in metrics),
               Column("conventions", "text"), Column("source", "text"))
    rows = []
    for e in entries:
        spec, overall = e["metric_spec"], e["results"]["overall"]
        stated = "; ".join([spec["averaging"], *(f"{m}: {conventions(spec.get(m))}" for m in metrics if m in overall)])
        rows.append((e["name"], f"{e['dataset']['suite']}/{e['dataset']['split']}", (e["dataset"].get("fingerprint") or "")[:12] or None,
                     *(_stat(overall[m], False) if m in overall else None for m in metrics), stated, e["source"]))
    return Table("self-reported", "Self-reported entries (not verified, not ranked)", SELF_REPORTED_SPEC, columns, tuple(rows))


def cell_text(column: Column, value: Any) -> str:
    """A cell as plain text (Markdown/LaTeX add their own emphasis); missing values print as an en dash."""
    if value is None:
        return "–"
    if column.kind == "int":
        return f"{value:,}"
    if column.kind == "number":
        return f"{value:.{column.digits}f}"
    if column.kind == "stat":
        d = column.digits
        ci = value["ci95"]
        return f"{value['mean']:.{d}f}" + (f" [{ci[0]:.{d}f}, {ci[1]:.{d}f}]" if ci else "")
    if column.kind == "set":
        return f"{value['value']:.2f} (N={value['n']})"
    return str(value)


def to_markdown(table: Table) -> str:
    header = [c.title for c in table.columns]
    lines = [f"> {table.spec}", "", "| " + " | ".join(header) + " |",
             "|" + "|".join("---" if c.kind == "text" else "---:" for c in table.columns) + "|"]
    for row in table.rows:
        cells = []
        for column, value in zip(table.columns, row, strict=True):
            text = cell_text(column, value).replace("|", "\\|")
            cells.append(f"**{text}**" if column.kind == "stat" and value and value["top"] else text)
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def to_csv(table: Table) -> str:
    """CSV with the spec as leading ``#`` comment lines; a stat column becomes mean, ci95_low, ci95_high."""
    buf = io.StringIO()
    buf.write(f"# {table.title}\n# {table.spec}\n")
    writer = csv.writer(buf, lineterminator="\n")
    header = []
    for c in table.columns:
        header += ([c.title, f"{c.title} ci95_low", f"{c.title} ci95_high"] if c.kind == "stat" else
                   [c.title, f"{c.title} n"] if c.kind == "set" else [c.title])
    writer.writerow(header)
    for row in table.rows:
        out: list[Any] = []
        for c, v in zip(table.columns, row, strict=True):
            if c.kind == "stat":
                out += ["", "", ""] if v is None else [repr(v["mean"]), *([repr(x) for x in v["ci95"]] if v["ci95"] else ["", ""])]
            elif c.kind == "set":
                out += ["", ""] if v is None else [repr(v["value"]), v["n"]]
            else:
                out.append("" if v is None else repr(v) if c.kind == "number" else v)
        writer.writerow(out)
    return buf.getvalue()


_LATEX_ESCAPES = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
                  "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}", "–": "--"}


def latex_escape(text: str) -> str:
    return "".join(_LATEX_ESCAPES.get(ch, ch) for ch in text)


def to_latex(table: Table) -> str:
    """A ``table`` float (booktabs rules) with the title and spec as its caption, above the tabular."""
    align = "".join("l" if c.kind == "text" else "r" for c in table.columns)
    lines = ["% generated by `uirbench leaderboard build`; needs \\usepackage{booktabs}", r"\begin{table}[t]", r"\centering",
             rf"\caption{{{latex_escape(table.title)}. {latex_escape(table.spec)}.}}", rf"\label{{tab:{table.id}}}",
             rf"\begin{{tabular}}{{{align}}}", r"\toprule",
             " & ".join(latex_escape(c.title) for c in table.columns) + r" \\", r"\midrule"]
    for row in table.rows:
        cells = []
        for column, value in zip(table.columns, row, strict=True):
            text = latex_escape(cell_text(column, value))
            cells.append(rf"\textbf{{{text}}}" if column.kind == "stat" and value and value["top"] else text)
        lines.append(" & ".join(cells) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}", r"\end{table}"]
    return "\n".join(lines) + "\n"
