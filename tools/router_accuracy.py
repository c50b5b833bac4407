"""How often learned UIR-LoRA routers pick the true families on a dataset split, without running the restorer.

    python tools/router_accuracy.py --data cbsd68 --split val [--checkpoint DIR] [--top-k 2] ROUTER [ROUTER ...]

Each ROUTER replaces the router of the UIR-LoRA checkpoint ``--checkpoint`` (default: the shipped one) and routes
every pair of the split as ``uirbench evaluate`` does on CPU: the input reflect-padded to the model's size multiple,
in channels-last memory, then ``UIRLoRA.routing`` with the checkpoint's adapters at K = ``--top-k``. A ROUTER is a
file written by ``save_router`` (a checkpoint's ``router.safetensors``) or the ``model.safetensors`` of a router
stage's training snapshot (``stages/router/state/step-N/``), whose weights are read into the checkpoint router's
families and configuration: a learning curve from the snapshots a run kept. Prints, per ROUTER,
``uir_lora_claim``'s router lines: top-1 family on single-degradation pairs (single and ood tracks, per family) and
the mixed pairs whose true families are all among the K composed adapters. Routing is deterministic: the val split
selects, the test split reports.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import pandas as pd
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from uirbench.errors import UserError
from uirbench.io import read_image, to_tensor
from uirbench.manifest import load_manifest
from uirbench.models import create_model
from uirbench.restorer import pad_to_multiple
from uirbench.uir_lora.router import ROUTER_FORMAT, LearnedRouter, load_router

sys.path.insert(0, str(Path(__file__).resolve().parent))
from uir_lora_claim import router_lines  # tools/ is not a package

SNAPSHOT_PREFIX = "model."
"""Key prefix of the router's weights in a training snapshot (the engine saves the objective that wraps it)."""


def read_router(path: Path, template: LearnedRouter) -> LearnedRouter:
    """A router file (``save_router``), or a training snapshot's weights in ``template``'s families and configuration."""
    from safetensors import SafetensorError, safe_open
    from safetensors.torch import load_file

    try:
        with safe_open(str(path), framework="pt") as fh:
            meta = fh.metadata() or {}
        if meta.get("format") == ROUTER_FORMAT:
            return load_router(path)
        tensors = load_file(str(path))
    except (OSError, SafetensorError) as exc:
        raise SystemExit(f"router_accuracy: cannot read {path} as safetensors: {exc}") from exc
    if not tensors or not all(k.startswith(SNAPSHOT_PREFIX) for k in tensors):
        raise SystemExit(f"router_accuracy: {path} is neither a {ROUTER_FORMAT} file nor a router stage's training snapshot "
                         f"(keys {sorted(tensors)[:3]}...)")
    router = LearnedRouter(template.families, template.config, torch.Generator())
    router.load_state_dict({k[len(SNAPSHOT_PREFIX):]: v for k, v in tensors.items()}, strict=True)
    return router.eval()


def routing_frame(model: torch.nn.Module, rows: list[dict], folder: Path) -> pd.DataFrame:
    """One row per pair: degradation, track and the ``routing`` record ``uirbench evaluate`` would write."""
    records = []
    with torch.inference_mode():
        for row in rows:
            x, _, _ = pad_to_multiple(to_tensor(read_image(folder / row["input_file_name"])), max(1, model.size_multiple))
            weights, sim = model.routing(x.contiguous(memory_format=torch.channels_last))
            records.append(json.dumps(model.routing_record(weights[0], sim[0])))
    return pd.DataFrame({"degradation": [r["degradation"] for r in rows], "track": [r["track"] for r in rows],
                         "routing": records})


def main() -> None:
    try:
        run()
    except UserError as exc:  # a bad --data, --split, --top-k or --checkpoint: one line naming it, no traceback
        raise SystemExit(f"router_accuracy: {exc}") from exc


def run() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("routers", nargs="+", type=Path, metavar="ROUTER")
    parser.add_argument("--data", required=True, type=Path, help="dataset folder from `uirbench generate`")
    parser.add_argument("--split", default="val", help="split to route (default val: select on it, report on test)")
    parser.add_argument("--checkpoint", help="UIR-LoRA checkpoint whose router is replaced (default: the shipped one)")
    parser.add_argument("--top-k", type=int, default=None, help="adapters composed per image (default: the checkpoint's)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    rows = load_manifest(args.data, args.split)  # a bad --data or --split fails before the model loads
    options = {} if args.top_k is None else {"top_k": args.top_k}
    # evaluate's CPU layout (channels-last model and inputs): the same convolutions, so the same similarities to the bit
    model = create_model("uir-lora", args.checkpoint, **options).eval().to(memory_format=torch.channels_last)
    if model.router is None or not isinstance(model.router, LearnedRouter):
        raise SystemExit("router_accuracy: the checkpoint has no learned router to replace")
    template = model.router
    for path in args.routers:
        model.router = read_router(path, template)
        print(f"#### {path}", "", *router_lines(routing_frame(model, rows, args.data / args.split)), sep="\n")


if __name__ == "__main__":
    main()
