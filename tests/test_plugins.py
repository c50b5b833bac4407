"""A new model as a plugin package: one file and one entry point, then every command knows it.

The plugin below is a complete third-party model (a frozen config, a preset with its recipe, the
baselines' trainer); installed by its ``uirbench`` entry point it is listed, trained, saved, loaded
and evaluated by the unchanged CLI, in a fresh interpreter, like a ``pip install``-ed package.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

PLUGIN = textwrap.dedent('''
    """A demo restoration model registered from outside uirbench."""
    from dataclasses import dataclass

    import torch

    from uirbench.recipes import Recipe
    from uirbench.registry import MODELS
    from uirbench.restorer import Restorer


    @dataclass(frozen=True)
    class ResidualConfig:
        width: int = 8


    @MODELS.register("residual-demo", kind="baseline", paper="a two-layer residual CNN (plugin demo)",
                     config=ResidualConfig, presets={"tiny": ResidualConfig()},
                     recipes={"tiny": Recipe(steps=2, batch_size=2, patch=32, lr=1e-3)},
                     trainer="uirbench.baselines.task:train_baseline")
    class ResidualDemo(Restorer):
        """Input plus a learned two-layer residual."""

        def __init__(self, config=ResidualConfig(), generator=None):
            super().__init__()
            self._config = config
            self.body = torch.nn.Sequential(torch.nn.Conv2d(3, config.width, 3, padding=1), torch.nn.ReLU(),
                                            torch.nn.Conv2d(config.width, 3, 3, padding=1))

        def forward(self, x, degradation_hint=None):
            return x + self.body(x)
''')


def _run(args: list[str], plugin_dir, cwd) -> subprocess.CompletedProcess:
    dist = plugin_dir / "uirdemo_model-0.1.dist-info"
    dist.mkdir(exist_ok=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: uirdemo-model\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[uirbench]\nresidual-demo = uirdemo_model\n")
    env = {**os.environ, "PYTHONPATH": str(plugin_dir), "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "uirbench.cli", *args], capture_output=True, text=True, env=env, cwd=cwd,
                          timeout=600)


def test_a_model_plugin_is_listed_trained_and_evaluated_by_the_unchanged_cli(tmp_path, tiny_dataset):
    (tmp_path / "uirdemo_model.py").write_text(PLUGIN)
    listed = _run(["list", "models"], tmp_path, tmp_path)
    assert listed.returncode == 0 and "residual-demo  Input plus a learned two-layer residual." in listed.stdout

    trained = _run(["train", "--model", "residual-demo", "--data", str(tiny_dataset), "--out", "run", "--model-arg", "width=4"],
                   tmp_path, tmp_path)
    assert trained.returncode == 0, trained.stderr
    saved = json.loads((tmp_path / "run" / "model.json").read_text())
    assert saved["model"] == "residual-demo" and saved["config"] == {"width": 4}
    assert saved["command"] == f"uirbench train --model residual-demo --data {tiny_dataset} --out run --model-arg width=4"

    scored = _run(["evaluate", "--model", "residual-demo", "--checkpoint", "run", "--data", str(tiny_dataset), "--out", "ev"],
                  tmp_path, tmp_path)
    assert scored.returncode == 0, scored.stderr
    summary = json.loads((tmp_path / "ev" / "summary.json").read_text())
    assert summary["model"]["name"] == "residual-demo" and summary["model"]["parameters"] == 3 * 4 * 9 + 4 + 4 * 3 * 9 + 3

    refused = _run(["train", "--model", "residual-demo", "--data", str(tiny_dataset), "--out", "other", "--model-arg", "depth=3"],
                   tmp_path, tmp_path)
    assert refused.returncode == 2 and "has no option 'depth'; valid: width" in refused.stderr
