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

from uirbench.io import encode_png, read_image, write_bytes
from uirbench.manifest import FINGERPRINT_RECIPE, RECIPE_TEXT, load_manifest, source_fingerprint

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


MAX_SOURCE_ROWS = 20


def _sources(manifests: dict[str, list[dict[str, Any]]]) -> list[list[Any]]:
    """(source, licence, pairs) rows; past ``MAX_SOURCE_ROWS`` distinct sources (an imported set records one source
    file per pair), grouped by the source's prefix before ``:`` so the card stays readable."""
    counts = Counter((r["source"], r["license"]) for rows in manifests.values() for r in rows)
    if len(counts) > MAX_SOURCE_ROWS:
        grouped: Counter[tuple[str, str]] = Counter()
        for (source, licence), n in counts.items():
            grouped[(source.split(":")[0] + (":*" if ":" in source else ""), licence)] += n
        counts = grouped
    return [[source, licence, n] for (source, licence), n in sorted(counts.items())]


def write_card(out: Path) -> None:
    meta = json.loads((out / "suite.json").read_text())
    fingerprint = json.loads((out / "fingerprint.json").read_text())
    splits = sorted(fingerprint["pairs"])
    manifests = {split: load_manifest(out, split) for split in splits}
    parts = [
        f"# uirbench dataset: suite `{meta['suite']['name']}`\n",
        f"{meta['suite']['description']}\n",
        f"- command: `{meta['command']}`" if meta.get("command") else "- command: not recorded",
        f"- source: `{meta['source']}`, seed {meta['seed']}" + (f", image limit {meta['limit']}" if meta.get("limit") else ""),
        f"- source fingerprint: `{source_fingerprint(meta['images'])}` ({len(meta['images'])} clean images; "
        "`uirbench.manifest.source_fingerprint`)" if meta.get("images") else "- source fingerprint: not recorded",
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
    parts += ["\n## Sources and licences\n", _markdown_table(["source", "licence", "pairs"], _sources(manifests))]
    parts += ["\n## Identity\n", RECIPE_TEXT]
    if "test" in manifests:
        parts += [f"\n## Difficulty (test split; degraded input vs clean; {CONVENTION})\n",
                  _markdown_table(["degradation", "severity", "pairs", "input PSNR (dB)", "input SSIM"],
                                  [[n, lvl, k, f"{p:.2f}", f"{s:.4f}"]
                                   for n, lvl, k, p, s in difficulty(manifests["test"])])]
        if write_samples(out, manifests["test"]):
            parts.append("\n![one test image under every degradation and severity](samples.png)\n")
    write_bytes(out / "README.md", ("\n".join(parts) + "\n").encode())


def write_samples(out: Path, rows: list[dict[str, Any]], thumb: int = 128) -> bool:
    """A grid of the first test image under every (degradation, severity level) of the test split.

    Drawn with Pillow on a numpy canvas (thumbnails by OpenCV area averaging): no plotting library,
    whose figure setup took 2-3 s of a 25 s generate run.
    """
    import cv2
    from PIL import Image, ImageDraw, ImageFont

    if not rows:
        return False
    first = min(r["image_id"] for r in rows)
    mine = [r for r in rows if r["image_id"] == first and r["copy"] == 0]
    names = sorted({r["degradation"] for r in mine}, key=lambda n: ("+" in n, n))  # single families first
    levels = sorted({severity_label(r) for r in mine}, key=lambda s: (not s.startswith("s"), s))
    cells = {(r["degradation"], severity_label(r)): r["input_file_name"] for r in mine}
    target = read_image(out / "test" / mine[0]["target_file_name"])
    scale = thumb / max(target.shape[:2])
    width, height = max(1, round(target.shape[1] * scale)), max(1, round(target.shape[0] * scale))
    font = ImageFont.load_default()  # Pillow's own font: no font file to find, the same glyphs everywhere
    title = f"{first}: test pairs by degradation (rows) and severity (columns)"
    gap, line = 6, 16
    left = gap + max(round(font.getlength(name)) for name in names) + gap
    top = 2 * line + gap
    columns = ["clean", *levels]
    canvas = np.full((top + len(names) * (height + gap), left + len(columns) * (width + gap), 3), 255, np.uint8)
    for i, name in enumerate(names):
        for j, level in enumerate(columns):
            rel = cells.get((name, level))
            if level != "clean" and not rel:
                continue
            img = target if level == "clean" else read_image(out / "test" / rel)
            y, x = top + i * (height + gap), left + j * (width + gap)
            canvas[y:y + height, x:x + width] = cv2.resize(img, (width, height), interpolation=cv2.INTER_AREA)
    picture = Image.fromarray(canvas)
    draw = ImageDraw.Draw(picture)

    def label(text: str, x: int, y: int, align: float) -> None:  # text centred on y, its left..right edge at align 0..1 on x
        x0, y0, x1, y1 = font.getbbox(text)
        draw.text((round(x - align * (x1 - x0)) - x0, round(y - (y0 + y1) / 2)), text, fill="black", font=font)

    label(title, canvas.shape[1] // 2, line // 2, 0.5)
    for j, level in enumerate(columns):
        label(level, left + j * (width + gap) + width // 2, line + line // 2, 0.5)
    for i, name in enumerate(names):
        label(name, left - gap, top + i * (height + gap) + height // 2, 1.0)
    write_bytes(out / "samples.png", encode_png(np.asarray(picture)))
    return True
