"""Save and load VQ-VAE weights: ``model.safetensors`` + ``config.json`` in one directory.

The safetensors file holds the whole state dict, codebook buffers included, so a model
loads back with identical outputs. Every write is atomic (temp file in the same
directory, then ``os.replace``), so a crash never leaves a half-written file behind.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any, Callable

import torch
from safetensors.torch import load_file, save_file

from training.vqvae.model import DepthVQVAE, VQVAEConfig

WEIGHTS_NAME = "model.safetensors"
CONFIG_NAME = "config.json"


def atomic_write(path: str | os.PathLike, write: Callable[[str], None]) -> Path:
    """Call ``write(tmp_path)`` for a temp file beside ``path``, then rename it into place."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def write_json(path: str | os.PathLike, data: Any) -> Path:
    def _write(tmp: str) -> None:
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(data, f, indent=2, sort_keys=True)
            f.write("\n")

    return atomic_write(path, _write)


def load_state_strict(model: torch.nn.Module, state: dict[str, torch.Tensor], where: str) -> None:
    """Load ``state`` into ``model`` with every key and shape matched, or raise ValueError
    naming ``where`` and each missing key, unexpected key and shape mismatch."""
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    shapes = [
        f"{k}: file {tuple(state[k].shape)} vs model {tuple(own[k].shape)}"
        for k in own
        if k in state and tuple(state[k].shape) != tuple(own[k].shape)
    ]
    problems = []
    if missing:
        problems.append(f"missing keys {missing}")
    if unexpected:
        problems.append(f"unexpected keys {unexpected}")
    if shapes:
        problems.append(f"shape mismatches [{'; '.join(shapes)}]")
    if problems:
        raise ValueError(f"{where}: weights do not match the model: " + "; ".join(problems))
    model.load_state_dict(state, strict=True)


def save_vqvae(model: DepthVQVAE, out_dir: str | os.PathLike, metadata: dict[str, str] | None = None) -> Path:
    """Write ``model.safetensors`` and ``config.json`` into ``out_dir``; returns the weights path.
    Floating tensors are written as float32 whatever the training dtype (``VQVAETrainConfig.dtype``)."""
    out = Path(out_dir)
    tensors = {k: (v.float() if v.is_floating_point() else v).detach().to("cpu").contiguous()
               for k, v in model.state_dict().items()}
    meta = {"format": "pt", "model_type": "depth_vqvae", **(metadata or {})}
    weights = atomic_write(out / WEIGHTS_NAME, lambda tmp: save_file(tensors, tmp, metadata=meta))
    write_json(out / CONFIG_NAME, model.config.to_dict())
    return weights


def resolve_weights(dir_or_weights_path: str | os.PathLike) -> tuple[Path, Path]:
    """(weights file, config.json) for a model directory or a path to its weights file."""
    p = Path(dir_or_weights_path)
    weights = p / WEIGHTS_NAME if p.is_dir() else p
    config = weights.parent / CONFIG_NAME
    if not weights.is_file():
        raise FileNotFoundError(f"VQ-VAE weights not found: {weights}")
    if not config.is_file():
        raise FileNotFoundError(f"VQ-VAE config not found beside the weights: {config}")
    return weights, config


def load_vqvae(dir_or_weights_path: str | os.PathLike, device: str | torch.device = "cpu") -> DepthVQVAE:
    """Rebuild a DepthVQVAE from ``config.json`` and load ``model.safetensors``; returned in eval mode."""
    weights, config_path = resolve_weights(dir_or_weights_path)
    try:
        config = VQVAEConfig.from_dict(json.loads(config_path.read_text(encoding="utf-8")))
    except (ValueError, TypeError) as e:  # JSONDecodeError is a ValueError
        raise ValueError(f"{config_path}: not a valid VQ-VAE config: {e}") from e
    model = DepthVQVAE(config)
    state = load_file(str(weights), device="cpu")
    load_state_strict(model, state, f"{weights} (config {config_path})")
    return model.to(device).eval()
