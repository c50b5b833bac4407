"""A protocol's table in its published layout: one row per entry, one ``PSNR/SSIM`` cell per task, the average.

Rows come from leaderboard entries whose dataset suite is the protocol: *self-reported* ones (numbers
copied from a paper, with their source; never verified, never ranked) and *recomputed* ones (scored
by uirbench from images, each naming the dataset fingerprint it was scored on and its convention).
The table is rendered with the leaderboard's own Markdown/CSV/LaTeX writers (``leaderboard.tables``).

Average: the mean of the task columns, as the papers compute it (not the mean over images, which
weights the sets by their sizes); a self-reported row shows the average its source prints.
"""

from __future__ import annotations

from typing import Any

from uirbench.external.conventions import UIRBENCH
from uirbench.external.protocols import Protocol
from uirbench.leaderboard.tables import Column, Table, to_markdown


def convention_of(entry: dict[str, Any]) -> str:
    """The convention an entry was scored under: its spec's ``convention`` (first word), else ``uirbench``."""
    return str(entry["metric_spec"].get("convention", UIRBENCH)).split(":")[0]


def _cell(stats: dict[str, Any] | None) -> tuple[float, float] | None:
    if not stats or "psnr" not in stats or "ssim" not in stats:
        return None
    return stats["psnr"]["mean"], stats["ssim"]["mean"]


def _text(pair: tuple[float, float] | None) -> str | None:
    return None if pair is None else f"{pair[0]:.2f}/{pair[1]:.3f}"


def protocol_entries(protocol: Protocol, entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The entries of ``protocol`` (test split), self-reported first (by their average PSNR), then recomputed (by name)."""
    mine = [e for e in entries if e["dataset"]["suite"] == protocol.name and e["dataset"]["split"] == "test"]
    reported = sorted((e for e in mine if e["provenance"] == "self-reported"),
                      key=lambda e: (e["results"]["overall"]["psnr"]["mean"], e["name"]))
    return reported + sorted((e for e in mine if e["provenance"] != "self-reported"), key=lambda e: e["name"])


def protocol_table(protocol: Protocol, entries: list[dict[str, Any]]) -> Table:
    """The published layout of ``protocol`` with a row per entry of it among ``entries``."""
    columns = (Column("method", "text"), Column("convention", "text"), Column("provenance", "text"),
               *(Column(c.title, "text") for c in protocol.columns), Column("average", "text"), Column("params (M)", "number"),
               Column("source", "text"))
    rows = []
    for e in protocol_entries(protocol, entries):
        cells = [_cell(e["results"].get(c.group, {}).get(c.key)) for c in protocol.columns]
        if e["provenance"] == "self-reported":
            average, source = _cell(e["results"]["overall"]), e["source"]
        else:
            full = [c for c in cells if c is not None]
            average = (sum(c[0] for c in full) / len(full), sum(c[1] for c in full) / len(full)) if len(full) == len(cells) else None
            source = f"recomputed on fingerprint {e['dataset']['fingerprint'][:12]} ({e['dataset']['pairs']} pairs)"
        parameters = e["model"].get("parameters")
        rows.append((e["model"]["name"], convention_of(e), e["provenance"], *map(_text, cells), _text(average),
                     None if parameters is None else parameters / 1e6, source))
    spec = (f"{protocol.name}, cells PSNR (dB)/SSIM, mean of per-image scores per task; average = mean of the task columns "
            "(self-reported rows: the average their source prints); self-reported rows are copied from their source, not "
            "verified and never ranked; conventions below")
    return Table(f"protocol-{protocol.name}", f"Protocol {protocol.name}: {protocol.description}", spec, columns, tuple(rows))


def conventions_block(protocol: Protocol, entries: list[dict[str, Any]]) -> list[str]:
    """Markdown lines stating each convention of the table's rows (its metric spec) and how the protocol's papers scored."""
    rows = protocol_entries(protocol, entries)
    specs: dict[str, dict[str, Any]] = {}
    for e in sorted(rows, key=lambda e: e["provenance"] == "self-reported"):  # a recomputed entry's spec is the complete one
        specs.setdefault(convention_of(e), e["metric_spec"])
    lines = [f"How the papers of {protocol.name} scored: {protocol.scoring}.", ""]
    for name, spec in specs.items():
        lines.append(f"- **{name}**: {spec.get('convention', UIRBENCH + ': uirbench evaluate defaults')}")
        for key, value in spec.items():
            if isinstance(value, dict):
                shown = ", ".join(f"{k} {v}" for k, v in value.items() if k not in ("higher_is_better", "per_image"))
                lines.append(f"  - {key}: {shown}")
            elif key != "convention":
                lines.append(f"  - {key}: {value}")
    reported = {e["metric_spec"]["averaging"] for e in rows if e["provenance"] == "self-reported"}
    lines += [f"- self-reported rows, averaging: {text}" for text in sorted(reported)]
    return lines


def render_markdown(protocol: Protocol, entries: list[dict[str, Any]]) -> str:
    """The table and its conventions block as one Markdown document."""
    table = protocol_table(protocol, entries)
    return "\n".join([f"## {table.title}", "", to_markdown(table), *conventions_block(protocol, entries)]) + "\n"
