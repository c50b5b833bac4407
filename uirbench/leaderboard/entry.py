"""The leaderboard entry schema: what one scored model on one dataset is, validated on load.

An entry (JSON) holds the model (name, checkpoint hash, parameter count), the runtime and device,
the dataset (suite, split, fingerprint, pairs), the metric spec (colour space, crop, data range,
averaging, quantisation), and results: per-image-metric means with bootstrap 95% CIs overall, per
track, per degradation, per severity and per degradation x severity. ``provenance`` is
``recomputed`` (scored by uirbench from restored images or a model run) or ``self-reported``
(numbers only: shown apart, never ranked with recomputed entries).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

SCHEMA_VERSION = 1
PROVENANCES = ("recomputed", "self-reported")
RESULT_GROUPS = ("overall", "per_track", "per_degradation", "per_severity", "per_degradation_severity")

_TOP = {"schema_version", "name", "provenance", "model", "runtime", "dataset", "metric_spec", "results", "set_metrics", "commands"}
_MODEL = {"name", "checkpoint_sha256", "parameters"}
_RUNTIME = {"device", "mean_ms_per_image", "images_per_second"}
_DATASET = {"suite", "split", "fingerprint", "pairs"}
_STAT = {"mean", "ci95", "n"}


class EntryError(ValueError):
    """An entry that does not follow the schema; the message names the file and the field."""


def entry_from_summary(summary: dict[str, Any], name: str | None = None, commands: list[str] | None = None) -> dict[str, Any]:
    """A recomputed entry from ``evaluate``'s summary (validated before it is returned)."""
    entry = {
        "schema_version": SCHEMA_VERSION,
        "name": name or summary["model"]["name"],
        "provenance": "recomputed",
        "model": {k: summary["model"][k] for k in ("name", "checkpoint_sha256", "parameters")},
        "runtime": {k: summary["runtime"][k] for k in ("device", "mean_ms_per_image", "images_per_second")},
        "dataset": {k: summary["dataset"][k] for k in ("suite", "split", "fingerprint", "pairs")},
        "metric_spec": summary["metric_spec"],
        "results": {group: summary[group] for group in RESULT_GROUPS},
        "set_metrics": summary.get("set_metrics", {}),
        "commands": commands if commands is not None else [c for c in [summary.get("command")] if c],
    }
    validate_entry(entry)
    return entry


def _fields(obj: Any, expected: set[str], where: str, optional: set[str] = frozenset()) -> None:
    if not isinstance(obj, dict):
        raise EntryError(f"{where}: expected an object, got {type(obj).__name__}")
    unknown, missing = sorted(set(obj) - expected), sorted(expected - optional - set(obj))
    if unknown:
        raise EntryError(f"{where}: unknown field(s) {', '.join(unknown)}; valid: {', '.join(sorted(expected))}")
    if missing:
        raise EntryError(f"{where}: missing field(s) {', '.join(missing)}")


def _number(value: Any, where: str, allow_none: bool = False) -> None:
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise EntryError(f"{where}: expected a finite number, got {value!r}")


def _stat(obj: Any, where: str, recomputed: bool) -> None:
    _fields(obj, _STAT, where, optional=set() if recomputed else {"ci95", "n"})
    _number(obj["mean"], f"{where}.mean")
    ci = obj.get("ci95")
    if recomputed or ci is not None:
        if not (isinstance(ci, list) and len(ci) == 2):
            raise EntryError(f"{where}.ci95: expected [low, high], got {ci!r}")
        for i, v in enumerate(ci):
            _number(v, f"{where}.ci95[{i}]")
        if not ci[0] <= obj["mean"] <= ci[1]:
            raise EntryError(f"{where}: mean {obj['mean']} lies outside its ci95 {ci}")
    if obj.get("n") is not None and (not isinstance(obj["n"], int) or obj["n"] < 1):
        raise EntryError(f"{where}.n: expected a positive integer, got {obj['n']!r}")


def validate_entry(entry: Any, where: str = "entry") -> dict[str, Any]:
    """Raise :class:`EntryError` naming ``where`` and the field unless ``entry`` follows the schema."""
    _fields(entry, _TOP, where, optional={"set_metrics", "commands"})
    if entry["schema_version"] != SCHEMA_VERSION:
        raise EntryError(f"{where}.schema_version: expected {SCHEMA_VERSION}, got {entry['schema_version']!r}")
    if not isinstance(entry["name"], str) or not entry["name"].strip() or "/" in entry["name"]:
        raise EntryError(f"{where}.name: expected a non-empty name without '/', got {entry['name']!r}")
    if entry["provenance"] not in PROVENANCES:
        raise EntryError(f"{where}.provenance: expected one of {', '.join(PROVENANCES)}, got {entry['provenance']!r}")
    recomputed = entry["provenance"] == "recomputed"
    _fields(entry["model"], _MODEL, f"{where}.model", optional={"checkpoint_sha256", "parameters"})
    _fields(entry["runtime"], _RUNTIME, f"{where}.runtime", optional={"mean_ms_per_image", "images_per_second"})
    for key in ("mean_ms_per_image", "images_per_second"):
        _number(entry["runtime"].get(key), f"{where}.runtime.{key}", allow_none=True)
    _fields(entry["dataset"], _DATASET, f"{where}.dataset", optional=set() if recomputed else {"fingerprint", "pairs"})
    if not isinstance(entry["metric_spec"], dict) or "averaging" not in entry["metric_spec"]:
        raise EntryError(f"{where}.metric_spec: expected an object stating at least 'averaging'")
    _fields(entry["results"], set(RESULT_GROUPS), f"{where}.results", optional=set(RESULT_GROUPS) - {"overall"})
    for group, value in entry["results"].items():
        if group == "overall":
            for metric, stat in value.items():
                _stat(stat, f"{where}.results.overall.{metric}", recomputed)
        else:
            for key, stats in value.items():
                for metric, stat in stats.items():
                    _stat(stat, f"{where}.results.{group}.{key}.{metric}", recomputed)
    return entry


def _refuse_constant(token: str) -> Any:
    raise EntryError(f"non-finite number {token} (NaN/Infinity are not valid in entries)")


def load_entry(path: str | Path) -> dict[str, Any]:
    """Read and validate an entry file; errors name the file."""
    path = Path(path)
    try:
        entry = json.loads(path.read_text(encoding="utf-8"), parse_constant=_refuse_constant)
    except EntryError as exc:
        raise EntryError(f"{path}: {exc}") from exc
    except (OSError, json.JSONDecodeError) as exc:
        raise EntryError(f"{path}: not a readable JSON entry ({exc})") from exc
    return validate_entry(entry, where=str(path))
