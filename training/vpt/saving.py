"""The re-encoder (DINOv2 + cross-attention projector) beside a VPT run's LoRA adapter, and its reload.

``vpt_reencoder.json`` names the DINOv2 (a checkpoint id / folder, or "tiny") and the projector's
shape; ``vpt_projector.safetensors`` holds the projector's trained weights. DINOv2 is frozen in
training, so a real checkpoint reloads by ``from_pretrained``; the tiny one is random (built from a
config) and is saved too (``vpt_dinov2.safetensors``), so the reload is exact. Safetensors only: no
pickle is read.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from training.vpt.projector import TINY, ReEncoder, load_dinov2

RECORD_FILE = "vpt_reencoder.json"
PROJECTOR_FILE = "vpt_projector.safetensors"
DINO_FILE = "vpt_dinov2.safetensors"


def _cpu_state(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().to("cpu").contiguous() for k, v in module.state_dict().items()}


def save_reencoder(reencoder: ReEncoder, folder: str | os.PathLike, settings) -> None:
    """Write the record, the projector (and the tiny DINOv2's weights) into ``folder`` (the adapter's temp dir)."""
    folder = Path(folder)
    projector = reencoder.projector
    record = {"reencoder": settings.reencoder, "dino_width": int(reencoder.dino.config.hidden_size),
              "llm_width": int(projector.query.out_features), "heads": int(projector.attention.num_heads),
              "grid": int(settings.grid), "control_tokens": int(settings.control_tokens)}
    save_file(_cpu_state(projector), str(folder / PROJECTOR_FILE))
    if settings.reencoder == TINY:
        save_file(_cpu_state(reencoder.dino), str(folder / DINO_FILE))
    (folder / RECORD_FILE).write_text(json.dumps(record, indent=1, sort_keys=True))


def load_reencoder(adapter_dir: str | os.PathLike, *, device="cpu") -> ReEncoder | None:
    """The saved re-encoder in eval mode; None for an adapter of a run without VPT. A clear error naming the
    file when a part is missing or does not fit."""
    folder = Path(adapter_dir)
    record_path = folder / RECORD_FILE
    if not record_path.is_file():
        return None
    try:
        record = json.loads(record_path.read_text())
        name, heads, llm_width = str(record["reencoder"]), int(record["heads"]), int(record["llm_width"])
    except (OSError, json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"{record_path}: cannot read the re-encoder record ({exc})") from exc
    dino, image_processor = load_dinov2(name)
    if name == TINY:
        _load_into(dino, folder / DINO_FILE)
    reencoder = ReEncoder(dino, image_processor, llm_width, heads)
    _load_into(reencoder.projector, folder / PROJECTOR_FILE)
    return reencoder.to(device).eval()


def _load_into(module: torch.nn.Module, path: Path) -> None:
    try:
        module.load_state_dict(load_file(str(path)), strict=True)
    except (OSError, RuntimeError, SafetensorError) as exc:  # missing, not safetensors, or of another shape
        raise ValueError(f"{path}: cannot load the re-encoder's weights ({exc})") from exc
