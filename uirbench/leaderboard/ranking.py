"""Which entries may be compared, and how they rank: boards, tied-rank groups from CIs, mean ranks.

The rules (``BOARD_RULE``, ``RANK_RULE``) are printed on the leaderboard page as written here.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from uirbench.stats import overlaps

BOARD_RULE = (
    "Entries are ranked together only when they were scored on the same pairs under the same conventions: the same "
    "dataset (suite, split, fingerprint) and an identical metric spec (each metric's colour space, crop, data range, "
    "window, the averaging and the quantisation). Each such set is one board; entries of different boards are never "
    "ranked together. Self-reported entries (numbers only) belong to no board: they are listed apart and never ranked.")
RANK_RULE = (
    "Tied-rank groups: for one metric and one cell (overall, a degradation, a severity, a track) a board's entries are "
    "sorted best first by mean (equal means by name). The first entry leads group 1. Each following entry joins the "
    "current group when its 95% CI overlaps the CI of the group's leader (closed intervals: touching counts); otherwise "
    "it starts a new group and leads it. Comparing with the leader, not with the previous entry, keeps a chain of small "
    "overlaps from tying entries whose own intervals are far apart. Every member of a group gets the group's competition "
    "rank, 1 + the number of entries in better groups (groups of 2, 1 and 2 entries give ranks 1, 1, 3, 4, 4). "
    "An entry's mean rank for a metric is the mean of its ranks over the board's degradations.")


@dataclass(frozen=True)
class Board:
    """Recomputed entries scored on one dataset under one metric spec (sorted by name)."""

    suite: str
    split: str
    fingerprint: str
    pairs: int
    metric_spec: dict[str, Any]
    entries: tuple[dict[str, Any], ...]

    @property
    def source(self) -> str:
        """The clean images' source as the entries record it (``CBSD68 (source fingerprint aaccb3e0089d)``), or ""."""
        d = next((e["dataset"] for e in self.entries if e["dataset"].get("source")), None)
        if d is None:
            return ""
        name = d["source"].rstrip("/").rsplit("/", 1)[-1]
        return f"{name} (source fingerprint {d['source_fingerprint'][:12]})" if d.get("source_fingerprint") else name

    @property
    def slug(self) -> str:
        """A stable file-name prefix: suite, split, fingerprint and spec hash (8 hex digits each)."""
        spec = hashlib.sha256(json.dumps(self.metric_spec, sort_keys=True).encode()).hexdigest()
        return f"{self.suite}-{self.split}-{self.fingerprint[:8]}-{spec[:8]}"

    @property
    def metrics(self) -> list[str]:
        """The per-image metrics of the board, in the entries' order (the first one ranks the overall table)."""
        return list(self.entries[0]["results"]["overall"])

    def higher_is_better(self, metric: str) -> bool:
        return bool(self.metric_spec[metric]["higher_is_better"])

    def keys(self, group: str) -> list[str]:
        """The cells of a result group (e.g. per_degradation) present in every entry of the board, sorted."""
        common = set.intersection(*(set(e["results"].get(group, {})) for e in self.entries))
        return sorted(common)


def boards(entries: list[dict[str, Any]]) -> tuple[list[Board], list[dict[str, Any]]]:
    """Split entries into boards (recomputed; sorted by suite and split, then the larger board first, then fingerprint
    and spec) and self-reported ones."""
    grouped: dict[tuple[str, str, str, str], list[dict[str, Any]]] = {}
    self_reported = []
    for entry in sorted(entries, key=lambda e: e["name"]):
        if entry["provenance"] != "recomputed":
            self_reported.append(entry)
            continue
        d = entry["dataset"]
        key = (d["suite"], d["split"], d["fingerprint"], json.dumps(entry["metric_spec"], sort_keys=True))
        grouped.setdefault(key, []).append(entry)
    order = sorted(grouped.items(), key=lambda kv: (kv[0][0], kv[0][1], -kv[1][0]["dataset"]["pairs"], kv[0][2], kv[0][3]))
    result = [Board(suite=k[0], split=k[1], fingerprint=k[2], pairs=members[0]["dataset"]["pairs"],
                    metric_spec=members[0]["metric_spec"], entries=tuple(members))
              for k, members in order]
    return result, self_reported


def tie_groups(stats: dict[str, dict[str, Any]], higher_is_better: bool) -> dict[str, int]:
    """Competition rank of each name's tied-rank group (``RANK_RULE``) from ``{name: {"mean", "ci95"}}``."""
    order = sorted(stats, key=lambda n: (-stats[n]["mean"] if higher_is_better else stats[n]["mean"], n))
    ranks: dict[str, int] = {}
    leader = None
    for position, name in enumerate(order, start=1):
        if leader is None or not overlaps(stats[leader], stats[name]):
            leader, rank = name, position
        ranks[name] = rank
    return ranks


def cell_ranks(board: Board, metric: str, group: str, key: str | None = None) -> dict[str, int]:
    """Tied-group ranks of the board's entries for ``metric`` in one cell (``group`` overall, or group + key)."""
    def stat(entry: dict[str, Any]) -> dict[str, Any]:
        results = entry["results"][group]
        return results[metric] if key is None else results[key][metric]

    return tie_groups({e["name"]: stat(e) for e in board.entries}, board.higher_is_better(metric))


def mean_ranks(board: Board, metric: str) -> dict[str, float]:
    """Each entry's mean over the board's degradations of its tied-group rank for ``metric``."""
    degradations = board.keys("per_degradation")
    per_cell = [cell_ranks(board, metric, "per_degradation", d) for d in degradations]
    return {e["name"]: sum(r[e["name"]] for r in per_cell) / len(per_cell) for e in board.entries}
