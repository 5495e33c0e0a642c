"""What the project's ``hubconf.py`` entries do: build a Depth Anything and load its checkpoint.

Three implementations of the same network:

* the official ``DepthAnythingV2`` class, when a clone of the official repository is given
  (``repo_dir`` containing the ``depth_anything_v2`` package) — bit-for-bit the reference;
* ``implementation="dpt_dinov2"`` (V1 only): ``dpt_dinov2.DepthAnythingV1``, our module
  under the official key names with the official DINOv2 position-embedding rule — what the
  ``aurora`` preset labels with (equal to the official class on non-square inputs too);
* otherwise transformers' ``DepthAnythingForDepthEstimation`` built from the architecture
  config for that version / encoder, with official checkpoint keys renamed on the fly.

Kept out of ``hubconf.py`` itself so it is importable, testable and shared; ``hubconf.py``
only re-exports it (torch.hub puts the hub dir on ``sys.path``, the installed
``perception_tokens`` package is found as usual).
"""

from __future__ import annotations

import importlib
import os
import sys
from pathlib import Path

from torch import nn

from perception_tokens.depth.architectures import (
    ENCODER_SPECS,
    REAL_ENCODERS,
    check_version_encoder,
    depth_anything_config,
)
from perception_tokens.depth.dpt_dinov2 import DepthAnythingV1
from perception_tokens.depth.checkpoints import (
    CheckpointError,
    is_official_layout,
    load_into,
    read_checkpoint,
    to_model_keys,
    to_official_keys,
)

OFFICIAL_V2_PACKAGE = "depth_anything_v2"


def load_depth_anything(
    version: int = 2,
    encoder: str = "vits",
    checkpoint: str | os.PathLike[str] | None = None,
    repo_dir: str | os.PathLike[str] | None = None,
    implementation: str = "transformers",
) -> nn.Module:
    """Depth Anything ``version``/``encoder`` in eval mode, weights from ``checkpoint``.

    ``checkpoint=None`` keeps random weights (speed measurements only). The checkpoint may
    use the official key layout or transformers' (legacy or current); it is read with
    ``torch.load(weights_only=True)``. With ``repo_dir`` the official class is used
    (version 2 only: the V1 repository fetches its DINOv2 through a nested torch.hub call
    relative to the working directory, which we do not reproduce).
    """
    check_version_encoder(version, encoder)
    if implementation == "dpt_dinov2":
        return _load_dpt_dinov2(version, encoder, checkpoint, repo_dir)
    if implementation != "transformers":
        raise ValueError(f"implementation must be 'transformers' or 'dpt_dinov2', got {implementation!r}")
    if repo_dir is not None:
        return _load_official_v2(version, encoder, checkpoint, Path(repo_dir))

    from transformers import DepthAnythingForDepthEstimation

    model = DepthAnythingForDepthEstimation(depth_anything_config(version, encoder))
    if checkpoint is not None:
        state = read_checkpoint(checkpoint)
        load_into(model, to_model_keys(state, model, source=str(checkpoint)), source=str(checkpoint))
    return model.eval()


def _load_dpt_dinov2(version: int, encoder: str, checkpoint: str | os.PathLike[str] | None, repo_dir) -> nn.Module:
    if version != 1 or repo_dir is not None:
        raise ValueError("implementation 'dpt_dinov2' is Depth Anything V1 only (and takes no repo_dir)")
    return _with_official_weights(DepthAnythingV1(encoder), checkpoint)


def _load_official_v2(version: int, encoder: str, checkpoint: str | os.PathLike[str] | None, repo_dir: Path) -> nn.Module:
    if version != 2:
        raise ValueError(
            "repo_dir (the official implementation) is supported for Depth Anything V2 only; "
            "leave repo_dir unset to load V1 with transformers' implementation"
        )
    if encoder not in REAL_ENCODERS:
        raise ValueError(f"the official class has no {encoder!r} size; use one of {REAL_ENCODERS}")
    package_dir = repo_dir / OFFICIAL_V2_PACKAGE
    if not (package_dir / "dpt.py").is_file():
        raise FileNotFoundError(
            f"repo_dir {repo_dir} is not a Depth-Anything-V2 clone: {package_dir / 'dpt.py'} not found"
        )
    dpt = _import_from(repo_dir, f"{OFFICIAL_V2_PACKAGE}.dpt")
    spec = ENCODER_SPECS[encoder]
    model: nn.Module = dpt.DepthAnythingV2(
        encoder=encoder, features=spec.fusion_hidden_size, out_channels=list(spec.neck_hidden_sizes)
    )
    return _with_official_weights(model, checkpoint)


def _with_official_weights(model: nn.Module, checkpoint: str | os.PathLike[str] | None) -> nn.Module:
    """``model`` in eval mode, with ``checkpoint``'s weights (official or transformers layout) if given."""
    if checkpoint is not None:
        state = read_checkpoint(checkpoint)
        if not is_official_layout(state):  # a transformers-layout checkpoint
            try:
                state = to_official_keys(state)
            except CheckpointError as exc:
                raise CheckpointError(f"{checkpoint}: {exc}") from exc
        load_into(model, state, source=str(checkpoint))
    return model.eval()


def _import_from(root: Path, module_name: str):
    """Import ``module_name`` from ``root``, not from whatever copy an earlier import cached."""
    root = root.resolve()
    top = module_name.split(".")[0]
    for name in [n for n in sys.modules if n == top or n.startswith(top + ".")]:
        origin = getattr(sys.modules[name], "__file__", None) or ""
        if not Path(origin).resolve().is_relative_to(root):
            del sys.modules[name]
    sys.path.insert(0, str(root))
    try:
        return importlib.import_module(module_name)
    finally:
        sys.path.remove(str(root))
