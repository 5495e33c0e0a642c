"""The soft-merge reconstruction depth loss in a real fine-tune (Perceptio sec. 3.4.3): the worker takes the
trained VQ-VAE (--vqvae), frozen, and the loss trains through it; without the VQ-VAE it refuses, saying so."""

from __future__ import annotations

import json

import pytest
import torch
from tests.segmentation.seg_records import square_records

from training.backends import get_backend
from training.finetune.config import FinetuneConfig
from training.finetune.launch import frozen_vqvae_parts, main
from training.finetune.lora import LoraSettings
from training.llava.losses import DepthLossWeights, hard_quantized, soft_quantized
from training.vqvae.checkpoint import load_vqvae, save_vqvae
from training.vqvae.config import VQVAEConfig
from training.vqvae.model import DepthVQVAE

pytestmark = pytest.mark.usefixtures("single_torch_thread")


@pytest.fixture(scope="module")
def vqvae_dir(tmp_path_factory):
    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("vqvae")
    save_vqvae(DepthVQVAE(VQVAEConfig.tiny()).eval(), folder)
    return folder


def test_the_frozen_parts_decode_as_the_model_does_and_pass_gradients_to_the_codes(vqvae_dir):
    codebook, decode = frozen_vqvae_parts(vqvae_dir)
    model = load_vqvae(vqvae_dir)
    codes = torch.arange(100).reshape(1, 100) % codebook.shape[0]
    with torch.no_grad():
        assert torch.allclose(decode(hard_quantized(codes, codebook)), model.decode_codes(codes), atol=1e-6)
    logits = torch.randn(1, 100, codebook.shape[0], requires_grad=True)
    decode(soft_quantized(logits, codebook)).mean().backward()
    assert logits.grad is not None and logits.grad.abs().sum() > 0
    assert codebook.requires_grad is False


def _config(**changes) -> FinetuneConfig:
    return FinetuneConfig(checkpoint="tiny", max_steps=2, per_device_batch_size=4, lr=1e-2, projector_lr=1e-3, warmup_ratio=0.0,
                          logging_steps=1, save_steps=1000, lora=LoraSettings(r=8, alpha=16),
                          depth_losses=DepthLossWeights(reconstruction=1.0), **changes)


def test_the_reconstruction_loss_trains_with_the_vqvae_and_is_refused_without(vqvae_dir, tmp_path):
    records = square_records(tmp_path)
    for r in records:  # depth spans only: the LM + reconstruction path, without the segmentation head
        r.pop("mask_rle")
    codebook, decode = frozen_vqvae_parts(vqvae_dir)
    metrics = []
    get_backend("llava").run_finetune(_config(), records, tmp_path / "images", tmp_path / "run", log=lambda _m: None,
                                      metrics_callback=metrics.append, codebook=codebook, decoder=decode)
    losses = [m["depth_reconstruction_loss"] for m in metrics if "depth_reconstruction_loss" in m]
    assert len(losses) == 2 and all(v > 0 for v in losses)

    (tmp_path / "records.json").write_text(json.dumps(records))
    (tmp_path / "config.json").write_text(json.dumps(_config().to_dict()))
    with pytest.raises(SystemExit, match="needs the depth VQ-VAE: pass --vqvae"):
        main(["--config", str(tmp_path / "config.json"), "--records", str(tmp_path / "records.json"),
              "--image-dir", str(tmp_path / "images"), "--out", str(tmp_path / "run2")], log=lambda _m: None)
