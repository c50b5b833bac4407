"""Dataset card of a generated dataset: README.md (counts, licences, command, difficulty) + samples.png.

The difficulty table is the mean PSNR/SSIM of the *degraded inputs* against their clean targets
per degradation x severity on the test split (RGB, no border crop, data range 1, SSIM 11x11
Gaussian sigma 1.5; mean of per-image scores), so difficulty is comparable across types and the
``identity`` model's score can be checked against it.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from uirbench.io import read_image, write_bytes
from uirbench.manifest import FINGERPRINT_RECIPE, RECIPE_TEXT, load_manifest

CONVENTION = "RGB, crop 0, data range 1, SSIM 11x11 Gaussian sigma 1.5 (population covariance); mean of per-image scores"


def severity_label(row: dict[str, Any]) -> str:
    return f"s{row['severity']}" if row["severity"] > 0 else row["range"]


def difficulty(rows: list[dict[str, Any]]) -> list[tuple[str, str, int, float, float]]:
    """(degradation, severity label, pairs, mean input PSNR, mean input SSIM) sorted by name and level."""
    groups: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        groups[(row["degradation"], severity_label(row))].append(row)
    table = []
    for (name, level), members in sorted(groups.items()):
        psnr = float(np.mean([r["input_psnr"] for r in members]))
        ssim = float(np.mean([r["input_ssim"] for r in members]))
        table.append((name, level, len(members), psnr, ssim))
    return table


def _markdown_table(header: list[str], rows: list[list[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def write_card(out: Path) -> None:
    meta = json.loads((out / "suite.json").read_text())
    fingerprint = json.loads((out / "fingerprint.json").read_text())
    splits = sorted(fingerprint["pairs"])
    manifests = {split: load_manifest(out, split) for split in splits}
    parts = [
        f"# uirbench dataset: suite `{meta['suite']['name']}`\n",
        f"{meta['suite']['description']}\n",
        f"- command: `{meta.get('command') or 'uirbench generate'}`",
        f"- source: `{meta['source']}`, seed {meta['seed']}, image limit {meta['limit']}",
        f"- fingerprint: `{fingerprint['fingerprint']}` (recipe `{FINGERPRINT_RECIPE}`, below)",
        f"- versions: {', '.join(f'{k} {v}' for k, v in meta['versions'].items())}\n",
        "Load it with `datasets.load_dataset(\"imagefolder\", data_dir=THIS_FOLDER)`: columns `input` and `target` "
        "(images) plus the metadata (`degradation`, `severity`, `params` as JSON, hashes, input PSNR/SSIM).\n",
        "## Pairs per split\n",
        _markdown_table(["split", "clean images", "pairs"],
                        [[s, len({r["image_id"] for r in manifests[s]}), len(manifests[s])] for s in splits]),
        "\n## Pairs per degradation and severity\n",
    ]
    counts: Counter[tuple[str, str, str]] = Counter()
    for split, rows in manifests.items():
        counts.update((split, r["degradation"], severity_label(r)) for r in rows)
    parts.append(_markdown_table(["split", "degradation", "severity", "pairs"],
                                 [[*key, n] for key, n in sorted(counts.items())]))
    licences = sorted({(r["source"], r["license"]) for rows in manifests.values() for r in rows})
    parts += ["\n## Sources and licences\n", _markdown_table(["source", "licence"], [list(x) for x in licences])]
    parts += ["\n## Identity\n", RECIPE_TEXT]
    if "test" in manifests:
        parts += [f"\n## Difficulty (test split; degraded input vs clean; {CONVENTION})\n",
                  _markdown_table(["degradation", "severity", "pairs", "input PSNR (dB)", "input SSIM"],
                                  [[n, lvl, k, f"{p:.2f}", f"{s:.4f}"]
                                   for n, lvl, k, p, s in difficulty(manifests["test"])])]
        if write_samples(out, manifests["test"]):
            parts.append("\n![one test image under every degradation and severity](samples.png)\n")
    write_bytes(out / "README.md", ("\n".join(parts) + "\n").encode())


def write_samples(out: Path, rows: list[dict[str, Any]], thumb: int = 160) -> bool:
    """A grid of the first test image under every (degradation, severity level) of the test split."""
    import cv2
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if not rows:
        return False
    first = min(r["image_id"] for r in rows)
    mine = [r for r in rows if r["image_id"] == first and r["copy"] == 0]
    names = sorted({r["degradation"] for r in mine}, key=lambda n: ("+" in n, n))  # single families first
    levels = sorted({severity_label(r) for r in mine}, key=lambda s: (not s.startswith("s"), s))
    cells = {(r["degradation"], severity_label(r)): r["input_file_name"] for r in mine}
    fig, axes = plt.subplots(len(names), len(levels) + 1, figsize=(1.6 * (len(levels) + 1), 1.3 * len(names)), squeeze=False)
    target = read_image(out / "test" / mine[0]["target_file_name"])
    scale = thumb / max(target.shape[:2])
    size = (max(1, round(target.shape[1] * scale)), max(1, round(target.shape[0] * scale)))
    for i, name in enumerate(names):
        for j, level in enumerate(["clean", *levels]):
            ax = axes[i][j]
            ax.axis("off")
            if i == 0:
                ax.set_title(level, fontsize=8)
            rel = cells.get((name, level))
            if level == "clean":
                img = target
            elif rel:
                img = read_image(out / "test" / rel)
            else:
                continue
            ax.imshow(cv2.resize(img, size, interpolation=cv2.INTER_AREA))
        axes[i][0].text(-0.05, 0.5, name, transform=axes[i][0].transAxes, ha="right", va="center", fontsize=7)
    fig.suptitle(f"{first}: test pairs by degradation (rows) and severity (columns)", fontsize=9)
    fig.tight_layout()
    import io

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, metadata={"Software": None})
    plt.close(fig)
    write_bytes(out / "samples.png", buf.getvalue())
    return True
