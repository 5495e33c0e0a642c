"""Depth teachers: whatever turns images into relative inverse depth (larger = nearer).

Three kinds, chosen by configuration through ``build_teacher(kind, **options)``:

* ``depth_anything_hub`` — Depth Anything V1/V2 through ``torch.hub.load`` (the project's
  own hub dir by default, or another local dir / GitHub ref) with a local checkpoint file;
* ``depth_anything_hf`` — transformers' ``DepthAnythingForDepthEstimation.from_pretrained``
  on a local directory or hub id;
* ``ground_truth`` — the demo scenes' metric depth ``d`` turned into ``1/d`` so it follows
  the same convention as the models.

Every teacher has a stable ``identity`` (cache key, together with the image hash) and
``predict(images, ids)`` returning raw float32 maps at each image's original size.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Protocol, Sequence, runtime_checkable

import numpy as np
import torch
from torch import nn

from perception_tokens.depth.architectures import (
    DEFAULT_INPUT_SIZE,
    ENCODER_SPECS,
    check_version_encoder,
)
from perception_tokens.depth.checkpoints import directory_sha256, file_sha256
from perception_tokens.depth.hub import HUB_DIR
from perception_tokens.depth.preprocess import check_input_size, preprocess_batch, resize_predictions, rgb_problem
from perception_tokens.depth.run_py import (
    PROJECT_FORMAT,
    RUN_PY_FORMAT,
    lower_bound_size,
    preprocess_keep_aspect,
    resize_back,
)

ImageId = tuple[str, str]  # (dataset, image_id)
DepthFn = Callable[[str, str], np.ndarray]  # (dataset, image_id) -> metric depth HxW


@runtime_checkable
class DepthTeacher(Protocol):
    """Anything that labels images with relative inverse depth.

    A teacher may also carry ``image_format`` (``run_py.ImageFormat``): how its raw maps
    become PNGs; without it the project's format (float64 min-max, one channel) is used.
    """

    identity: str

    def predict(self, images: Sequence[np.ndarray], ids: Sequence[ImageId]) -> list[np.ndarray]:
        """Raw relative inverse depth (float32 HxW, larger = nearer) for each uint8 HxWx3 RGB
        image, at the image's original size. ``ids`` are the (dataset, image_id) pairs."""
        ...


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``"auto"`` -> CUDA when available, else CPU; anything else as ``torch.device``."""
    if isinstance(device, str) and device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def _check_batch(images: Sequence[np.ndarray], ids: Sequence[ImageId]) -> None:
    if len(images) != len(ids):
        raise ValueError(f"predict got {len(images)} images but {len(ids)} ids")
    for image, (dataset, image_id) in zip(images, ids):
        problem = rgb_problem(image)
        if problem:
            raise ValueError(f"{dataset}/{image_id}: {problem}")


RESIZE_MODES = ("square", "keep_aspect")


class DepthAnythingTeacher:
    """A Depth Anything network (transformers', the official class or ours) behind the teacher API.

    ``resize="square"`` (the project's): every image to a fixed ``input_size`` square so a
    batch is one forward pass; back with corners aligned; one-channel PNG, float64 min-max.
    ``resize="keep_aspect"`` (the official V1 ``run.py``, see ``run_py.py``): short side at
    least ``input_size``, multiples of 14; images of the same resized shape share a forward
    pass; back without aligned corners; float32 min-max, three equal channels.
    channels_last, ``torch.inference_mode``, bf16 autocast on CUDA only (CPU bf16 is slow
    and changes results for nothing).
    """

    def __init__(
        self,
        model: nn.Module,
        identity: str,
        input_size: int = DEFAULT_INPUT_SIZE,
        device: str | torch.device = "auto",
        autocast: bool = True,
        resize: str = "square",
    ):
        if resize not in RESIZE_MODES:
            raise ValueError(f"resize must be one of {RESIZE_MODES}, got {resize!r}")
        self.input_size = check_input_size(input_size)
        self.resize = resize
        self.image_format = RUN_PY_FORMAT if resize == "keep_aspect" else PROJECT_FORMAT
        self.device = resolve_device(device)
        self.use_bf16 = bool(autocast) and self.device.type == "cuda"
        self.model = model.eval().to(self.device).to(memory_format=torch.channels_last)
        suffix = ":keep_aspect" if resize == "keep_aspect" else ""
        self.identity = identity + suffix + (":bf16" if self.use_bf16 else "")

    def _forward(self, batch: torch.Tensor) -> torch.Tensor:
        batch = batch.to(self.device, non_blocking=True)
        with torch.inference_mode():
            with torch.autocast(device_type=self.device.type, dtype=torch.bfloat16, enabled=self.use_bf16):
                output = self.model(batch)
        # transformers returns DepthEstimatorOutput, the official class and ours a (N, H, W) tensor
        depth = output.predicted_depth if hasattr(output, "predicted_depth") else output
        return depth.float()

    def predict(self, images: Sequence[np.ndarray], ids: Sequence[ImageId]) -> list[np.ndarray]:
        _check_batch(images, ids)
        if not images:
            return []
        sizes = [(int(im.shape[0]), int(im.shape[1])) for im in images]
        if self.resize == "square":
            return resize_predictions(self._forward(preprocess_batch(images, self.input_size)), sizes)
        groups: dict[tuple[int, int], list[int]] = {}
        for index, (height, width) in enumerate(sizes):
            groups.setdefault(lower_bound_size(height, width, self.input_size), []).append(index)
        out: list[np.ndarray | None] = [None] * len(images)
        for members in groups.values():
            batch = torch.from_numpy(np.stack([preprocess_keep_aspect(images[i], self.input_size) for i in members]))
            depth = self._forward(batch.contiguous(memory_format=torch.channels_last))
            for i, prediction in zip(members, depth):
                out[i] = resize_back(prediction, sizes[i])
        return out  # type: ignore[return-value]


class GroundTruthTeacher:
    """Demo-scene metric depth ``d`` as inverse depth ``1/d`` (larger = nearer, like the models)."""

    def __init__(self, depth_fn: DepthFn, name: str | None = None):
        if not callable(depth_fn):
            raise ValueError(f"ground_truth teacher: depth_fn must be callable, got {type(depth_fn).__name__}")
        self.depth_fn = depth_fn
        source = name or f"{getattr(depth_fn, '__module__', '?')}.{getattr(depth_fn, '__qualname__', '?')}"
        self.identity = f"ground_truth:{source}"

    def predict(self, images: Sequence[np.ndarray], ids: Sequence[ImageId]) -> list[np.ndarray]:
        _check_batch(images, ids)
        out = []
        for image, (dataset, image_id) in zip(images, ids):
            depth = np.asarray(self.depth_fn(dataset, image_id), dtype=np.float64)
            if depth.shape != image.shape[:2]:
                raise ValueError(
                    f"{dataset}/{image_id}: ground-truth depth shape {depth.shape} != image size {image.shape[:2]}"
                )
            invalid = ~np.isfinite(depth) | (depth <= 0)
            if invalid.any():
                raise ValueError(
                    f"{dataset}/{image_id}: ground-truth depth has {int(invalid.sum())} non-positive or non-finite value(s)"
                )
            out.append((1.0 / depth).astype(np.float32))
        return out


# ----------------------------------------------------------------------------- factory

KINDS = ("depth_anything_hub", "depth_anything_hf", "ground_truth")
_MODEL_COMMON = {"input_size", "device", "autocast", "resize"}
IMPLEMENTATIONS = ("transformers", "dpt_dinov2")
_OPTIONS: dict[str, tuple[set[str], set[str]]] = {  # kind -> (required, optional)
    "depth_anything_hub": (
        {"checkpoint"},
        {"version", "encoder", "implementation", "repo_dir", "hub_repo", "hub_source", "trust_repo"} | _MODEL_COMMON,
    ),
    "depth_anything_hf": ({"model"}, {"revision", "local_files_only"} | _MODEL_COMMON),
    "ground_truth": ({"depth_fn"}, {"name"}),
}


def build_teacher(kind: str, **options: Any) -> DepthTeacher:
    """Build a depth teacher from configuration; options are validated with clear errors.

    depth_anything_hub: checkpoint (file, required), version (1|2, default 2), encoder
        (vits|vitb|vitl, default vits; 'tiny' = test model), implementation ('transformers',
        default, or 'dpt_dinov2': V1 only, our module under the official key names with the
        official position-embedding rule), repo_dir (official V2 clone),
        hub_repo (default: the project's hub dir), hub_source ('local'|'github'),
        trust_repo (must be True for 'github'), input_size, device, autocast.
    depth_anything_hf: model (local dir or hub id, required), revision, local_files_only,
        input_size, device, autocast.
    ground_truth: depth_fn ((dataset, image_id) -> metric depth HxW, required), name.
    Common model options: input_size (multiple of 14, default 518; the short-side lower
    bound with resize='keep_aspect'), device ('auto'), autocast (bf16 on CUDA, default True),
    resize ('square', default, or 'keep_aspect': the official V1 run.py handling).
    """
    if kind not in _OPTIONS:
        raise ValueError(f"unknown depth teacher kind {kind!r}; expected one of {KINDS}")
    required, optional = _OPTIONS[kind]
    unknown = sorted(set(options) - required - optional)
    if unknown:
        raise ValueError(f"{kind}: unknown option(s) {unknown}; allowed: {sorted(required | optional)}")
    missing = sorted(k for k in required if options.get(k) is None)
    if missing:
        raise ValueError(f"{kind}: missing required option(s) {missing}")
    if kind == "ground_truth":
        return GroundTruthTeacher(options["depth_fn"], options.get("name"))
    input_size = check_input_size(options.get("input_size", DEFAULT_INPUT_SIZE))
    runtime = {
        "input_size": input_size,
        "device": options.get("device", "auto"),
        "autocast": options.get("autocast", True),
        "resize": options.get("resize", "square"),
    }
    if runtime["resize"] not in RESIZE_MODES:
        raise ValueError(f"{kind}: resize must be one of {RESIZE_MODES}, got {runtime['resize']!r}")
    if kind == "depth_anything_hub":
        return _build_hub_teacher(options, runtime)
    return _build_hf_teacher(options, runtime)


def _build_hub_teacher(options: dict[str, Any], runtime: dict[str, Any]) -> DepthAnythingTeacher:
    version = options.get("version", 2)
    encoder = options.get("encoder", "vits")
    check_version_encoder(version, encoder)
    implementation = options.get("implementation", "transformers")
    if implementation not in IMPLEMENTATIONS:
        raise ValueError(f"depth_anything_hub: implementation must be one of {IMPLEMENTATIONS}, got {implementation!r}")
    if implementation == "dpt_dinov2" and (version != 1 or options.get("repo_dir") is not None):
        raise ValueError("depth_anything_hub: implementation 'dpt_dinov2' is Depth Anything V1 only, without repo_dir")
    checkpoint = Path(options["checkpoint"])
    if not checkpoint.is_file():
        raise FileNotFoundError(f"depth_anything_hub: checkpoint file not found: {checkpoint}")
    repo_dir = options.get("repo_dir")
    if repo_dir is not None and not Path(repo_dir).is_dir():
        raise FileNotFoundError(f"depth_anything_hub: repo_dir is not a directory: {repo_dir}")
    source = options.get("hub_source", "local")
    hub_repo = options.get("hub_repo") or str(HUB_DIR)
    if source == "local":
        if not (Path(hub_repo) / "hubconf.py").is_file():
            raise FileNotFoundError(f"depth_anything_hub: no hubconf.py in hub_repo {hub_repo}")
    elif source == "github":
        if options.get("hub_repo") is None:
            raise ValueError("depth_anything_hub: hub_source='github' needs hub_repo='owner/repo[:ref]'")
        if options.get("trust_repo") is not True:
            raise ValueError(
                f"depth_anything_hub: loading code from GitHub ({hub_repo}) needs trust_repo=True "
                "(set it explicitly; a pipeline must not stop at an interactive prompt)"
            )
    else:
        raise ValueError(f"depth_anything_hub: hub_source must be 'local' or 'github', got {source!r}")

    entry = f"depth_anything_v{version}"
    hub_kwargs: dict[str, Any] = {"encoder": encoder, "checkpoint": str(checkpoint)}
    if repo_dir is not None:
        hub_kwargs["repo_dir"] = str(repo_dir)
    if implementation != "transformers":
        hub_kwargs["implementation"] = implementation
    if source == "github":
        model = torch.hub.load(hub_repo, entry, source="github", trust_repo=True, **hub_kwargs)
    else:
        model = torch.hub.load(hub_repo, entry, source="local", **hub_kwargs)

    if repo_dir is not None:
        implementation = "official"
    identity = (
        f"depth_anything_hub:v{version}:{encoder}:ckpt-{file_sha256(checkpoint)[:12]}"
        f":{implementation}:in{runtime['input_size']}"
    )
    if source == "github":
        identity += f":gh-{hub_repo}"
    return DepthAnythingTeacher(model, identity, **runtime)


def _build_hf_teacher(options: dict[str, Any], runtime: dict[str, Any]) -> DepthAnythingTeacher:
    from transformers import DepthAnythingForDepthEstimation

    name = str(options["model"])
    local = Path(name).is_dir()
    if not local and (Path(name).exists() or name.startswith((".", "/", "~"))):
        # a path, not an "org/name" hub id: fail here rather than ask the network for it
        raise FileNotFoundError(f"depth_anything_hf: model directory not found: {name}")
    kwargs: dict[str, Any] = {"dtype": torch.float32}
    if options.get("revision") is not None:
        kwargs["revision"] = options["revision"]
    if options.get("local_files_only") is not None:
        kwargs["local_files_only"] = bool(options["local_files_only"])
    model = DepthAnythingForDepthEstimation.from_pretrained(name, **kwargs)
    version, encoder = describe_config(model.config)
    if local:
        source = f"dir-{directory_sha256(name)[:12]}"
    else:
        source = f"{name}@{options.get('revision') or 'main'}"
    identity = f"depth_anything_hf:v{version}:{encoder}:{source}:in{runtime['input_size']}"
    return DepthAnythingTeacher(model, identity, **runtime)


def describe_config(config: Any) -> tuple[str, str]:
    """(version, encoder) of a DepthAnythingConfig when it matches a known size, else '?', 'custom'."""
    backbone = config.backbone_config
    for encoder, spec in ENCODER_SPECS.items():
        if backbone.hidden_size == spec.hidden_size and backbone.num_hidden_layers == spec.num_layers:
            out = tuple(backbone.out_indices)
            versions = [v for v in (1, 2) if out == spec.out_indices(v)]
            # the tiny size taps every layer in both versions: ambiguous, say so
            return (str(versions[0]) if len(versions) == 1 else "?"), encoder
    return "?", "custom"
