"""The leaderboard entry schema: what one scored model on one dataset is, validated on load.

An entry (JSON) holds the model (name, checkpoint hash, parameter count), the runtime and device,
the dataset (suite, split, fingerprint, pairs), the metric spec (colour space, crop, data range,
averaging, quantisation), and results: per-image-metric means with bootstrap 95% CIs overall, per
track, per degradation, per severity and per degradation x severity; set-level metrics (FID/KID with
their N); the exact ``commands`` that made it. ``provenance`` is ``recomputed`` (scored by uirbench
from restored images or a model run; a ``submission`` also records the sha256 of the restored set)
or ``self-reported`` (numbers only, with the ``source`` they were copied from: shown apart, never
ranked with recomputed entries).

A leaderboard folder holds one ``<name>.json`` per entry (:func:`load_entries`); names are file
names, so they are restricted to letters, digits and ``. _ + -``.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

from uirbench.errors import UserError

SCHEMA_VERSION = 1
ENTRIES_DIR = "leaderboard/entries"
"""Default entries folder (relative to the repository root); the rendered board goes to its parent."""
LEADERBOARD_DIR = "leaderboard"
PROVENANCES = ("recomputed", "self-reported")
RESULT_GROUPS = ("overall", "per_track", "per_degradation", "per_severity", "per_degradation_severity")

_TOP = {"schema_version", "name", "provenance", "model", "runtime", "dataset", "metric_spec", "results", "set_metrics", "commands",
        "submission", "source"}
_OPTIONAL_TOP = {"set_metrics", "commands", "submission", "source"}
_MODEL = {"name", "checkpoint_sha256", "parameters", "options"}
_RUNTIME = {"device", "mean_ms_per_image", "images_per_second"}
_DATASET = {"suite", "split", "fingerprint", "pairs", "source", "source_fingerprint"}
_STAT = {"mean", "ci95", "n"}
_SUBMISSION = {"sha256", "images"}
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,63}")


class EntryError(UserError):
    """An entry that does not follow the schema; the message names the file and the field."""


def entry_from_summary(summary: dict[str, Any], name: str | None = None, commands: list[str] | None = None,
                       submission: dict[str, Any] | None = None) -> dict[str, Any]:
    """A recomputed entry from ``evaluate``'s summary (validated before it is returned).

    ``submission`` (``{"sha256", "images"}``) identifies the restored image set of ``uirbench submit``.
    """
    entry = {
        "schema_version": SCHEMA_VERSION,
        "name": name or summary["model"]["name"],
        "provenance": "recomputed",
        "model": {k: summary["model"][k] for k in ("name", "checkpoint_sha256", "parameters", "options") if k in summary["model"]},
        "runtime": {k: summary["runtime"][k] for k in ("device", "mean_ms_per_image", "images_per_second") if k in summary["runtime"]},
        "dataset": {k: summary["dataset"][k] for k in ("suite", "split", "fingerprint", "pairs", "source", "source_fingerprint")
                    if k in summary["dataset"]},
        "metric_spec": summary["metric_spec"],
        "results": {group: summary[group] for group in RESULT_GROUPS},
        "set_metrics": summary.get("set_metrics", {}),
        "commands": commands if commands is not None else summary.get("commands") or [c for c in [summary.get("command")] if c],
    }
    if submission is not None:
        entry["submission"] = submission
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


def _object(obj: Any, where: str) -> dict[str, Any]:
    if not isinstance(obj, dict):
        raise EntryError(f"{where}: expected an object, got {type(obj).__name__}")
    return obj


def _metrics(stats: Any, spec: dict[str, Any], where: str, recomputed: bool) -> None:
    """``{metric: stat}``; a recomputed entry states each metric's conventions (with higher_is_better) in its spec."""
    for metric, stat in _object(stats, where).items():
        conventions = spec.get(metric)
        if recomputed and not (isinstance(conventions, dict) and isinstance(conventions.get("higher_is_better"), bool)):
            raise EntryError(f"{where}.{metric}: metric_spec.{metric} must state its conventions, including higher_is_better")
        _stat(stat, f"{where}.{metric}", recomputed)


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
    if obj.get("n") is not None and (isinstance(obj["n"], bool) or not isinstance(obj["n"], int) or obj["n"] < 1):
        raise EntryError(f"{where}.n: expected a positive integer, got {obj['n']!r}")


def validate_entry(entry: Any, where: str = "entry") -> dict[str, Any]:
    """Raise :class:`EntryError` naming ``where`` and the field unless ``entry`` follows the schema."""
    _fields(entry, _TOP, where, optional=_OPTIONAL_TOP)
    if entry["schema_version"] != SCHEMA_VERSION:
        raise EntryError(f"{where}.schema_version: expected {SCHEMA_VERSION}, got {entry['schema_version']!r}")
    check_name(entry["name"], f"{where}.name")
    if entry["provenance"] not in PROVENANCES:
        raise EntryError(f"{where}.provenance: expected one of {', '.join(PROVENANCES)}, got {entry['provenance']!r}")
    recomputed = entry["provenance"] == "recomputed"
    if recomputed and "source" in entry:
        raise EntryError(f"{where}.source: only self-reported entries cite a source; recomputed ones record their commands")
    if not recomputed and not (isinstance(entry.get("source"), str) and entry["source"].strip()):
        raise EntryError(f"{where}.source: a self-reported entry must say where its numbers come from (paper, table, URL)")
    if not recomputed and "submission" in entry:
        raise EntryError(f"{where}.submission: only recomputed entries are scored from a submitted image set")
    if "submission" in entry:
        _fields(entry["submission"], _SUBMISSION, f"{where}.submission")
        if not (isinstance(entry["submission"]["sha256"], str) and re.fullmatch(r"[0-9a-f]{64}", entry["submission"]["sha256"])):
            raise EntryError(f"{where}.submission.sha256: expected 64 lowercase hex digits")
    commands = entry.get("commands", [])
    if not (isinstance(commands, list) and all(isinstance(c, str) and c.strip() for c in commands)):
        raise EntryError(f"{where}.commands: expected a list of non-empty command lines, got {commands!r}")
    _fields(entry["model"], _MODEL, f"{where}.model", optional={"checkpoint_sha256", "parameters", "options"})
    _object(entry["model"].get("options", {}), f"{where}.model.options")
    _fields(entry["runtime"], _RUNTIME, f"{where}.runtime", optional={"mean_ms_per_image", "images_per_second"})
    for key in ("mean_ms_per_image", "images_per_second"):
        _number(entry["runtime"].get(key), f"{where}.runtime.{key}", allow_none=True)
    _fields(entry["dataset"], _DATASET, f"{where}.dataset",
            optional={"source", "source_fingerprint"} | (set() if recomputed else {"fingerprint", "pairs"}))
    for key in ("source", "source_fingerprint"):
        if key in entry["dataset"] and not (isinstance(entry["dataset"][key], str) and entry["dataset"][key]):
            raise EntryError(f"{where}.dataset.{key}: expected a non-empty string, got {entry['dataset'][key]!r}")
    if not isinstance(entry["metric_spec"], dict) or "averaging" not in entry["metric_spec"]:
        raise EntryError(f"{where}.metric_spec: expected an object stating at least 'averaging'")
    # uirbench's summary has every group; numbers copied from a paper may have only some
    _fields(entry["results"], set(RESULT_GROUPS), f"{where}.results", optional=set() if recomputed else set(RESULT_GROUPS) - {"overall"})
    for group, value in entry["results"].items():
        if group == "overall":
            _metrics(value, entry["metric_spec"], f"{where}.results.overall", recomputed)
        else:
            for key, stats in _object(value, f"{where}.results.{group}").items():
                _metrics(stats, entry["metric_spec"], f"{where}.results.{group}.{key}", recomputed)
    for metric, value in _object(entry.get("set_metrics", {}), f"{where}.set_metrics").items():
        _fields(value, {"overall", "per_degradation"}, f"{where}.set_metrics.{metric}")
        points = [("overall", value["overall"])]
        points += [(f"per_degradation.{k}", v) for k, v in _object(value["per_degradation"], f"{where}.set_metrics.{metric}").items()]
        for key, point in points:
            _fields(point, {"value", "n"}, f"{where}.set_metrics.{metric}.{key}")
            _number(point["value"], f"{where}.set_metrics.{metric}.{key}.value")
            if isinstance(point["n"], bool) or not isinstance(point["n"], int) or point["n"] < 1:
                raise EntryError(f"{where}.set_metrics.{metric}.{key}.n: expected a positive integer, got {point['n']!r}")
    return entry


def check_name(name: Any, where: str = "name") -> str:
    """Return ``name`` if it can name an entry file (``<name>.json``), else raise :class:`EntryError`."""
    if not isinstance(name, str) or not NAME_PATTERN.fullmatch(name):
        raise EntryError(f"{where}: expected 1-64 letters, digits or . _ + - (starting with a letter or digit), got {name!r}")
    return name


def _refuse_constant(token: str) -> Any:
    raise EntryError(f"non-finite number {token} (NaN/Infinity are not valid in entries)")


def _refuse_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [k for k, _ in pairs]
    duplicated = sorted({k for k in keys if keys.count(k) > 1})
    if duplicated:
        raise EntryError(f"duplicate field(s) {', '.join(duplicated)} (the JSON would silently keep the last one)")
    return dict(pairs)


def load_entry(path: str | Path) -> dict[str, Any]:
    """Read and validate an entry file; errors name the file."""
    path = Path(path)
    try:
        entry = json.loads(path.read_text(encoding="utf-8"), parse_constant=_refuse_constant,
                           object_pairs_hook=_refuse_duplicates)
    except EntryError as exc:
        raise EntryError(f"{path}: {exc}") from exc
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise EntryError(f"{path}: not a readable JSON entry ({exc})") from exc
    return validate_entry(entry, where=str(path))


def load_entries(folder: str | Path) -> list[dict[str, Any]]:
    """Every ``*.json`` entry of a leaderboard folder, validated, sorted by name; each file is named ``<name>.json``."""
    folder = Path(folder)
    if not folder.is_dir():
        raise EntryError(f"--entries {folder}: no such folder (it holds one <name>.json per entry)")
    entries = []
    for path in sorted(folder.glob("*.json")):
        entry = load_entry(path)
        if path.stem != entry["name"]:
            raise EntryError(f"{path}: holds entry {entry['name']!r}; rename the file to {entry['name']}.json")
        entries.append(entry)
    return entries
