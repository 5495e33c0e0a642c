"""Regenerate tests/depth/data/dpt_dinov2_v1_golden.json from the OFFICIAL Depth Anything V1 code.

Not a test (pytest does not collect it): it needs a checkout of LiheYoung/Depth-Anything,
which the tests cannot assume. How the golden values were derived:

1. ``build_tiny_dpt_dinov2(seed=0)`` gives weights under the official key names;
2. the official classes are built at the same tiny size: ``DinoVisionTransformer`` from
   ``torchhub/facebookresearch_dinov2_main/vision_transformer.py`` (embed_dim 32, depth 4,
   heads 2, patch 14, img_size 70, init_values 1.0, MemEffAttention blocks — as
   ``dinov2_vits14`` is built, smaller) as ``pretrained``, and ``depth_anything.dpt.DPTHead``
   (features 16, out_channels [8, 16, 32, 32]) as ``depth_head``, composed with
   ``DPT_DINOv2.forward`` unchanged;
3. the weights load into it with ``strict=True`` (same names and shapes);
4. its outputs on fixed inputs (square and non-square patch grids) are written out.

    python tests/depth/make_v1_golden.py /path/to/Depth-Anything [commit]
"""

from __future__ import annotations

import json
import sys
from functools import partial
from pathlib import Path

import torch
from torch import nn

from perception_tokens.depth import build_tiny_dpt_dinov2

SHAPES = [(28, 28), (28, 42), (42, 28), (70, 56)]
OUT = Path(__file__).parent / "data" / "dpt_dinov2_v1_golden.json"


def fixed_input(height: int, width: int) -> torch.Tensor:
    """A deterministic, non-constant normalised image (no RNG involved)."""
    n = 3 * height * width
    return torch.sin(torch.arange(n, dtype=torch.float32) * 0.37).reshape(1, 3, height, width) * 2.0


def official_tiny(repo: Path) -> nn.Module:
    sys.path[:0] = [str(repo), str(repo / "torchhub" / "facebookresearch_dinov2_main")]
    import vision_transformer as official_vit  # the module the official hubconf builds from
    from depth_anything.dpt import DPT_DINOv2, DPTHead
    from dinov2.layers import MemEffAttention, NestedTensorBlock

    model = DPT_DINOv2.__new__(DPT_DINOv2)
    nn.Module.__init__(model)  # skip the nested torch.hub call; assign the parts it would build
    model.pretrained = official_vit.DinoVisionTransformer(
        img_size=70, patch_size=14, embed_dim=32, depth=4, num_heads=2, mlp_ratio=4, init_values=1.0,
        block_fn=partial(NestedTensorBlock, attn_class=MemEffAttention), ffn_layer="mlp", block_chunks=0,
    )
    model.depth_head = DPTHead(1, 32, 16, False, out_channels=[8, 16, 32, 32], use_clstoken=False)
    return model.eval()


def main() -> None:
    repo = Path(sys.argv[1])
    commit = sys.argv[2] if len(sys.argv) > 2 else "unknown"
    ours = build_tiny_dpt_dinov2(seed=0)
    official = official_tiny(repo)
    official.load_state_dict(ours.state_dict(), strict=True)
    cases = []
    with torch.no_grad():
        for height, width in SHAPES:
            depth = official(fixed_input(height, width))[0]
            cases.append({"height": height, "width": width, "depth": [[round(float(v), 6) for v in row] for row in depth]})
            print(height, width, "max |ours - official| =", float((ours(fixed_input(height, width))[0] - depth).abs().max()))
    OUT.write_text(json.dumps({"source": f"LiheYoung/Depth-Anything@{commit}", "seed": 0, "cases": cases}) + "\n")
    print("wrote", OUT)


if __name__ == "__main__":
    main()
