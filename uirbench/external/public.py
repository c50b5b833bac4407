"""Layout rules of the public paired test sets of the all-in-one protocols, with their quirks.

Each rule reads the layout its publisher ships and the repackagings that circulate (Restormer,
MPRNet, PromptIR put many sets in ``input/`` + ``target/`` with identical names). Sources of the
sets and of the layouts: ``LAYOUTS.spec(name)`` (``paper``, ``url``, ``license``) and ``uirbench import --help``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

from uirbench.errors import UserError
from uirbench.external.layouts import LAYOUTS, Found, LayoutOptions, SourcePair, folder, images, index, match, track_of
from uirbench.io import IMAGE_SUFFIXES

UNSTATED = "not stated by the publisher (research use); check the terms where you obtained it"


def number_id(stem: str) -> str:
    """The last group of digits of a file stem, zero-padded to 3 (``rain-7`` and ``norain-007`` -> ``007``)."""
    digits = re.findall(r"\d+", stem)
    return f"{int(digits[-1]):03d}" if digits else stem


def _same_names(root: Path, inputs: Path, targets: Path, found: Found, make: Callable[[str, Path, Path], SourcePair]) -> Found:
    """Pairs of two folders by identical file stems."""
    match(index(images(inputs), lambda p: p.stem, root, found), index(images(targets), lambda p: p.stem, root, found),
          root, found, make)
    return found


@LAYOUTS.register("rain100l", expects="rain-NNN.png + norain-NNN.png anywhere under SOURCE (e.g. in rainy/), or the Restormer/MPRNet "
                                      "repackaging SOURCE/input/*.png + SOURCE/target/*.png with identical names",
                  paper="Yang et al., Deep Joint Rain Detection and Removal from a Single Image, CVPR 2017 (Rain100L: 100 test pairs)",
                  url="https://www.icst.pku.edu.cn/struct/Projects/joint_rain_removal.html", license=UNSTATED)
def rain100l(root: Path, options: LayoutOptions) -> Found:
    found = Found()

    def make(key: str, rainy: Path, clean: Path) -> SourcePair:
        return SourcePair(rainy, clean, f"rain100l-{number_id(clean.stem)}", "rain", "rain100l")

    if (root / "input").is_dir() and (root / "target").is_dir():
        found.notes.append("rain100l: the input/ + target/ repackaging (pairs by identical names)")
        return _same_names(root, root / "input", root / "target", found, make)
    files = [p for p in sorted(root.rglob("*")) if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith(".")]
    rainy = index([p for p in files if re.fullmatch(r"rain-\d+", p.stem)], lambda p: number_id(p.stem), root, found)
    clean = index([p for p in files if re.fullmatch(r"norain-\d+", p.stem)], lambda p: number_id(p.stem), root, found)
    if not rainy and not clean:
        raise UserError(f"{root}: no rain-NNN/norain-NNN images and no input/ + target/ folders; layout rain100l expects "
                        f"{LAYOUTS.spec('rain100l').expects}")
    match(rainy, clean, root, found, make)
    return found


SOTS_FOLDERS = (("hazy", "gt"), ("input", "target"))


@LAYOUTS.register("sots-outdoor", expects="SOURCE/hazy/NNNN_A_beta.(png|jpg) (one or several per clean image) + SOURCE/gt/NNNN.png "
                                          "(RESIDE), or the same names in SOURCE/input/ + SOURCE/target/ (PromptIR)",
                  paper="Li et al., Benchmarking Single-Image Dehazing and Beyond (RESIDE), IEEE TIP 2019; SOTS outdoor: 500 pairs",
                  url="https://sites.google.com/view/reside-dehaze-datasets", license=UNSTATED)
def sots_outdoor(root: Path, options: LayoutOptions) -> Found:
    names = next((pair for pair in SOTS_FOLDERS if all((root / n).is_dir() for n in pair)), None)
    if names is None:
        raise UserError(f"{root}: no hazy/ + gt/ (or input/ + target/) folders; layout sots-outdoor expects "
                        f"{LAYOUTS.spec('sots-outdoor').expects}")
    found = Found(notes=[f"sots-outdoor: {names[0]}/ + {names[1]}/; the clean image of NNNN_A_beta is NNNN "
                         "(PromptIR's name.split('_')[0] rule); A and beta recorded in params"])
    clean = index(images(root / names[1]), lambda p: p.stem, root, found)
    used = set()
    for path in images(root / names[0]):
        key, *rest = path.stem.split("_")
        if key not in clean:
            found.problems.append(f"{names[0]}/{path.name}: no {names[1]}/{key}.* for it")
            continue
        used.add(key)
        params = {"A": float(rest[0]), "beta": float(rest[1])} if len(rest) == 2 and all(_is_number(x) for x in rest) else {}
        found.pairs.append(SourcePair(path, clean[key], f"sots-outdoor-{key}", "haze", "sots-outdoor", params))
    found.problems += [f"{names[1]}/{clean[k].name}: target without a hazy image" for k in sorted(set(clean) - used)]
    return found


def _is_number(text: str) -> bool:
    return re.fullmatch(r"\d+(\.\d+)?", text) is not None


@LAYOUTS.register("lol-v1", expects="SOURCE/low/*.png + SOURCE/high/*.png with identical names, or the same under SOURCE/eval15/ "
                                    "(the 15 test pairs of LOLdataset; our485/ is the training set)",
                  paper="Wei et al., Deep Retinex Decomposition for Low-Light Enhancement, BMVC 2018 (LOL-v1)",
                  url="https://daooshee.github.io/BMVC2018website/", license=UNSTATED)
def lol_v1(root: Path, options: LayoutOptions) -> Found:
    base = root if (root / "low").is_dir() else root / "eval15"
    if not ((base / "low").is_dir() and (base / "high").is_dir()):
        raise UserError(f"{root}: no low/ + high/ folders (nor eval15/low/ + eval15/high/); layout lol-v1 expects "
                        f"{LAYOUTS.spec('lol-v1').expects}")
    found = Found(notes=[f"lol-v1: {'eval15/' if base != root else ''}low/ + high/"])
    return _same_names(root, base / "low", base / "high", found, lambda k, i, t: SourcePair(i, t, f"lol-v1-{k}", "lowlight", "lol-v1"))


BLUR_FOLDERS = ("blur", "blur_gamma")


@LAYOUTS.register("gopro", expects="scene folders GOPRxxxx_xx_xx/ (in SOURCE or SOURCE/test/), each with blur/, blur_gamma/ and "
                                   "sharp/ holding identical names; inputs from --blur-folder (default blur)",
                  paper="Nah, Kim, Lee, Deep Multi-scale CNN for Dynamic Scene Deblurring, CVPR 2017 (GoPro test: 1,111 pairs)",
                  url="https://seungjunnah.github.io/Datasets/gopro", license="CC BY 4.0 (stated on the dataset page)",
                  options=("blur_folder",))
def gopro(root: Path, options: LayoutOptions) -> Found:
    if options.blur_folder not in BLUR_FOLDERS:
        raise UserError(f"--blur-folder {options.blur_folder!r}: valid folders are {', '.join(BLUR_FOLDERS)}")
    base = root / "test" if (root / "test").is_dir() else root
    scenes = sorted(p for p in base.iterdir() if p.is_dir() and (p / "sharp").is_dir())
    if not scenes:
        raise UserError(f"{root}: no scene folders with sharp/ inside; layout gopro expects {LAYOUTS.spec('gopro').expects}")
    found = Found(notes=[f"gopro: inputs from {options.blur_folder}/ of {len(scenes)} scenes. blur/ averages frames as stored "
                         "(MPRNet, Restormer and the all-in-one papers use it); blur_gamma/ averages in linear light, as "
                         "Nah et al.'s paper did (--blur-folder blur_gamma)"])
    for scene in scenes:
        blurred = index(images(folder(scene, options.blur_folder)), lambda p: p.stem, root, found)
        sharp = index(images(scene / "sharp"), lambda p: p.stem, root, found)
        match(blurred, sharp, root, found, lambda k, i, t, s=scene.name: SourcePair(i, t, f"gopro-{s}-{k}", "blur", "gopro"))
    return found


CDD11_FOLDERS = ("low", "haze", "rain", "snow", "low_haze", "low_rain", "low_snow", "haze_rain", "haze_snow", "low_haze_rain",
                 "low_haze_snow")
"""CDD-11's degradation folders (OneRestore README), in its order; each holds the names of ``clear/``."""


def cdd11_label(folder_name: str) -> str:
    """uirbench's label of a CDD-11 folder: ``low`` is lowlight, parts joined by ``+`` (``low_haze`` -> ``lowlight+haze``)."""
    return "+".join("lowlight" if part == "low" else part for part in folder_name.split("_"))


@LAYOUTS.register("cdd11", expects="SOURCE/clear/*.png plus one folder per degradation (low, haze, rain, snow, low_haze, low_rain, "
                                   "low_snow, haze_rain, haze_snow, low_haze_rain, low_haze_snow) with the names of clear/; "
                                   "or the same under SOURCE/test/",
                  paper="Guo et al., OneRestore: A Universal Restoration Framework for Composite Degradation, ECCV 2024 (CDD-11)",
                  url="https://github.com/gy65896/OneRestore", license=UNSTATED)
def cdd11(root: Path, options: LayoutOptions) -> Found:
    base = root / "test" if (root / "test" / "clear").is_dir() else root
    if not (base / "clear").is_dir():
        raise UserError(f"{root}: no clear/ folder (nor test/clear/); layout cdd11 expects {LAYOUTS.spec('cdd11').expects}")
    present = sorted((p.name for p in base.iterdir() if p.is_dir() and p.name != "clear"), key=lambda n: (n not in CDD11_FOLDERS, n))
    found = Found(problems=[f"{n}/: not a CDD-11 folder (expected clear/ and {', '.join(CDD11_FOLDERS)})"
                            for n in present if n not in CDD11_FOLDERS])
    clear = index(images(base / "clear"), lambda p: p.stem, root, found)
    absent = [n for n in CDD11_FOLDERS if n not in present]
    found.notes.append(f"cdd11: {len(present) - len(found.problems)} degradation folders; snow is no uirbench degradation: "
                       "its pairs carry the label snow and the track unseen" + (f"; absent: {', '.join(absent)}" if absent else ""))
    for name in (n for n in CDD11_FOLDERS if n in present):
        label = cdd11_label(name)
        degraded = index(images(base / name), lambda p: p.stem, root, found)
        match(degraded, clear, root, found, lambda k, i, t, d=label: SourcePair(i, t, f"cdd11-{k}", d, track_of(d)), where=f" in {name}/")
    return found
