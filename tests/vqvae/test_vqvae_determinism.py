"""Batch size never changes a code: extraction at batch 1, 7 and 64 agrees on every code,
even with a codebook built to be full of near-ties (pairs of codes 1e-6 apart, sitting on
the maps' own latents, where a 1e-7 change of a latent would pick the other code)."""

import numpy as np
import pytest
import torch

from training.vqvae.aurora import nearest_codes_exact
from training.vqvae.data import model_input
from training.vqvae.extract import extract_codes
from training.vqvae.model import DepthVQVAE, VQVAEConfig, tiny_config
from training.vqvae.synthetic import synthetic_depth_maps


CONFIGS = {
    "project": tiny_config(),
    "aurora": VQVAEConfig.aurora(image_size=80, num_downsamples=3, hidden_channels=(16, 32, 64), code_dim=64),
}


def near_tie_model(cfg: VQVAEConfig, maps: list[np.ndarray]) -> DepthVQVAE:
    torch.manual_seed(0)
    model = DepthVQVAE(cfg).eval()
    with torch.no_grad():
        z = model.encode_latents(model_input(maps, cfg))
        flat = z.permute(0, 2, 3, 1).reshape(-1, cfg.code_dim)
        gen = torch.Generator().manual_seed(1)
        picks = flat[torch.randperm(flat.shape[0], generator=gen)[: cfg.codebook_size // 2]]
        nudge = torch.randn(picks.shape, generator=gen) * picks.abs().mean() * 1e-6
        model.vq.embedding.copy_(torch.cat([picks, picks + nudge]))
    return model


@pytest.mark.parametrize("arch", sorted(CONFIGS))
def test_codes_agree_exactly_at_batch_1_7_and_64(arch):
    cfg = CONFIGS[arch]
    maps = synthetic_depth_maps(64, height=60, width=90, seed=7)
    model = near_tie_model(cfg, maps)

    # the codebook really is full of near-ties for these maps
    with torch.no_grad():
        flat = model.encode_latents(model_input(maps, cfg)).permute(0, 2, 3, 1).reshape(-1, cfg.code_dim)
        d = (flat.double()[:, None] - model.vq.embedding.double()[None]).pow(2).sum(-1)
        top2 = d.topk(2, dim=1, largest=False).values
        scale = flat.double().pow(2).sum(1).mean()
    assert int(((top2[:, 1] - top2[:, 0]) < 1e-9 * scale).sum()) >= 64

    by_batch = {b: np.concatenate(list(extract_codes(model, maps, batch_size=b))) for b in (1, 7, 64)}
    assert by_batch[1].shape == (64, 100)
    assert len(np.unique(by_batch[64])) > 20
    for b in (7, 64):
        assert float(np.mean(by_batch[b] == by_batch[1])) == 1.0, f"batch {b} vs 1"


def test_exact_lookup_is_the_true_nearest_and_row_independent():
    gen = torch.Generator().manual_seed(0)
    book = torch.randn(128, 32, generator=gen)
    flat = torch.randn(700, 32, generator=gen)
    codes = nearest_codes_exact(flat, book)  # crosses the 256-row chunks
    truth = torch.cdist(flat.double(), book.double()).argmin(1)
    assert torch.equal(codes, truth)
    assert torch.equal(nearest_codes_exact(flat[123:124], book), codes[123:124])
    # an exact tie goes to the lower index
    tied = torch.cat([book[:5], book[3:4]])
    assert nearest_codes_exact(book[3:4], tied).tolist() == [3]
