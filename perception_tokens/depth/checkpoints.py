"""Depth Anything checkpoints: reading safely, renaming keys between layouts, writing, hashing.

Three key layouts exist for the same weights:

* official (LiheYoung/Depth-Anything, DepthAnything/Depth-Anything-V2 ``.pth`` files):
  ``pretrained.blocks.0.attn.qkv.weight``, ``depth_head.scratch.refinenet1.out_conv.weight`` ...
  with the attention q/k/v fused into one matrix;
* transformers, legacy (the ``*-hf`` hub repos): ``backbone.encoder.layer.0.attention.attention.query.weight``;
* transformers, current (what ``DepthAnythingForDepthEstimation`` names its parameters in
  transformers >= 5): ``backbone.encoder.layer.0.attention.q_proj.weight``.

``to_model_keys`` turns any of them into the names a given model expects;
``to_official_keys`` goes the other way (used to write test checkpoints in the official
layout, and to feed the official class). The mapping follows transformers'
``convert_depth_anything_to_hf.py``; the code is ours.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Iterable, Mapping

from perception_tokens.paths import file_sha256  # noqa: F401  (re-exported: teachers, tests)

import torch
from torch import nn

StateDict = dict[str, torch.Tensor]

_BLOCK = r"pretrained\.blocks\.(\d+)\."
_REFINENET = r"depth_head\.scratch\.refinenet([1-4])\."

# (official regex, legacy-transformers template). Templates may use {fusion} for the
# fusion layer index, which runs in the opposite order to the official refinenet number.
_OFFICIAL_TO_LEGACY: list[tuple[str, str]] = [
    (r"pretrained\.cls_token", "backbone.embeddings.cls_token"),
    (r"pretrained\.mask_token", "backbone.embeddings.mask_token"),
    (r"pretrained\.pos_embed", "backbone.embeddings.position_embeddings"),
    (r"pretrained\.patch_embed\.proj\.(weight|bias)", "backbone.embeddings.patch_embeddings.projection.{1}"),
    (_BLOCK + r"ls([12])\.gamma", "backbone.encoder.layer.{1}.layer_scale{2}.lambda1"),
    (_BLOCK + r"norm([12])\.(weight|bias)", "backbone.encoder.layer.{1}.norm{2}.{3}"),
    (_BLOCK + r"mlp\.fc([12])\.(weight|bias)", "backbone.encoder.layer.{1}.mlp.fc{2}.{3}"),
    (_BLOCK + r"attn\.proj\.(weight|bias)", "backbone.encoder.layer.{1}.attention.output.dense.{2}"),
    (r"pretrained\.norm\.(weight|bias)", "backbone.layernorm.{1}"),
    (r"depth_head\.projects\.([0-3])\.(weight|bias)", "neck.reassemble_stage.layers.{1}.projection.{2}"),
    (r"depth_head\.resize_layers\.([0-3])\.(weight|bias)", "neck.reassemble_stage.layers.{1}.resize.{2}"),
    (_REFINENET + r"out_conv\.(weight|bias)", "neck.fusion_stage.layers.{fusion}.projection.{2}"),
    (
        _REFINENET + r"resConfUnit([12])\.conv([12])\.(weight|bias)",
        "neck.fusion_stage.layers.{fusion}.residual_layer{2}.convolution{3}.{4}",
    ),
    (r"depth_head\.scratch\.layer([1-4])_rn\.weight", "neck.convs.{rn}.weight"),
    (r"depth_head\.scratch\.output_conv1\.(weight|bias)", "head.conv1.{1}"),
    (r"depth_head\.scratch\.output_conv2\.0\.(weight|bias)", "head.conv2.{1}"),
    (r"depth_head\.scratch\.output_conv2\.2\.(weight|bias)", "head.conv3.{1}"),
]
_QKV = re.compile(_BLOCK + r"attn\.qkv\.(weight|bias)$")

# legacy-transformers attention names <-> current ones (transformers >= 5 renamed them)
_ATTENTION_RENAMES = [
    (".attention.attention.query.", ".attention.q_proj."),
    (".attention.attention.key.", ".attention.k_proj."),
    (".attention.attention.value.", ".attention.v_proj."),
    (".attention.output.dense.", ".attention.o_proj."),
]
_LEGACY_QKV = re.compile(r"backbone\.encoder\.layer\.(\d+)\.attention\.attention\.(query|key|value)\.(weight|bias)$")


class CheckpointError(ValueError):
    """A checkpoint that cannot be used; the message names the file and the problem."""


def is_official_layout(state_dict: Mapping[str, torch.Tensor]) -> bool:
    """True when the keys are the official repositories' (``pretrained.*`` / ``depth_head.*``)."""
    return any(k.startswith(("pretrained.", "depth_head.")) for k in state_dict)


def _fill(template: str, match: re.Match[str]) -> str:
    groups = {str(i): g for i, g in enumerate(match.groups(), start=1)}
    if "{fusion}" in template:
        # official refinenet4 handles the coarsest map first, which transformers calls layer 0
        groups["fusion"] = str(4 - int(match.group(1)))
    if "{rn}" in template:
        groups["rn"] = str(int(match.group(1)) - 1)
    return re.sub(r"\{(\w+)\}", lambda m: groups[m.group(1)], template)


def _legacy_name(official_key: str) -> str | None:
    """transformers (legacy) name of one official non-qkv key, or None if unrecognised."""
    for pattern, template in _OFFICIAL_TO_LEGACY:
        match = re.fullmatch(pattern, official_key)
        if match:
            return _fill(template, match)
    return None


def official_to_legacy_keys(state_dict: Mapping[str, torch.Tensor], source: str = "<state dict>") -> StateDict:
    """Rename official Depth Anything keys to transformers' (legacy) names, splitting q/k/v.

    Raises CheckpointError naming ``source`` and the first unrecognised keys.
    """
    out: StateDict = {}
    unknown: list[str] = []
    for key, tensor in state_dict.items():
        qkv = _QKV.fullmatch(key)
        if qkv:
            layer, kind = qkv.groups()
            # fused rows are [query; key; value], each hidden_size long
            for name, part in zip(("query", "key", "value"), torch.chunk(tensor, 3, dim=0)):
                out[f"backbone.encoder.layer.{layer}.attention.attention.{name}.{kind}"] = part.clone()
            continue
        name = _legacy_name(key)
        if name is None:
            unknown.append(key)
        else:
            out[name] = tensor
    if unknown:
        raise CheckpointError(
            f"{source}: {len(unknown)} key(s) not in the official Depth Anything layout, "
            f"e.g. {unknown[:5]}"
        )
    return out


def rename_attention(state_dict: Mapping[str, torch.Tensor], current: bool) -> StateDict:
    """Switch DINOv2 attention names to transformers' current (q_proj..) or legacy (attention.query..) ones."""
    out: StateDict = {}
    for key, tensor in state_dict.items():
        for legacy, modern in _ATTENTION_RENAMES:
            old, new = (legacy, modern) if current else (modern, legacy)
            if old in key:
                key = key.replace(old, new)
                break
        out[key] = tensor
    return out


def unwrap_state_dict(obj: object, source: str = "<checkpoint>") -> StateDict:
    """The tensor dict inside a loaded checkpoint: accepts a bare dict or one nested under
    ``model`` / ``state_dict``, and strips a DataParallel ``module.`` prefix."""
    if isinstance(obj, Mapping):
        for wrapper in ("state_dict", "model"):
            inner = obj.get(wrapper)
            if isinstance(inner, Mapping):
                obj = inner
                break
    if not isinstance(obj, Mapping) or not obj:
        raise CheckpointError(f"{source}: expected a non-empty dict of tensors, got {type(obj).__name__}")
    bad = [k for k, v in obj.items() if not isinstance(k, str) or not isinstance(v, torch.Tensor)]
    if bad:
        raise CheckpointError(f"{source}: entries that are not name -> tensor, e.g. {bad[:5]}")
    if all(k.startswith("module.") for k in obj):
        return {k[len("module."):]: v for k, v in obj.items()}
    return dict(obj)


def read_checkpoint(path: str | os.PathLike[str]) -> StateDict:
    """Load a ``.pth``/``.pt``/``.bin``/``.safetensors`` checkpoint without unpickling code.

    ``torch.load(..., weights_only=True)`` refuses anything but tensors and plain containers.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint file not found: {path}")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            obj: object = load_file(str(path), device="cpu")
        else:
            obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # corrupt file, pickle with code objects, truncated download ...
        raise CheckpointError(f"{path}: cannot be read as a weights-only checkpoint ({exc})") from exc
    return unwrap_state_dict(obj, source=str(path))


def to_model_keys(state_dict: Mapping[str, torch.Tensor], model: nn.Module, source: str = "<state dict>") -> StateDict:
    """Rename a checkpoint (official, legacy or current transformers layout) to ``model``'s names."""
    model_keys = model.state_dict().keys()
    current = any(".attention.q_proj." in k for k in model_keys)
    legacy = official_to_legacy_keys(state_dict, source) if is_official_layout(state_dict) else dict(state_dict)
    return rename_attention(legacy, current=current)


def to_official_keys(state_dict: Mapping[str, torch.Tensor]) -> StateDict:
    """Inverse of ``official_to_legacy_keys``: transformers names -> official, fusing q/k/v."""
    legacy = rename_attention(state_dict, current=False)
    inverse = _inverse_table(legacy.keys())
    out: StateDict = {}
    qkv: dict[tuple[str, str], dict[str, torch.Tensor]] = {}
    for key, tensor in legacy.items():
        match = _LEGACY_QKV.fullmatch(key)
        if match:
            layer, name, kind = match.groups()
            qkv.setdefault((layer, kind), {})[name] = tensor
            continue
        if key not in inverse:
            raise CheckpointError(f"no official name for transformers key {key!r}")
        out[inverse[key]] = tensor
    for (layer, kind), parts in qkv.items():
        out[f"pretrained.blocks.{layer}.attn.qkv.{kind}"] = torch.cat(
            [parts["query"], parts["key"], parts["value"]], dim=0
        )
    return out


def _inverse_table(legacy_keys: Iterable[str]) -> dict[str, str]:
    """legacy-transformers key -> official key, for the keys present (built by enumerating
    the official names a model of that depth can have and mapping them forward)."""
    layers = {int(m.group(1)) for k in legacy_keys if (m := re.match(r"backbone\.encoder\.layer\.(\d+)\.", k))}
    official: list[str] = [
        "pretrained.cls_token",
        "pretrained.mask_token",
        "pretrained.pos_embed",
        "pretrained.patch_embed.proj.weight",
        "pretrained.patch_embed.proj.bias",
        "pretrained.norm.weight",
        "pretrained.norm.bias",
        "depth_head.scratch.output_conv1.weight",
        "depth_head.scratch.output_conv1.bias",
    ]
    for i in sorted(layers):
        for wb in ("weight", "bias"):
            official += [f"pretrained.blocks.{i}.{m}.{wb}" for m in ("norm1", "norm2", "mlp.fc1", "mlp.fc2", "attn.proj")]
        official += [f"pretrained.blocks.{i}.ls1.gamma", f"pretrained.blocks.{i}.ls2.gamma"]
    for i in range(4):
        for wb in ("weight", "bias"):
            official += [f"depth_head.projects.{i}.{wb}", f"depth_head.resize_layers.{i}.{wb}"]
            official += [f"depth_head.scratch.refinenet{i + 1}.out_conv.{wb}"]
            official += [
                f"depth_head.scratch.refinenet{i + 1}.resConfUnit{u}.conv{c}.{wb}" for u in (1, 2) for c in (1, 2)
            ]
        official.append(f"depth_head.scratch.layer{i + 1}_rn.weight")
    for wb in ("weight", "bias"):
        official += [f"depth_head.scratch.output_conv2.0.{wb}", f"depth_head.scratch.output_conv2.2.{wb}"]
    return {name: key for key in official if (name := _legacy_name(key)) is not None}


def load_into(model: nn.Module, state_dict: Mapping[str, torch.Tensor], source: str) -> None:
    """Strictly load ``state_dict`` into ``model``; on mismatch raise CheckpointError naming ``source``."""
    expected = model.state_dict()
    missing = [k for k in expected if k not in state_dict]
    unexpected = [k for k in state_dict if k not in expected]
    wrong_shape = [
        f"{k}: checkpoint {tuple(state_dict[k].shape)} vs model {tuple(v.shape)}"
        for k, v in expected.items()
        if k in state_dict and tuple(state_dict[k].shape) != tuple(v.shape)
    ]
    if missing or unexpected or wrong_shape:
        raise CheckpointError(
            f"{source}: does not fit this architecture (wrong encoder or version?): "
            f"{len(missing)} missing e.g. {missing[:3]}, {len(unexpected)} unexpected e.g. {unexpected[:3]}, "
            f"{len(wrong_shape)} wrong shape e.g. {wrong_shape[:2]}"
        )
    model.load_state_dict(dict(state_dict), strict=True)


# ----------------------------------------------------------------------------- writing


def save_tiny_for_hub(model: nn.Module, path: str | os.PathLike[str], key_format: str = "official") -> Path:
    """Write ``model``'s weights as a ``.pth`` the hub entry can load (atomically).

    ``key_format="official"`` writes the official repositories' names (so the hub path
    exercises the key conversion, as it will with a real downloaded checkpoint);
    ``"transformers"`` writes the model's own names.
    """
    if key_format not in ("official", "transformers"):
        raise ValueError(f"key_format must be 'official' or 'transformers', got {key_format!r}")
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    if key_format == "official":
        state = to_official_keys(state)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        torch.save(state, tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def save_pretrained_dir(model: nn.Module, directory: str | os.PathLike[str]) -> Path:
    """``model.save_pretrained`` into ``directory`` via a temporary sibling, then swap it in."""
    directory = Path(directory)
    directory.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=directory.parent, prefix=f".{directory.name}.", suffix=".tmp"))
    try:
        model.save_pretrained(tmp)  # type: ignore[attr-defined]
        if directory.exists():
            shutil.rmtree(directory)
        os.replace(tmp, directory)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
    return directory


# ----------------------------------------------------------------------------- hashing


def directory_sha256(directory: str | os.PathLike[str]) -> str:
    """Hash of every file under ``directory`` (relative path + content), order-independent."""
    directory = Path(directory)
    digest = hashlib.sha256()
    for path in sorted(p for p in directory.rglob("*") if p.is_file()):
        digest.update(path.relative_to(directory).as_posix().encode() + b"\0")
        digest.update(file_sha256(path).encode() + b"\n")
    return digest.hexdigest()
