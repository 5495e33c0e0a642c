"""torch.hub entry points for Depth Anything (the upstream repositories ship none).

    torch.hub.load("<this dir>", "depth_anything_v2", source="local",
                   encoder="vits", checkpoint="depth_anything_v2_vits.pth",
                   repo_dir=None)   # or a clone of DepthAnything/Depth-Anything-V2

    torch.hub.load("<this dir>", "depth_anything_v1", source="local", encoder="vits",
                   checkpoint="depth_anything_vits14.pth", implementation="dpt_dinov2")

``checkpoint`` is read with ``torch.load(weights_only=True)``; official and transformers key
layouts are both accepted. Without ``repo_dir`` the network is transformers'
``DepthAnythingForDepthEstimation``; with it, the official ``DepthAnythingV2`` class.
"""

dependencies = ["torch", "transformers"]

# torch.hub inserts this directory into sys.path; nothing here shadows another module name,
# and the implementation comes from the installed perception_tokens package.
from perception_tokens.depth.hub_models import load_depth_anything as _load_depth_anything


def depth_anything_v2(encoder="vits", checkpoint=None, repo_dir=None):
    """Depth Anything V2 (encoder: vits, vitb, vitl; 'tiny' for the test model), eval mode."""
    return _load_depth_anything(version=2, encoder=encoder, checkpoint=checkpoint, repo_dir=repo_dir)


def depth_anything_v1(encoder="vits", checkpoint=None, repo_dir=None, implementation="transformers"):
    """Depth Anything V1 (encoder: vits, vitb, vitl; 'tiny' for the test model), eval mode.

    implementation='dpt_dinov2': the official DPT_DINOv2 structure and key names (loads
    ``depth_anything_vits14.pth`` as is), the network the ``aurora`` preset labels with.
    """
    return _load_depth_anything(version=1, encoder=encoder, checkpoint=checkpoint, repo_dir=repo_dir,
                                implementation=implementation)
