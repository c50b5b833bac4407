"""The all-in-one protocols as named, fixed test sets: which sets, which pairs, which table columns.

* ``promptir-3task`` (AirNet, CVPR 2022 -> PromptIR, NeurIPS 2023 -> AdaIR): SOTS outdoor, Rain100L,
  CBSD68 with AWGN sigma 15, 25 and 50 DN.
* ``idr-5task`` (IDR, CVPR 2023; reused by InstructIR and AdaIR): Rain100L, SOTS outdoor, CBSD68 at
  sigma 25, GoPro (``blur/``), LOL-v1.
* ``cdd11`` (OneRestore, ECCV 2024): the 11 CDD-11 test folders, one column each.

Real pairs are imported with the layout rules (``public.py``); the CBSD68 noise is synthesised by
uirbench's seeded AWGN (``awgn`` severities 2/3/5 = sigma 15/25/50), rounded, not truncated, drawn
per (protocol, seed, image, pair) and so the same for everyone. The papers drew it with
``np.random.seed(0)`` image by image in ``os.listdir`` order (file-system dependent) and truncated it
to uint8: their noisy inputs cannot be reproduced, their noise statistics can. One protocol is one
dataset (suite = protocol name, split ``test``), so one ``uirbench evaluate`` scores every column.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from uirbench.errors import UnknownNameError, UserError
from uirbench.external.conventions import PROMPTIR
from uirbench.external.importer import find_pairs, refuse_problems
from uirbench.external.layouts import LayoutOptions, images
from uirbench.external.public import CDD11_FOLDERS, cdd11_label
from uirbench.external.writer import DatasetInfo, PlannedPair, pair_id, write_dataset

CBSD68_LICENSE = "Berkeley Segmentation Dataset (Martin et al., ICCV 2001): research use"


@dataclass(frozen=True)
class Task:
    """One test set of a protocol: the track of its pairs, the flag naming its folder, and how its pairs are made:
    imported with ``layout``, or AWGN at ``severity`` drawn on the clean images of the folder."""

    track: str
    flag: str
    layout: str | None = None
    severity: int | None = None


@dataclass(frozen=True)
class Column:
    """A column of the published table: its title and the result cell it reads (``per_track`` or ``per_degradation``)."""

    title: str
    group: str
    key: str


@dataclass(frozen=True)
class Protocol:
    """A protocol: its tasks, its published table's columns (in order), the convention its papers scored with."""

    name: str
    description: str
    tasks: tuple[Task, ...]
    columns: tuple[Column, ...]
    paper_convention: str | None
    scoring: str


_NOISE = {15: 2, 25: 3, 50: 5}  # sigma (DN) -> awgn severity
_PROMPTIR_SCORING = ("the AirNet/PromptIR/AdaIR test scripts: input and ground truth centre-cropped to a multiple of 16, "
                     "unquantised output, scikit-image 0.19 PSNR and 7x7 uniform SSIM on RGB (convention promptir)")

PROTOCOLS: dict[str, Protocol] = {p.name: p for p in (
    Protocol("promptir-3task", "3-task all-in-one protocol (AirNet, PromptIR, AdaIR): SOTS outdoor, Rain100L, CBSD68 AWGN sigma 15/25/50",
             (Task("sots-outdoor", "sots", "sots-outdoor"), Task("rain100l", "rain100l", "rain100l"),
              *(Task(f"cbsd68-s{s}", "cbsd68", severity=_NOISE[s]) for s in (15, 25, 50))),
             (Column("SOTS", "per_track", "sots-outdoor"), Column("Rain100L", "per_track", "rain100l"),
              *(Column(f"CBSD68 σ={s}", "per_track", f"cbsd68-s{s}") for s in (15, 25, 50))),
             PROMPTIR, _PROMPTIR_SCORING),
    Protocol("idr-5task", "5-task all-in-one protocol (IDR; InstructIR, AdaIR): Rain100L, SOTS outdoor, CBSD68 AWGN sigma 25, "
                          "GoPro (blur/), LOL-v1",
             (Task("rain100l", "rain100l", "rain100l"), Task("sots-outdoor", "sots", "sots-outdoor"),
              Task("cbsd68-s25", "cbsd68", severity=_NOISE[25]), Task("gopro", "gopro", "gopro"), Task("lol-v1", "lol", "lol-v1")),
             (Column("Rain100L", "per_track", "rain100l"), Column("SOTS", "per_track", "sots-outdoor"),
              Column("CBSD68 σ=25", "per_track", "cbsd68-s25"), Column("GoPro", "per_track", "gopro"),
              Column("LOL", "per_track", "lol-v1")),
             PROMPTIR, "AdaIR's 5-task numbers come from the PromptIR test scripts (convention promptir); the IDR table "
                       "reprinted by InstructIR (its other rows) does not state its scoring code, and InstructIR scores its own "
                       "rows with pre-generated noise (seed 42), torch PSNR and pytorch_msssim's 11x11 Gaussian SSIM"),
    Protocol("cdd11", "CDD-11 composite degradations (OneRestore): low light, haze, rain, snow and 7 combinations; snow is "
                      "unseen by uirbench's families",
             (Task("cdd11", "cdd11", "cdd11"),),
             tuple(Column(name, "per_degradation", cdd11_label(name)) for name in CDD11_FOLDERS),
             None, "the scoring code behind published CDD-11 tables is not recorded here: uirbench's convention only, "
                   "or --convention promptir to compare"),
)}


def get_protocol(name: str) -> Protocol:
    if name not in PROTOCOLS:
        raise UnknownNameError(f"unknown protocol {name!r}; valid protocols: {', '.join(PROTOCOLS)}")
    return PROTOCOLS[name]


def _noise_pairs(folder: Path, task: Task) -> list[PlannedPair]:
    """One AWGN pair per clean image of ``folder`` (CBSD68), the noise drawn when the dataset is written."""
    if not folder.is_dir() or not images(folder):
        raise UserError(f"--{task.flag} {folder}: expected a folder of clean images (CBSD68: 68 PNGs, e.g. its original_png/)")
    return [PlannedPair(pair_id(f"cbsd68-{p.stem}", task.track, "awgn", f"s{task.severity}", 0), f"cbsd68-{p.stem}", p, None,
                        "awgn", task.track, severity=task.severity, range="train", source=f"cbsd68:{p.name}",
                        license=CBSD68_LICENSE) for p in images(folder)]


def prepare(protocol: Protocol, folders: dict[str, str], out: Path, *, skip_bad: bool = False, seed: int = 0,
            command: str = "") -> dict[str, Any]:
    """Write (or resume) the protocol's dataset in ``out`` from the sets' folders (``{flag: folder}``)."""
    needed = sorted({t.flag for t in protocol.tasks})
    missing = [f for f in needed if not folders.get(f)]
    if missing:
        raise UserError(f"protocol {protocol.name} needs {' '.join(f'--{f} DIR' for f in missing)} (its sets: {', '.join(needed)}); "
                        "`uirbench import --help` says where each set is obtained and which files it expects")
    extra = sorted(f for f, v in folders.items() if v and f not in needed)
    if extra:
        raise UserError(f"{', '.join('--' + f for f in extra)}: protocol {protocol.name} does not use it (its sets: {', '.join(needed)})")
    planned, problems, notes = [], [], []
    for task in protocol.tasks:
        if task.layout is None:
            planned += _noise_pairs(Path(folders[task.flag]), task)
        else:
            pairs, found, said = find_pairs(task.layout, folders[task.flag], LayoutOptions())
            planned, problems, notes = planned + pairs, problems + [f"{task.layout}: {p}" for p in found], notes + said
    if not skip_bad:
        refuse_problems(problems, f"protocol {protocol.name}")
    info = DatasetInfo(suite=protocol.name, description=protocol.description, split="test", seed=seed, command=command,
                       source=", ".join(f"--{f} {folders[f]}" for f in needed))
    return {**write_dataset(out, info, planned, problems, skip_bad), "notes": notes}
