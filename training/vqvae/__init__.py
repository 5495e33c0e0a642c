"""Depth VQ-VAE tokenizer (Aurora / AiT style): depth map -> 10x10 grid of codes in 0..127.

Modules, one job each:
  config     config dataclass (``VQVAEConfig.aurora()``: the reference model)
  model      the model: encoder/decoder of either architecture around its quantizer
  quantizer  the project's EMA vector quantizer
  aurora     the reference AiT layers and EMA quantizer, exact nearest-code lookup
  reference_format  the reference's ``{'weights': state_dict}`` file: read strictly, write back
  depth_codes       depth PNG folder -> JSON lines of codes (get_codes.py; ``ptok depth-codes``)
  data       uint8 depth maps <-> model tensors, batching of streams
  checkpoint save/load weights (safetensors + config.json), atomic writes
  train      seeded, resumable trainer
  metrics    depth reconstruction metrics, codebook usage, closest-point agreement
  extract    batched code extraction (and the one-image-per-forward reference path)
  synthetic  simple synthetic depth scenes for tests, demos and benchmarks
"""

from training.vqvae.checkpoint import load_vqvae, save_vqvae
from training.vqvae.data import depth_to_tensor, iter_depth_batches, tensor_to_depth_uint8
from training.vqvae.extract import codes_to_token_strings, extract_codes, extract_codes_one_by_one
from training.vqvae.metrics import (
    CodeUsage,
    closest_point_agreement,
    codebook_stats,
    depth_errors,
    evaluate_vqvae,
    reconstruction_examples,
    sample_points,
)
from training.vqvae.model import DepthVQVAE, EMAVectorQuantizer, VQOutput, VQVAEConfig, tiny_config
from training.vqvae.train import VQVAETrainConfig, VQVAETrainResult, train_vqvae

__all__ = [
    "CodeUsage",
    "DepthVQVAE",
    "EMAVectorQuantizer",
    "VQOutput",
    "VQVAEConfig",
    "VQVAETrainConfig",
    "VQVAETrainResult",
    "closest_point_agreement",
    "codebook_stats",
    "codes_to_token_strings",
    "depth_errors",
    "depth_to_tensor",
    "evaluate_vqvae",
    "extract_codes",
    "extract_codes_one_by_one",
    "iter_depth_batches",
    "load_vqvae",
    "reconstruction_examples",
    "sample_points",
    "save_vqvae",
    "tensor_to_depth_uint8",
    "tiny_config",
    "train_vqvae",
]
