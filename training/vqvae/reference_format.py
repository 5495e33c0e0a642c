"""The reference's checkpoint file: ``torch.save({'weights': vae.state_dict()}, 'vae-final.pt')``.

``utils/train_api.py:59-66`` of AiT/vae writes it; under DistributedDataParallel every key
carries a ``module.`` prefix, which ``get_codes.py:58-71`` strips before loading. The file
holds no configuration, so :func:`config_from_reference_state` reads the architecture off
the tensors' shapes (hidden_dim, number of stride-2 convs, ResBlocks, codebook) and the
image size is the 10 x 10 code grid times the downsampling ratio (320 for ratio 32,
ait_depth_vqvae.py:1) unless given.

:func:`load_any_vqvae` opens either format: a reference ``.pt`` or the project's directory
(``model.safetensors`` + ``config.json``) or its weights file.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import torch

from training.vqvae.checkpoint import atomic_write, load_state_strict, load_vqvae
from training.vqvae.model import DepthVQVAE, VQVAEConfig

DDP_PREFIX = "module."
GRID_SIZE = 10  # Aurora's 10 x 10 code grid (get_codes.py:94 asserts 100 codes)
_ENCODER_CONV = re.compile(r"^encoder\.(\d+)\.weight$")
_ENCODER_RESBLOCK = re.compile(r"^encoder\.(\d+)\.net\.0\.weight$")


def read_reference_state(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """The state dict of a reference checkpoint, ``module.`` prefixes removed.

    Read with ``torch.load(weights_only=True)``: nothing in the file is unpickled beyond
    plain containers and tensors.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"VQ-VAE checkpoint not found: {path}")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # truncated file, not a torch file, or a pickled class
        raise ValueError(f"{path}: cannot read as a reference VQ-VAE checkpoint (torch.load, weights_only): {e}") from e
    if not isinstance(obj, dict) or not isinstance(obj.get("weights"), dict):
        raise ValueError(f"{path}: not a reference VQ-VAE checkpoint: expected {{'weights': state_dict}}")
    state = obj["weights"]
    bad = [k for k, v in state.items() if not isinstance(k, str) or not isinstance(v, torch.Tensor)]
    if bad:
        raise ValueError(f"{path}: 'weights' holds non-tensor entries {bad[:5]}")
    prefixed = [k.startswith(DDP_PREFIX) for k in state]
    if any(prefixed):
        if not all(prefixed):
            raise ValueError(f"{path}: some keys carry DDP's '{DDP_PREFIX}' prefix and some do not")
        state = {k[len(DDP_PREFIX):]: v for k, v in state.items()}
    return dict(state)


def config_from_reference_state(
    state: dict[str, torch.Tensor], image_size: int | None = None, where: str = "state dict"
) -> VQVAEConfig:
    """The ``aurora`` VQVAEConfig whose model has exactly these tensors' shapes."""
    if "_vq_vae._embedding" not in state:
        raise ValueError(f"{where}: not a reference VQ-VAE: no '_vq_vae._embedding' (missing keys ['_vq_vae._embedding'])")
    convs = sorted(int(m.group(1)) for k in state if (m := _ENCODER_CONV.match(k)))
    strided = [i for i in convs if state[f"encoder.{i}.weight"].ndim == 4 and state[f"encoder.{i}.weight"].shape[-1] == 4]
    if not strided:
        raise ValueError(f"{where}: not a reference VQ-VAE: no 4x4 encoder convolutions (encoder.<i>.weight)")
    resblocks = {int(m.group(1)) for k in state if (m := _ENCODER_RESBLOCK.match(k))}
    codebook_size, code_dim = (int(n) for n in state["_vq_vae._embedding"].shape)
    hidden = tuple(int(state[f"encoder.{i}.weight"].shape[0]) for i in strided)
    return VQVAEConfig.aurora(
        image_size=image_size or GRID_SIZE * 2 ** len(hidden),
        in_channels=int(state[f"encoder.{strided[0]}.weight"].shape[1]),
        num_downsamples=len(hidden),
        hidden_channels=hidden,
        num_res_blocks=len(resblocks),
        codebook_size=codebook_size,
        code_dim=code_dim,
    )


def load_reference_vqvae(
    path: str | os.PathLike, image_size: int | None = None, device: str | torch.device = "cpu"
) -> DepthVQVAE:
    """A reference ``vae-final.pt`` as an ``aurora`` DepthVQVAE (eval mode), keys matched strictly."""
    state = read_reference_state(path)
    model = DepthVQVAE(config_from_reference_state(state, image_size, where=str(path)))
    load_state_strict(model, state, str(path))
    return model.to(device).eval()


def save_reference_checkpoint(model: DepthVQVAE, path: str | os.PathLike, *, ddp_prefix: bool = False) -> Path:
    """Write ``{'weights': state_dict}`` as the reference's ``save_model`` does (atomically).

    ``ddp_prefix`` adds ``module.`` to every key, as a DDP-trained reference file has.
    """
    if model.config.architecture != "aurora":
        raise ValueError(
            f"only architecture 'aurora' has the reference's state-dict layout, this model is {model.config.architecture!r}"
        )
    prefix = DDP_PREFIX if ddp_prefix else ""
    weights = {prefix + k: v.detach().to("cpu").clone() for k, v in model.state_dict().items()}
    return atomic_write(path, lambda tmp: torch.save({"weights": weights}, tmp))


def is_project_checkpoint(path: str | os.PathLike) -> bool:
    p = Path(path)
    return p.is_dir() or p.suffix == ".safetensors"


def load_any_vqvae(path: str | os.PathLike, image_size: int | None = None, device: str | torch.device = "cpu") -> DepthVQVAE:
    """A project checkpoint (directory or ``.safetensors``) or a reference ``.pt``, in eval mode."""
    if is_project_checkpoint(path):
        model = load_vqvae(path, device)
        if image_size is not None and image_size != model.config.image_size:
            raise ValueError(f"{path}: image size {image_size} given, but the checkpoint's config says {model.config.image_size}")
        return model
    return load_reference_vqvae(path, image_size, device)


def read_any_checkpoint(path: str | os.PathLike, image_size: int | None = None) -> tuple[VQVAEConfig, dict[str, torch.Tensor]]:
    """(config, state dict) of a project checkpoint or a reference ``.pt``, for initialising training."""
    if is_project_checkpoint(path):
        model = load_vqvae(path)
        return model.config, model.state_dict()
    state = read_reference_state(path)
    return config_from_reference_state(state, image_size, where=str(path)), state
