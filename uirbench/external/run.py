"""``uirbench protocol run`` and ``protocol table``: a protocol's dataset, its scores under each convention, its table.

Layout of ``OUT`` (default ``protocols/<protocol>``)::

    data/                              the protocol's dataset (``protocols.prepare``; resumable)
    eval/<name>-<convention>/          per_image.parquet, summary.json, entry.json of each convention
    entries/<protocol>.<name>.<convention>.json   the recomputed entries (copy them to leaderboard/entries)
    <protocol>.md|.csv|.tex            the table: these entries beside the self-reported rows of --entries
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from uirbench.errors import UserError
from uirbench.external.conventions import UIRBENCH
from uirbench.external.protocols import Protocol, get_protocol, prepare
from uirbench.external.scoring import ScoreConfig, score
from uirbench.external.table import protocol_table, render_markdown
from uirbench.io import write_bytes, write_json


@dataclass(frozen=True)
class RunConfig:
    """Arguments of ``uirbench protocol run`` (see ``--help``)."""

    protocol: str
    folders: tuple[tuple[str, str], ...]
    model: str
    out: str | None = None
    name: str | None = None
    conventions: tuple[str, ...] = ()
    checkpoint: str | None = None
    device: str = "cpu"
    model_args: tuple[tuple[str, str], ...] = ()
    entries: tuple[str, ...] = ()
    skip_bad: bool = False
    command: str = ""


def gather_entries(folders: list[Path]) -> list[dict[str, Any]]:
    """Validated entries of every folder that exists, the first folder's entry kept when two share a name."""
    from uirbench.leaderboard.entry import load_entries

    found: dict[str, dict[str, Any]] = {}
    for folder in folders:
        if folder.is_dir():
            for entry in load_entries(folder):
                found.setdefault(entry["name"], entry)
    return list(found.values())


def write_table(protocol: Protocol, entries: list[dict[str, Any]], out: Path) -> str:
    """Write ``out/<protocol>.md|.csv|.tex``; returns the Markdown."""
    from uirbench.leaderboard.tables import to_csv, to_latex

    table, markdown = protocol_table(protocol, entries), render_markdown(protocol, entries)
    write_bytes(out / f"{protocol.name}.md", markdown.encode())
    write_bytes(out / f"{protocol.name}.csv", to_csv(table).encode())
    write_bytes(out / f"{protocol.name}.tex", to_latex(table).encode())
    return markdown


def run_protocol(config: RunConfig) -> dict[str, Any]:
    """Prepare the dataset, score the model under each convention, write its entries and the table; returns a summary."""
    from uirbench.leaderboard.entry import check_name, entry_from_summary

    protocol = get_protocol(config.protocol)
    conventions = config.conventions or tuple(c for c in (protocol.paper_convention, UIRBENCH) if c)
    name = config.name or config.model
    entry_names = {c: check_name(f"{protocol.name}.{name}.{c}", "--name") for c in conventions}
    out = Path(config.out or f"protocols/{protocol.name}")
    if len(set(conventions)) != len(conventions):
        raise UserError(f"--convention: each convention once, got {', '.join(conventions)}")
    data = prepare(protocol, dict(config.folders), out / "data", skip_bad=config.skip_bad, command=config.command)
    written = []
    for convention in conventions:
        summary = score(ScoreConfig(model=config.model, data=str(out / "data"), out=str(out / "eval" / f"{name}-{convention}"),
                                    convention=convention, checkpoint=config.checkpoint, device=config.device,
                                    model_args=config.model_args, command=config.command))
        entry = entry_from_summary(summary, name=entry_names[convention], commands=list(dict.fromkeys(summary["commands"])))
        write_json(out / "entries" / f"{entry['name']}.json", entry)
        written.append(str(out / "entries" / f"{entry['name']}.json"))
    entries = gather_entries([out / "entries", *map(Path, config.entries)])
    return {"data": data, "entries": written, "markdown": write_table(protocol, entries, out), "out": str(out)}
