"""The all-in-one protocols: the paper convention against an independent scikit-image-0.19 computation, the
protocol datasets, the published-layout tables with self-reported rows, and the self-reported entries themselves.

The scikit-image 0.19 reference below is written from its documented algorithm (``structural_similarity``
with ``multichannel=True`` and otherwise default arguments on float images: 7x7 uniform window, sample
covariance N/(N-1), the SSIM map cropped by 3 px before its mean, mean over channels;
``peak_signal_noise_ratio``: 10 log10(R² / mean squared error)) with numpy sliding windows, sharing no code
with ``uirbench.external.conventions``. PromptIR's ``crop_img`` is written out again too.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from test_import import make_cdd11, make_gopro, make_lol, make_rain100l, make_sots, photo, save

from uirbench.cli import main
from uirbench.errors import UserError
from uirbench.external.conventions import crop_to_multiple, promptir_spec, ssim_uniform
from uirbench.external.protocols import PROTOCOLS, get_protocol, prepare
from uirbench.io import read_image
from uirbench.leaderboard.entry import load_entries
from uirbench.leaderboard.ranking import boards
from uirbench.manifest import load_manifest
from uirbench.metrics import AVERAGING
from uirbench.registry import MODELS
from uirbench.restorer import Restorer

REPO_ENTRIES = Path(__file__).resolve().parents[1] / "leaderboard" / "entries"


def crop_img(image: np.ndarray, base: int = 16) -> np.ndarray:
    """PromptIR/AirNet ``utils/image_utils.py`` ``crop_img``, as their test datasets call it (base 16)."""
    h, w = image.shape[0], image.shape[1]
    crop_h, crop_w = h % base, w % base
    return image[crop_h // 2:h - crop_h + crop_h // 2, crop_w // 2:w - crop_w + crop_w // 2, :]


def skimage019_ssim(a: np.ndarray, b: np.ndarray, data_range: float = 1.0) -> float:
    """scikit-image 0.19 ``structural_similarity(a, b, data_range=1, multichannel=True)`` for HxWxC float arrays."""
    win, k1, k2 = 7, 0.01, 0.03
    pad, n = (win - 1) // 2, win * win
    scores = []
    for c in range(a.shape[2]):
        x, y = a[..., c].astype(np.float64), b[..., c].astype(np.float64)

        def box(z):  # the 7x7 mean of every fully covered window: the valid part of uniform_filter's output
            return np.lib.stride_tricks.sliding_window_view(z, (win, win)).mean(axis=(-2, -1))

        ux, uy = box(x), box(y)
        vx, vy, vxy = (n / (n - 1) * (box(p * q) - box(p) * box(q)) for p, q in ((x, x), (y, y), (x, y)))
        c1, c2 = (k1 * data_range) ** 2, (k2 * data_range) ** 2
        s = (2 * ux * uy + c1) * (2 * vxy + c2) / ((ux**2 + uy**2 + c1) * (vx + vy + c2))
        assert s.shape == (x.shape[0] - 2 * pad, x.shape[1] - 2 * pad)  # = crop(S, pad) of the full map
        scores.append(s.mean())
    return float(np.mean(scores))


def skimage019_psnr(clean: np.ndarray, restored: np.ndarray, data_range: float = 1.0) -> float:
    return float(10 * np.log10(data_range**2 / np.mean((clean.astype(np.float64) - restored.astype(np.float64)) ** 2)))


@pytest.mark.parametrize("shape", [(41, 57), (320, 480), (17, 16)])
def test_crop_matches_promptirs_crop_img(shape):
    image = np.arange(shape[0] * shape[1] * 3).reshape(*shape, 3)
    assert np.array_equal(crop_to_multiple(image), crop_img(image))


def test_uniform_ssim_matches_the_independent_skimage_019_reference(astronaut):
    rng = np.random.default_rng(0)
    clean = astronaut[100:164, 200:280].astype(np.float32) / 255
    cases = [np.clip(clean + rng.normal(0, s, clean.shape).astype(np.float32), 0, 1) for s in (0.02, 0.1, 0.3)]
    cases += [clean[::-1].copy(), np.full_like(clean, 0.5), clean]
    for other in cases:
        ours = float(ssim_uniform(torch.from_numpy(other).permute(2, 0, 1)[None], torch.from_numpy(clean).permute(2, 0, 1)[None]))
        assert ours == pytest.approx(skimage019_ssim(other, clean), abs=1e-9)
    from skimage.metrics import structural_similarity  # today's scikit-image, same defaults under channel_axis

    assert skimage019_ssim(cases[1], clean) == pytest.approx(structural_similarity(cases[1], clean, data_range=1, channel_axis=2),
                                                             abs=1e-6)
    assert skimage019_ssim(cases[1], clean) != pytest.approx(  # and the window matters: uirbench's Gaussian SSIM differs
        structural_similarity(cases[1], clean, data_range=1, channel_axis=2, gaussian_weights=True, sigma=1.5,
                              use_sample_covariance=False), abs=1e-3)


class HalfwayToGrey(Restorer):
    """A test model with float output: halfway between the input and mid-grey (never an 8-bit value for odd inputs)."""

    def forward(self, x, degradation_hint=None):
        return 0.5 * x + 0.25 + 0.001


@pytest.fixture(scope="module")
def standins(tmp_path_factory):
    """Stand-ins of every set the protocols read (tiny crops of real photos, the public layouts)."""
    root = tmp_path_factory.mktemp("sets")
    for i in range(2):
        save(root / "CBSD68" / f"{i}.png", photo(60 + i))
    return {"cbsd68": str(root / "CBSD68"), "rain100l": str(make_rain100l(root / "Rain100L", count=2)),
            "sots": str(make_sots(root / "SOTS" / "outdoor")), "gopro": str(make_gopro(root / "GOPRO_Large")),
            "lol": str(make_lol(root / "LOLdataset")), "cdd11": str(make_cdd11(root / "CDD-11_test"))}


def _flags(protocol: str, standins: dict[str, str]) -> list[str]:
    return [w for flag in dict.fromkeys(t.flag for t in get_protocol(protocol).tasks) for w in (f"--{flag}", standins[flag])]


def test_promptir_protocol_reproduces_the_paper_convention_computed_independently(standins, tmp_path, capsys):
    MODELS.register("halfway-to-grey", kind="test", paper="-")(HalfwayToGrey)
    try:
        assert main(["protocol", "run", "promptir-3task", *_flags("promptir-3task", standins), "--model", "halfway-to-grey",
                     "--out", str(tmp_path), "--entries", str(REPO_ENTRIES)]) == 0
    finally:
        MODELS.remove("halfway-to-grey")
    printed = capsys.readouterr().out
    scored = pd.read_parquet(tmp_path / "eval" / "halfway-to-grey-promptir" / "per_image.parquet").set_index("input_file_name")
    rows = load_manifest(tmp_path / "data", "test")
    assert len(rows) == len(scored) == 2 * 3 + 3 + 2  # CBSD68 x 3 sigmas, SOTS (one GT hazed twice), Rain100L
    for row in rows:  # the paper's pipeline on the same files: crop_img both, the model, clip, no rounding, skimage 0.19 metrics
        degraded, clean = (crop_img(read_image(tmp_path / "data" / "test" / row[k]).astype(np.float32) / 255)
                           for k in ("input_file_name", "target_file_name"))
        restored = np.clip(0.5 * degraded + 0.25 + 0.001, 0, 1)
        assert scored.loc[row["input_file_name"], "psnr"] == pytest.approx(skimage019_psnr(clean, restored), abs=1e-4)
        assert scored.loc[row["input_file_name"], "ssim"] == pytest.approx(skimage019_ssim(restored, clean), abs=1e-6)
    entries = {e["name"]: e for e in load_entries(tmp_path / "entries")}
    paper, ours = entries["promptir-3task.halfway-to-grey.promptir"], entries["promptir-3task.halfway-to-grey.uirbench"]
    sots = scored[scored["track"] == "sots-outdoor"]
    assert paper["results"]["per_track"]["sots-outdoor"]["ssim"]["mean"] == pytest.approx(sots["ssim"].mean(), abs=1e-12)
    assert abs(paper["results"]["overall"]["psnr"]["mean"] - ours["results"]["overall"]["psnr"]["mean"]) > 1e-3  # rounding moves it
    assert paper["metric_spec"] != ours["metric_spec"] and len(boards(list(entries.values()))[0]) == 2  # two boards, never mixed
    table = (tmp_path / "promptir-3task.md").read_text()
    assert table in printed and (tmp_path / "promptir-3task.csv").exists() and (tmp_path / "promptir-3task.tex").exists()
    header = "| method | convention | provenance | SOTS | Rain100L | CBSD68 σ=15 | CBSD68 σ=25 | CBSD68 σ=50 | average |"
    assert header in table and "| PromptIR | promptir | self-reported | 30.58/0.974 | 36.37/0.972 |" in table
    assert "| halfway-to-grey | promptir | recomputed |" in table and "| halfway-to-grey | uirbench | recomputed |" in table
    assert "7x7 uniform" in table and "11x11 Gaussian" in table and "not rounded to 8 bits" in table


def test_five_task_and_cdd11_tables_render_from_entries(standins, tmp_path, capsys):
    assert main(["protocol", "run", "idr-5task", *_flags("idr-5task", standins), "--model", "identity", "--out", str(tmp_path / "five"),
                 "--convention", "uirbench", "--entries", str(REPO_ENTRIES)]) == 0
    assert main(["protocol", "run", "cdd11", "--cdd11", standins["cdd11"], "--model", "identity", "--out", str(tmp_path / "cdd")]) == 0
    capsys.readouterr()
    assert main(["protocol", "table", "idr-5task", "--entries", str(REPO_ENTRIES), "--entries", str(tmp_path / "five" / "entries")]) == 0
    table = capsys.readouterr().out
    assert "| method | convention | provenance | Rain100L | SOTS | CBSD68 σ=25 | GoPro | LOL | average | params (M) | source |" in table
    assert "| NAFNet | not documented | self-reported | 35.56/0.967 |" in table and "| 17.11 |" in table
    assert "| identity | uirbench | recomputed |" in table and "| AirNet | promptir |" not in table  # no 3-task rows
    cdd = (tmp_path / "cdd" / "cdd11.md").read_text()
    assert "| low | haze | rain | snow | low_haze | low_rain |" in cdd and "| identity | uirbench | recomputed |" in cdd


def test_protocol_datasets_are_seeded_and_checked(standins, tmp_path):
    three = get_protocol("promptir-3task")
    folders = {f: standins[f] for f in ("cbsd68", "rain100l", "sots")}
    a = prepare(three, folders, tmp_path / "a")
    assert prepare(three, folders, tmp_path / "b")["fingerprint"] == a["fingerprint"]  # the noise depends on nothing else
    noisy = [r for r in load_manifest(tmp_path / "a", "test") if r["degradation"] == "awgn"]
    assert sorted({(r["track"], r["severity"], json.loads(r["params"])["sigma"]) for r in noisy}) == [
        ("cbsd68-s15", 2, 15.0), ("cbsd68-s25", 3, 25.0), ("cbsd68-s50", 5, 50.0)]
    assert len({json.loads(r["params"])["seed"] for r in noisy}) == len(noisy)  # one seed per pair
    with pytest.raises(UserError, match="protocol promptir-3task needs --rain100l DIR --sots DIR"):
        prepare(three, {"cbsd68": standins["cbsd68"]}, tmp_path / "c")
    with pytest.raises(UserError, match=r"--cbsd68 .*: expected a folder of clean images"):
        prepare(three, {**folders, "cbsd68": str(tmp_path)}, tmp_path / "d")
    with pytest.raises(UserError, match="unknown protocol 'promptir'; valid protocols: promptir-3task, idr-5task, cdd11"):
        get_protocol("promptir")


def test_self_reported_rows_are_transcribed_consistently_and_never_ranked():
    entries = [e for e in load_entries(REPO_ENTRIES) if e["dataset"]["suite"] in PROTOCOLS]
    assert sorted(e["name"] for e in entries) == sorted(
        [f"promptir-3task.{m}.self-reported" for m in ("airnet", "promptir", "adair")]
        + [f"idr-5task.{m}.self-reported" for m in ("airnet", "restormer", "nafnet", "idr", "adair")])
    for e in entries:
        protocol = get_protocol(e["dataset"]["suite"])
        cells = [e["results"]["per_track"][c.key] for c in protocol.columns]
        assert e["provenance"] == "self-reported" and e["source"]
        if e["metric_spec"]["convention"].startswith("promptir"):  # the convention block the recomputed promptir rows carry
            assert {**e["metric_spec"], "averaging": AVERAGING} == promptir_spec()
        for metric, tolerance in (("psnr", 0.01), ("ssim", 0.001)):  # the printed average is the mean of the printed cells
            assert np.mean([c[metric]["mean"] for c in cells]) == pytest.approx(e["results"]["overall"][metric]["mean"], abs=tolerance)
    ranked, apart = boards(load_entries(REPO_ENTRIES))
    assert {e["name"] for e in entries} <= {e["name"] for e in apart}
    assert not any(b.suite in PROTOCOLS for b in ranked)


CBSD68 = Path(__file__).resolve().parents[2] / "shared" / "data" / "CBSD68"


@pytest.mark.slow
@pytest.mark.skipif(not CBSD68.is_dir(), reason="optional check on the real CBSD68 photos (../shared/data/CBSD68)")
def test_cbsd68_noise_on_real_photos_has_its_nominal_strength(tmp_path):
    """On the 68 real photos the identity PSNR at sigma 15/25/50 sits at or above 20 log10(255/sigma): clipping at 0 and
    255 only removes noise (most at sigma 50, in dark and bright regions)."""
    from uirbench.external.protocols import Task, _noise_pairs
    from uirbench.external.writer import DatasetInfo, write_dataset

    levels = ((15, 2), (25, 3), (50, 5))
    pairs = [p for sigma, severity in levels for p in _noise_pairs(CBSD68, Task(f"cbsd68-s{sigma}", "cbsd68", severity=severity))]
    write_dataset(tmp_path / "data", DatasetInfo("promptir-3task", "CBSD68 noise only", "test", "cbsd68"), pairs, [], False)
    rows = load_manifest(tmp_path / "data", "test")
    for sigma, _ in levels:
        psnr = np.mean([r["input_psnr"] for r in rows if r["track"] == f"cbsd68-s{sigma}"])
        assert 20 * np.log10(255 / sigma) - 0.05 < psnr < 20 * np.log10(255 / sigma) + 1.0
