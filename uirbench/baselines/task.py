"""The training task of the supervised baselines (NAFNet, Restormer, PromptIR, AirNet) for ``uirbench.train``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from uirbench.train import VAL_CROP, centre_crop


class RestorationTask:
    """Supervised restoration on paired patches: L1 (or PSNR) loss; models may add an auxiliary loss."""

    find_unused_parameters = False

    def __init__(self, model: torch.nn.Module, data: Any, loss: str, val_rows: list[dict[str, Any]], val_dir: Path | None) -> None:
        self.name, self.module, self.data, self.loss_kind = model.name, model, data, loss
        self.val_rows, self.val_dir = val_rows, val_dir

    def loss(self, module: torch.nn.Module, step: int, offset: int, batch_size: int, device: torch.device) -> torch.Tensor:
        inputs, targets, _ = self.data.batch(step, batch_size, offset)
        inputs, targets = inputs.to(device), targets.to(device)
        pred = module(inputs).float()
        if self.loss_kind == "psnr":  # NAFNet's PSNR loss: mean over images of 10 log10(MSE)
            loss = 10 * torch.log10(((pred - targets) ** 2).flatten(1).mean(1) + 1e-8).mean()
        else:
            loss = (pred - targets).abs().mean()
        auxiliary = getattr(self.module, "auxiliary_loss", None)
        if auxiliary is not None:
            loss = loss + auxiliary(inputs, torch.Generator().manual_seed(step))
        return loss

    def validate(self, module: torch.nn.Module, device: torch.device) -> dict[str, float]:
        from uirbench.io import read_image, to_tensor
        from uirbench.metrics import PSNR
        from uirbench.restorer import restore

        if not self.val_rows:
            return {}
        scores = []
        for row in self.val_rows:
            x, y = (centre_crop(read_image(self.val_dir / row[k]), VAL_CROP) for k in ("input_file_name", "target_file_name"))
            scores.append(float(PSNR()(restore(module, to_tensor(x).to(device)), to_tensor(y).to(device))[0]))
        return {"val_psnr": sum(scores) / len(scores)}

    def save(self, module: torch.nn.Module, out: Path, extra: dict[str, Any]) -> None:
        from uirbench.models import save_checkpoint

        save_checkpoint(module, out, **extra)
