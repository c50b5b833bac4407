"""`uirbench degrade` / `list`, and the registry's plugin entry points, through the real command line."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from PIL import Image

from uirbench.cli import main
from uirbench.degradations import RECIPES
from uirbench.io import read_image
from uirbench.registry import DEGRADATIONS, DegradationSpec, Registry, UnknownNameError


@pytest.fixture()
def photo(tmp_path, small_image):
    path = tmp_path / "photo.png"
    Image.fromarray(small_image).save(path)
    return path


def test_list_degradations_first_word_is_a_usable_name(capsys):
    assert main(["list", "degradations"]) == 0
    names = [line.split()[0] for line in capsys.readouterr().out.splitlines()]
    for family in ("noise", "blur", "rain", "haze", "lowlight", "jpeg", "mixed"):
        assert family in names
    assert set(DEGRADATIONS.names()) | set(RECIPES) == set(names)


def test_degrade_writes_png_and_params_and_replays_exactly(photo, tmp_path):
    out = tmp_path / "out.png"
    assert main(["degrade", str(photo), str(out), "--degradation", "haze", "--severity", "4", "--seed", "3"]) == 0
    record = json.loads(out.with_suffix(".json").read_text())
    assert record["degradation"] == "haze" and record["severity"] == 4 and record["params"]["depth_source"].startswith("prior")
    again = tmp_path / "again.png"
    assert main(["degrade", str(photo), str(again), "--params-in", str(out.with_suffix(".json"))]) == 0
    assert np.array_equal(read_image(out), read_image(again))
    assert not np.array_equal(read_image(out), read_image(photo))


def test_param_override_by_physical_name(photo, tmp_path):
    out = tmp_path / "q.png"
    assert main(["degrade", str(photo), str(out), "--degradation", "jpeg", "--param", "quality=12"]) == 0
    assert json.loads(out.with_suffix(".json").read_text())["params"]["quality"] == 12
    chain = tmp_path / "chain.png"
    assert main(["degrade", str(photo), str(chain), "--degradation", "blur+noise+jpeg", "--param", "jpeg.quality=9"]) == 0
    stages = json.loads(chain.with_suffix(".json").read_text())["params"]["stages"]
    assert stages[-1] == {"name": "jpeg", "params": {"quality": 9}}


@pytest.mark.parametrize(("args", "message"), [
    (["--degradation", "awgn", "--param", "sigmaa=3"], "valid: sigma, seed"),
    (["--degradation", "awgn", "--param", "sigma=-5"], "sigma"),
    (["--degradation", "jpg"], "jpeg"),
    (["--degradation", "jpeg", "--param", "quality=0"], "quality"),
    ([], "--degradation is required"),
])
def test_bad_arguments_are_refused_naming_them(photo, tmp_path, capsys, args, message):
    out = tmp_path / "bad.png"
    assert main(["degrade", str(photo), str(out), *args]) == 2
    assert message in capsys.readouterr().err
    assert not out.exists()


def test_registry_errors_teach():
    reg = Registry("widget", DegradationSpec, ())
    reg.add("sharpen", object(), family="blur")
    with pytest.raises(ValueError, match="duplicate widget name 'sharpen'"):
        reg.add("sharpen", object(), family="blur")
    with pytest.raises(UnknownNameError, match="Did you mean 'sharpen'"):
        reg.get("sharpn")


def test_third_party_plugin_registers_through_the_entry_point_group(tmp_path):
    (tmp_path / "uirplugin_demo.py").write_text(textwrap.dedent('''
        from dataclasses import dataclass
        from uirbench.degradations.base import Degradation, Range
        from uirbench.registry import DEGRADATIONS

        @DEGRADATIONS.register("invert", family="invert")
        @dataclass(frozen=True)
        class Invert(Degradation):
            """Photographic negative (a demo plugin)."""
            name = "invert"
            stage = "sensor"
            LEVELS = {"amount": (1, 1, 1, 1, 1)}
            NEUTRAL = {"amount": 0}
            TRAIN = {"amount": Range(0, 2, integer=True)}
            OOD = {"amount": Range(2, 3, integer=True)}

            @staticmethod
            def apply(image, *, amount):
                return 255 - image if amount else image.copy()
    '''))
    dist = tmp_path / "uirplugin_demo-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: uirplugin-demo\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[uirbench]\ndemo = uirplugin_demo\n")
    script = "from uirbench.degradations import create; import numpy as np; " \
             "img = np.full((20, 20, 3), 10, np.uint8); print(int(create('invert')(img, np.random.default_rng(0))[0][0, 0, 0]))"
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            env={"PYTHONPATH": str(tmp_path), "PATH": "", "OMP_NUM_THREADS": "1"})
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "245"


def test_a_malformed_list_model_arg_is_one_line_naming_it(tmp_path, capsys):
    args = ["train", "--model", "nafnet", "--data", str(tmp_path), "--model-arg", "enc_blocks=[1,2"]
    assert main(args) == 2
    assert "--model-arg enc_blocks=[1,2: expected a list" in capsys.readouterr().err
