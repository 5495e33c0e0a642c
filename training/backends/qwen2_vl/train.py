"""The Qwen2-VL fine-tune recipe: a VPT run (``finetune.vpt.enabled``) trains VPT's two stages
(:mod:`training.vpt.train`); any other run is the Qwen2.5-VL recipe with Qwen2-VL's model."""

from __future__ import annotations

from training.backends.qwen2_5_vl.train import run_qwen_finetune
from training.backends.qwen2_vl.model import add_tokens, load_qwen2_vl
from training.backends.qwen2_vl.reload import FAMILY
from training.finetune.config import FinetuneConfig, FinetuneResult


def run_finetune(config: FinetuneConfig, records, image_dir, out_dir, **kwargs) -> FinetuneResult:
    """Fine-tune ``config.checkpoint`` (a Qwen2-VL preset or checkpoint) on ``records``, in order."""
    if config.vpt.enabled:
        from training.vpt.train import run_vpt_finetune

        kwargs.pop("codebook", None), kwargs.pop("decoder", None)  # no depth tokens in a VPT run
        return run_vpt_finetune(config, records, image_dir, out_dir, load=load_qwen2_vl, add_family_tokens=add_tokens,
                                family=FAMILY, **kwargs)
    return run_qwen_finetune(config, records, image_dir, out_dir, load=load_qwen2_vl, add_family_tokens=add_tokens,
                             family=FAMILY, title="Qwen2-VL", **kwargs)
