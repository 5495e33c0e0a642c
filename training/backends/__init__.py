"""Model families behind one interface (:class:`training.backends.base.Backend`).

Each family is one subpackage here exposing ``BACKEND``; adding a family means adding a
folder. ``finetune.family`` names one; when unset, the family is detected from the
checkpoint's ``config.json`` (``model_type``), and presets ("tiny", ...) mean LLaVA.
An adapter records its family in ``finetune_config.json`` (no key: LLaVA, the first family).

Importing this module is cheap (no torch); a backend is imported when it is asked for.
"""

from __future__ import annotations

import importlib
import json
import pkgutil
from pathlib import Path

DEFAULT_FAMILY = "llava"
_HERE = Path(__file__).resolve().parent


def families() -> list[str]:
    """Names of the available families (the subpackages of training/backends)."""
    return sorted(m.name for m in pkgutil.iter_modules([str(_HERE)]) if m.ispkg)


def get_backend(family: str):
    """The :class:`Backend` of ``family``; a clear error for an unknown one."""
    if family not in families():
        raise ValueError(f"unknown model family {family!r}; available: {', '.join(families())}")
    return importlib.import_module(f"{__name__}.{family}").BACKEND


def checkpoint_model_type(checkpoint: str) -> str | None:
    """``model_type`` from a local checkpoint's config.json, or via transformers for a hub id; None for presets."""
    path = Path(checkpoint).expanduser()
    if path.is_dir():
        config = path / "config.json"
        try:
            return json.loads(config.read_text())["model_type"]
        except (OSError, json.JSONDecodeError, KeyError) as exc:
            raise ValueError(f"{config}: cannot read the checkpoint's model_type ({exc})") from exc
    if "/" not in checkpoint:
        return None  # a preset name
    from transformers import AutoConfig

    return AutoConfig.from_pretrained(checkpoint).model_type


def resolve_family(family: str | None, checkpoint: str) -> str:
    """``family`` when given (validated), else the family whose model types include the checkpoint's."""
    if family:
        get_backend(family)
        return family
    model_type = checkpoint_model_type(checkpoint)
    if model_type is None:
        return DEFAULT_FAMILY
    for name in families():
        if model_type in get_backend(name).model_types:
            return name
    raise ValueError(f"{checkpoint}: model_type {model_type!r} has no backend; set finetune.family to one of {families()}")


def adapter_family(adapter_dir: str | Path) -> str:
    """The family recorded in an adapter's finetune_config.json (LLaVA when absent)."""
    path = Path(adapter_dir) / "finetune_config.json"
    try:
        meta = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path}: cannot read the fine-tune record ({exc})") from exc
    family = meta.get("family") or DEFAULT_FAMILY
    get_backend(family)
    return family


def reload_adapter(adapter_dir: str | Path, **kwargs):
    """``(model, processor)`` of a saved adapter, through its own family's backend."""
    return get_backend(adapter_family(adapter_dir)).reload_adapter(adapter_dir, **kwargs)


def load_base(checkpoint: str, family: str | None = None, **kwargs):
    """``(model, processor)`` of a base checkpoint or preset of ``family`` (detected when None)."""
    return get_backend(resolve_family(family, checkpoint)).load(checkpoint, **kwargs)


def reload_segmentation_head(adapter_dir: str | Path, *, device="cpu"):
    """The [SEG] -> SAM2 head saved beside an adapter whose run enabled ``finetune.segmentation``
    (in eval mode), or None for an adapter trained without it; an error when it should be there and is not."""
    from training.finetune.adapter_folder import read_record

    _, config = read_record(adapter_dir)
    if not config.segmentation.enabled:
        return None
    from training.segmentation.head import load_head

    return load_head(adapter_dir, device=device)
