"""UIR-LoRA as a ``Restorer``: frozen one-step backbone + one LoRA per degradation family + a router.

For a batch x (NCHW, [0, 1]) the router gives per-image weights w [B, F] over the F adapters (zero
outside each image's top K, see ``router.route``); every adapted layer then computes
f_0(x) + sum_i w_i f_i(x) (``lora.set_mixture``) and the backbone restores in one step. Only the
adapters some image of the batch uses are stacked, so K = 1 costs one adapter's branch, not F.

Checkpoint folder (``save_checkpoint`` / ``from_checkpoint``)::

    model.json                 {"model": "uir-lora", "config": UIRLoRAConfig, "adapters": [...], step, command, ...}
    backbone/                  ``backbone.save_backbone`` (diffusers vae/ + unet/, prompt embedding, skip convs,
                               and its own checksums.json)
    adapters/<family>.safetensors (+ .json)   one file per adapter (``lora.save_adapter``)
    router.safetensors         the learned router (``router.save_router``), when trained
    checksums.json             sha256 of the files above (of backbone/ through its checksums.json), written last
                               (``uirbench.checksums``); loading checks it first and refuses a damaged checkpoint

Adapters are independent files: a new family is added by training its adapter alone; the learned
router must then be retrained (``--model-arg stage=router``, minutes) to know the new family, or use the
oracle router.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import torch
from torch import nn

from uirbench import checksums
from uirbench.errors import UserError
from uirbench.models import shipped
from uirbench.registry import MODELS
from uirbench.restorer import Restorer
from uirbench.uir_lora.router import CLIP_SOURCE, ROUTERS, oracle_weights, route

MODEL_NAME = "uir-lora"
MULTITASK = "multitask"
"""The adapter of the multi-task control: one LoRA trained on every family (``--model-arg stage=multitask``)."""
ROUTER_FILE = "router.safetensors"


@dataclass(frozen=True)
class UIRLoRAConfig:
    """Inference settings: ``top_k`` adapters per image, the ``router`` kind (learned | oracle | clip | single) and the
    CLIP weights (hub id or folder) of the clip router. The learned router's shape is stored with its weights."""

    top_k: int = 2
    router: str = "learned"
    clip_source: str = CLIP_SOURCE

    def __post_init__(self) -> None:
        if self.router not in ROUTERS:
            raise UserError(f"router {self.router!r}: valid routers are {', '.join(ROUTERS)}")
        if self.top_k < 1:
            raise UserError(f"top_k must be >= 1, got {self.top_k}")


@MODELS.register(MODEL_NAME, kind="reference", config=UIRLoRAConfig, options=UIRLoRAConfig, default_checkpoint=shipped(MODEL_NAME),
                 trainer="uirbench.uir_lora.train:train_uir_lora",
                 paper="Zhang et al. 2024, UIR-LoRA: universal image restoration through multiple low-rank adaptation (arXiv 2409.20197)")
class UIRLoRA(Restorer):
    """UIR-LoRA: one-step generative backbone + per-degradation LoRAs composed per image by a router (top-K)."""


    def __init__(self, backbone: nn.Module, adapters: list[str] | tuple[str, ...], router: nn.Module | None,
                 config: UIRLoRAConfig = UIRLoRAConfig()) -> None:
        from uirbench.uir_lora.lora import adapter_names

        super().__init__()
        missing = sorted(set(adapters) - set(adapter_names(backbone)))
        if not adapters or missing:
            raise UserError(f"UIRLoRA: adapters {list(adapters)} must be non-empty and present in the backbone "
                             f"(missing {missing}; backbone has {adapter_names(backbone)})")
        if config.top_k > len(adapters):
            raise UserError(f"top_k={config.top_k}: the checkpoint has only {len(adapters)} adapters ({', '.join(adapters)})")
        if (router is None) != (config.router in ("oracle", "single")):
            raise UserError(f"UIRLoRA: router {config.router!r} needs {'no router module' if router is None else 'a router module'}")
        if config.router == "single" and list(adapters) != [MULTITASK]:
            raise UserError(f"router 'single' belongs to the multi-task control checkpoint (one adapter, {MULTITASK!r}); this one "
                            f"has adapters {list(adapters)}: use --model-arg router=learned or oracle")
        if config.router != "single" and MULTITASK in adapters:
            raise UserError(f"this is the multi-task control checkpoint (one adapter, {MULTITASK!r}, for every image): it takes "
                            "router 'single' only")
        unknown = sorted(set(adapters) - set(router.families)) if router is not None else []
        if unknown:
            raise UserError(f"the {config.router} router knows families {list(router.families)}, not adapters {unknown}; "
                             "retrain it (`uirbench train --model uir-lora --model-arg stage=router`) or use --model-arg router=oracle")
        self.backbone, self.adapters, self.router = backbone, tuple(adapters), router
        self._config = config
        self.size_multiple = backbone.size_multiple
        self.last_routing: list[dict[str, Any]] | None = None

    @property
    def uses_hint(self) -> bool:  # type: ignore[override]
        return self.config.router == "oracle"

    def routing(self, x: torch.Tensor, degradation_hint: list[str] | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(weights [B, F] over ``self.adapters``, similarities [B, F] or None for the oracle)."""
        k = self.config.top_k
        if self.config.router == "single":
            return x.new_ones(x.shape[0], 1, dtype=torch.float32), None
        if self.router is None:
            return oracle_weights(degradation_hint, self.adapters, k).to(x.device), None
        order = [self.router.families.index(a) for a in self.adapters]
        with torch.autocast(x.device.type, enabled=False):
            sim = self.router.similarity(x.float())[:, order]
        return route(sim, k, self.router.temperature), sim

    def forward(self, x: torch.Tensor, degradation_hint: list[str] | None = None) -> torch.Tensor:
        from uirbench.uir_lora.lora import mixture

        weights, sim = self.routing(x, degradation_hint)
        self.last_routing = [self.routing_record(weights[i], None if sim is None else sim[i]) for i in range(x.shape[0])]
        used = (weights != 0).any(dim=0)
        names = [a for a, u in zip(self.adapters, used.tolist(), strict=True) if u]
        with mixture(self.backbone, names, weights[:, used]):
            return self.backbone(x)

    def routing_record(self, weights: torch.Tensor, sim: torch.Tensor | None) -> dict[str, Any]:
        """One image's routing as JSON values: router, K, the composed adapters' weights (and all similarities)."""
        composed = {a: round(float(w), 4) for a, w in zip(self.adapters, weights.tolist(), strict=True) if w != 0}
        record: dict[str, Any] = {"router": self.config.router, "top_k": self.config.top_k, "weights": composed}
        if sim is not None:
            record["similarity"] = {a: round(float(s), 4) for a, s in zip(self.adapters, sim.tolist(), strict=True)}
        return record

    @classmethod
    def from_checkpoint(cls, path: Path, meta: dict[str, Any], device: str = "cpu", **options: Any) -> UIRLoRA:
        """Load a verified checkpoint folder (layout in the module docstring) whose ``model.json`` is ``meta``;
        ``options`` (fields of :class:`UIRLoRAConfig`: ``top_k``, ``router``, ``clip_source``) override its settings."""
        from uirbench.uir_lora.backbone import load_backbone
        from uirbench.uir_lora.lora import load_adapter
        from uirbench.uir_lora.router import ClipRouter, load_router

        config = replace(UIRLoRAConfig(**meta["config"]), **options)
        if MULTITASK in meta["adapters"] and config.router != "single":
            raise UserError(f"--checkpoint {path}: the multi-task control checkpoint (one adapter, {MULTITASK!r}, for every image) "
                            "takes router 'single' only")
        backbone = load_backbone(str(path / "backbone"), device=device)
        for name in meta["adapters"]:
            load_adapter(backbone, path / "adapters" / f"{name}.safetensors", name)
        module: nn.Module | None = None
        if config.router == "learned":
            if not (path / ROUTER_FILE).is_file():
                raise UserError(f"--checkpoint {path}: no learned router ({ROUTER_FILE}); train it with "
                                 f"`uirbench train --model uir-lora --model-arg stage=router --out {path}`, "
                                "or use --model-arg router=oracle")
            module = load_router(path / ROUTER_FILE, device)
        elif config.router == "clip":
            module = ClipRouter(meta["adapters"], config.clip_source)
        return cls(backbone, meta["adapters"], module, config).to(device).eval()

    def save_checkpoint(self, path: str | Path, **extra: Any) -> None:
        """Write the checkpoint folder (a learned router is saved; oracle/clip routers need no weights); its
        checksums.json is removed first and written last."""
        from uirbench.uir_lora.backbone import save_backbone
        from uirbench.uir_lora.lora import save_adapter, without_adapters
        from uirbench.uir_lora.router import LearnedRouter, save_router

        path = Path(path)
        checksums.unseal(path)
        save_backbone(without_adapters(self.backbone), path / "backbone")
        for name in self.adapters:
            save_adapter(self.backbone, name, path / "adapters" / f"{name}.safetensors")
        if isinstance(self.router, LearnedRouter):
            save_router(self.router, path / ROUTER_FILE)
        write_model_json(path, self.config, self.adapters, **extra)

    def parameter_counts(self) -> dict[str, int]:
        """Parameters of the frozen base, of each adapter, and of the router (0 for the oracle)."""
        from uirbench.uir_lora.lora import adapter_parameter_count, base_parameter_count

        return {"base": base_parameter_count(self.backbone),
                **{f"adapter:{a}": adapter_parameter_count(self.backbone, a) for a in self.adapters},
                "router": sum(p.numel() for p in self.router.parameters()) if self.router is not None else 0}


def write_model_json(path: Path, config: UIRLoRAConfig, adapters: list[str] | tuple[str, ...], **extra: Any) -> None:
    """Write model.json, the last file of a checkpoint, then the checkpoint's checksums.json: model.json, the
    backbone's own checksums.json, each adapter's two files and the learned router's weights where present."""
    from uirbench.io import write_json

    path = Path(path)
    write_json(path / "model.json", {"model": MODEL_NAME, "config": asdict(config), "adapters": list(adapters), **extra})
    files = ["model.json", f"backbone/{checksums.MANIFEST}", *(f"adapters/{a}{s}" for a in adapters for s in (".safetensors", ".json"))]
    checksums.seal(path, files + ([ROUTER_FILE] if (path / ROUTER_FILE).is_file() else []))
