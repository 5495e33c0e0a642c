"""Torch training code: the depth VQ-VAE tokenizer (``training.vqvae``) and the LoRA fine-tune.

Nothing under this package imports Dagster; assets call these functions.
"""
