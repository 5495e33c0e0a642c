"""Checkpoint key layouts: official Depth Anything names <-> transformers names, safe reading."""

from __future__ import annotations

import collections

import pytest
import torch

from perception_tokens.depth import build_tiny_depth_anything
from perception_tokens.depth.checkpoints import (
    CheckpointError,
    official_to_legacy_keys,
    read_checkpoint,
    rename_attention,
    to_model_keys,
    to_official_keys,
)


@pytest.fixture(scope="module")
def tiny():
    return build_tiny_depth_anything(version=2, seed=0)


def test_official_names_map_to_transformers_names():
    hidden = 4
    qkv_weight = torch.arange(3 * hidden * hidden, dtype=torch.float32).reshape(3 * hidden, hidden)
    official = {
        "pretrained.blocks.0.attn.qkv.weight": qkv_weight,
        "pretrained.blocks.0.attn.qkv.bias": torch.arange(3 * hidden, dtype=torch.float32),
        "pretrained.blocks.3.ls2.gamma": torch.ones(hidden),
        "pretrained.pos_embed": torch.zeros(1, 5, hidden),
        "depth_head.scratch.refinenet1.out_conv.weight": torch.zeros(1),
        "depth_head.scratch.refinenet4.resConfUnit2.conv1.bias": torch.zeros(2),
        "depth_head.scratch.layer3_rn.weight": torch.zeros(3),
        "depth_head.scratch.output_conv2.2.bias": torch.zeros(4),
        "depth_head.resize_layers.3.weight": torch.zeros(5),
    }
    renamed = official_to_legacy_keys(official)
    prefix = "backbone.encoder.layer.0.attention.attention."
    assert torch.equal(renamed[prefix + "query.weight"], qkv_weight[:hidden])
    assert torch.equal(renamed[prefix + "key.weight"], qkv_weight[hidden : 2 * hidden])
    assert torch.equal(renamed[prefix + "value.weight"], qkv_weight[2 * hidden :])
    assert renamed[prefix + "value.bias"].tolist() == [8.0, 9.0, 10.0, 11.0]
    assert "backbone.encoder.layer.3.layer_scale2.lambda1" in renamed
    assert "backbone.embeddings.position_embeddings" in renamed
    # refinenet1 is the finest fusion block: transformers' last fusion layer, and vice versa
    assert "neck.fusion_stage.layers.3.projection.weight" in renamed
    assert "neck.fusion_stage.layers.0.residual_layer2.convolution1.bias" in renamed
    assert "neck.convs.2.weight" in renamed
    assert "head.conv3.bias" in renamed
    assert "neck.reassemble_stage.layers.3.resize.weight" in renamed
    assert len(renamed) == len(official) + 4  # each fused qkv pair became 3 + 3 tensors


def test_current_transformers_names_use_q_proj():
    legacy = {"backbone.encoder.layer.1.attention.attention.key.weight": torch.zeros(1),
              "backbone.encoder.layer.1.attention.output.dense.bias": torch.zeros(1)}
    current = rename_attention(legacy, current=True)
    assert set(current) == {"backbone.encoder.layer.1.attention.k_proj.weight",
                            "backbone.encoder.layer.1.attention.o_proj.bias"}
    assert set(rename_attention(current, current=False)) == set(legacy)


def test_round_trip_through_official_layout_is_exact(tiny):
    state = tiny.state_dict()
    official = to_official_keys(state)
    assert all(k.startswith(("pretrained.", "depth_head.")) for k in official)
    assert "pretrained.blocks.0.attn.qkv.weight" in official
    assert official["pretrained.blocks.0.attn.qkv.weight"].shape == (3 * 32, 32)
    back = to_model_keys(official, tiny)
    assert set(back) == set(state)
    assert all(torch.equal(back[k], state[k]) for k in state)


def test_unknown_official_key_is_named():
    with pytest.raises(CheckpointError, match="pretrained.register_tokens"):
        official_to_legacy_keys({"pretrained.register_tokens": torch.zeros(1), "pretrained.cls_token": torch.zeros(1)},
                                source="ckpt.pth")


def test_read_checkpoint_unwraps_and_refuses_pickled_code(tmp_path):
    wrapped = tmp_path / "wrapped.pth"
    torch.save({"model": {"module.a": torch.ones(2), "module.b": torch.zeros(1)}}, wrapped)
    state = read_checkpoint(wrapped)
    assert sorted(state) == ["a", "b"] and state["a"].tolist() == [1.0, 1.0]

    evil = tmp_path / "evil.pth"
    torch.save({"w": torch.ones(1), "obj": collections.Counter(a=1)}, evil)  # not a plain container
    with pytest.raises(CheckpointError, match="evil.pth"):
        read_checkpoint(evil)

    with pytest.raises(FileNotFoundError, match="nope.pth"):
        read_checkpoint(tmp_path / "nope.pth")
