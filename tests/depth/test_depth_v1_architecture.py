"""Depth Anything V1 (DPT_DINOv2) under the official key names: sizes, keys, and outputs
against golden values computed by the official code (see make_v1_golden.py)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from perception_tokens.depth import (
    HUB_DIR,
    CheckpointError,
    build_dpt_dinov2,
    build_tiny_dpt_dinov2,
    depth_anything_config,
    parameter_count,
    to_model_keys,
)
from perception_tokens.depth.checkpoints import load_into

sys.path.insert(0, str(Path(__file__).parent))
from make_v1_golden import fixed_input  # noqa: E402

GOLDEN = json.loads((Path(__file__).parent / "data" / "dpt_dinov2_v1_golden.json").read_text())

# Counted here from the architecture at full size (meta device, no weights); the published
# sizes are the Depth Anything V1 README's model table (24.8M, 97.5M, 335.3M).
FULL_SIZE_PARAMETERS = {"vits": (24_785_089, 24.8), "vitb": (97_470_785, 97.5), "vitl": (335_315_649, 335.3)}


@pytest.mark.parametrize("encoder", sorted(FULL_SIZE_PARAMETERS))
def test_full_size_parameter_count_matches_the_published_one(encoder):
    model = build_dpt_dinov2(encoder, device="meta")
    assert all(p.is_meta for p in model.parameters())
    exact, published_millions = FULL_SIZE_PARAMETERS[encoder]
    assert parameter_count(model) == exact
    assert round(exact / 1e6, 1) == published_millions


def test_full_size_key_names_and_shapes_are_the_official_ones():
    state = build_dpt_dinov2("vits", device="meta").state_dict()
    assert len(state) == 239  # the official DPT_DINOv2(encoder='vits') state dict has 239 tensors
    assert state["pretrained.pos_embed"].shape == (1, 37 * 37 + 1, 384)  # 518 / 14 = 37
    assert state["pretrained.mask_token"].shape == (1, 384)
    assert state["pretrained.blocks.11.attn.qkv.weight"].shape == (3 * 384, 384)
    assert state["pretrained.blocks.11.ls2.gamma"].shape == (384,)
    assert state["depth_head.resize_layers.0.weight"].shape == (48, 48, 4, 4)  # ConvTranspose x4
    assert state["depth_head.resize_layers.3.weight"].shape == (384, 384, 3, 3)  # stride-2 conv
    assert "depth_head.resize_layers.2.weight" not in state  # nn.Identity
    assert state["depth_head.scratch.layer4_rn.weight"].shape == (64, 384, 3, 3)
    assert "depth_head.scratch.layer4_rn.bias" not in state
    assert state["depth_head.scratch.refinenet1.resConfUnit2.conv2.weight"].shape == (64, 64, 3, 3)
    assert state["depth_head.scratch.output_conv1.weight"].shape == (32, 64, 3, 3)
    assert state["depth_head.scratch.output_conv2.0.weight"].shape == (32, 32, 3, 3)
    assert state["depth_head.scratch.output_conv2.2.weight"].shape == (1, 32, 1, 1)
    assert not any("readout" in k or "register" in k for k in state)  # use_clstoken=False, no registers


@pytest.mark.parametrize("case", GOLDEN["cases"], ids=lambda c: f"{c['height']}x{c['width']}")
def test_outputs_equal_the_official_code(case):
    """Square and non-square patch grids: the position embedding is resized by the official
    scale-factor rule, so the map equals the official model's to float rounding."""
    model = build_tiny_dpt_dinov2(seed=GOLDEN["seed"])
    with torch.no_grad():
        depth = model(fixed_input(case["height"], case["width"]))[0].numpy()
    expected = np.array(case["depth"], dtype=np.float32)
    assert depth.shape == expected.shape == (case["height"], case["width"])
    np.testing.assert_allclose(depth, expected, rtol=0, atol=1e-5)
    assert expected.std() > 0.1  # a real map, not a constant


def test_official_checkpoint_loads_through_hubconf_and_agrees_with_transformers(tmp_path):
    """A checkpoint saved from the V1 architecture under the official names (as
    depth_anything_vits14.pth is) loads strictly through the project's hubconf with either
    implementation; on the stored 5 x 5 patch grid both give the same map."""
    original = build_tiny_dpt_dinov2(seed=5)
    path = tmp_path / "depth_anything_tiny14.pth"
    torch.save(original.state_dict(), path)
    ours = torch.hub.load(str(HUB_DIR), "depth_anything_v1", source="local", encoder="tiny",
                          checkpoint=str(path), implementation="dpt_dinov2")
    hf = torch.hub.load(str(HUB_DIR), "depth_anything_v1", source="local", encoder="tiny", checkpoint=str(path))
    for key, tensor in original.state_dict().items():
        assert torch.equal(ours.state_dict()[key], tensor), key
    image = fixed_input(70, 70)  # 5 x 5 patches: no position-embedding resize
    with torch.no_grad():
        want = original(image)
        np.testing.assert_array_equal(ours(image).numpy(), want.numpy())
        # an independent implementation through the key renaming (q/k/v split, refinenet order)
        np.testing.assert_allclose(hf(image).predicted_depth.numpy(), want.numpy(), rtol=0, atol=1e-4)


def test_transformers_checkpoint_loads_into_dpt_dinov2(tmp_path):
    from transformers import DepthAnythingForDepthEstimation

    original = build_tiny_dpt_dinov2(seed=6)
    hf = DepthAnythingForDepthEstimation(depth_anything_config(1, "tiny")).eval()
    load_into(hf, to_model_keys(original.state_dict(), hf), source="test")
    path = tmp_path / "tiny_hf_keys.pth"
    torch.save(hf.state_dict(), path)
    loaded = torch.hub.load(str(HUB_DIR), "depth_anything_v1", source="local", encoder="tiny",
                            checkpoint=str(path), implementation="dpt_dinov2")
    for key, tensor in original.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], tensor), key


def test_wrong_size_checkpoint_and_wrong_version_are_named(tmp_path):
    path = tmp_path / "tiny.pth"
    torch.save(build_tiny_dpt_dinov2().state_dict(), path)
    with pytest.raises(CheckpointError, match=r"tiny\.pth: does not fit this architecture.*wrong shape"):
        torch.hub.load(str(HUB_DIR), "depth_anything_v1", source="local", encoder="vits",
                       checkpoint=str(path), implementation="dpt_dinov2")
    from perception_tokens.depth.hub_models import load_depth_anything

    with pytest.raises(ValueError, match="V1 only"):
        load_depth_anything(version=2, encoder="tiny", checkpoint=path, implementation="dpt_dinov2")


def test_input_must_be_a_multiple_of_the_patch():
    with pytest.raises(ValueError, match="30x28 is not a multiple of the 14-pixel patch"):
        build_tiny_dpt_dinov2()(torch.zeros(1, 3, 30, 28))
