"""DepthVQVAE and its EMA quantizer: config, shapes, codebook updates, save/load."""

import pytest
import torch

from training.vqvae.checkpoint import load_vqvae, save_vqvae
from training.vqvae.model import DepthVQVAE, EMAVectorQuantizer, VQVAEConfig, tiny_config


def test_full_config_is_aurora_shape():
    cfg = VQVAEConfig()
    assert cfg.grid_size == 10 and cfg.codes_per_image == 100
    assert cfg.codebook_size == 128 and cfg.code_dim == 512 and cfg.num_res_blocks == 2
    assert cfg.hidden_channels == (64, 128, 256, 256, 256)
    assert cfg.commitment_weight == 0.25


def test_tiny_config_keeps_10x10_grid_and_128_codes():
    cfg = tiny_config()
    assert (cfg.image_size, cfg.num_downsamples, cfg.grid_size, cfg.codebook_size) == (80, 3, 10, 128)


def test_config_validation_names_the_problem():
    with pytest.raises(ValueError, match="not divisible by 2\\*\\*num_downsamples = 32"):
        VQVAEConfig(image_size=300)
    with pytest.raises(ValueError, match="hidden_channels has 2 entries"):
        VQVAEConfig(hidden_channels=(8, 16))
    with pytest.raises(ValueError, match="ema_decay"):
        tiny_config(ema_decay=1.0)
    with pytest.raises(ValueError, match="unknown VQVAEConfig keys: \\['bogus'\\]"):
        VQVAEConfig.from_dict({"bogus": 1})


def test_config_dict_round_trip():
    cfg = tiny_config(code_dim=32, kmeans_init=False)
    again = VQVAEConfig.from_dict(cfg.to_dict())
    assert again == cfg and again.hidden_channels == (16, 32, 64)


def test_forward_encode_decode_shapes_and_code_range():
    torch.manual_seed(0)
    model = DepthVQVAE(tiny_config())
    x = torch.rand(3, 1, 80, 80)
    out = model(x)  # training mode: k-means init on this batch
    assert out.recon.shape == (3, 1, 80, 80)
    assert out.codes.shape == (3, 10, 10) and out.codes.dtype == torch.long
    assert 0 <= int(out.codes.min()) and int(out.codes.max()) < 128
    assert torch.allclose(out.loss, out.recon_loss + 0.25 * out.commit_loss)
    model.eval()
    with torch.no_grad():
        codes = model.encode(x)
        assert torch.equal(codes, model(x).codes)  # eval forward == encode
        flat = model.decode_codes(codes.reshape(3, 100))
        assert torch.allclose(flat, model.decode_codes(codes))
        assert flat.shape == (3, 1, 80, 80)


def test_bad_inputs_raise_clear_errors():
    model = DepthVQVAE(tiny_config())
    with pytest.raises(ValueError, match=r"expects input \[B, 1, 80, 80\]"):
        model.encode(torch.rand(1, 1, 64, 64))
    with pytest.raises(ValueError, match="codes must lie in 0..127"):
        model.decode_codes(torch.full((1, 10, 10), 128))
    with pytest.raises(ValueError, match="decode_codes expects codes"):
        model.decode_codes(torch.zeros(1, 99, dtype=torch.long))


def test_gradients_reach_encoder_through_straight_through_estimator():
    torch.manual_seed(0)
    model = DepthVQVAE(tiny_config())
    model(torch.rand(2, 1, 80, 80)).loss.backward()
    first_conv = model.encoder.net[0].weight
    assert first_conv.grad is not None and float(first_conv.grad.abs().sum()) > 0


def test_ema_update_moves_used_code_toward_its_inputs():
    q = EMAVectorQuantizer(2, 2, decay=0.5, eps=1e-9, kmeans_init=False, dead_code_threshold=0.0)
    q.embedding.copy_(torch.tensor([[0.0, 0.0], [10.0, 10.0]]))
    q.embed_sum.copy_(q.embedding)
    q.train()
    z = torch.ones(4, 2, 1, 1)  # four vectors at (1, 1): all nearest to code 0
    _, codes, _ = q(z)
    assert codes.flatten().tolist() == [0, 0, 0, 0]
    # cluster 2.5 = 0.5*1 + 0.5*4; sum (2, 2) = 0.5*(0, 0) + 0.5*(4, 4) -> code 0 at (0.8, 0.8)
    assert torch.allclose(q.cluster_size, torch.tensor([2.5, 0.5]))
    assert torch.allclose(q.embedding[0], torch.tensor([0.8, 0.8]), atol=1e-6)
    assert torch.allclose(q.embedding[1], torch.tensor([10.0, 10.0]), atol=1e-6)  # unused: unchanged
    q.eval()
    q(z)  # eval: no update
    assert torch.allclose(q.embedding[0], torch.tensor([0.8, 0.8]), atol=1e-6)


def _clustered_points(seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    centers = torch.tensor([[0.0, 0.0], [5.0, 0.0], [0.0, 5.0], [5.0, 5.0]])
    pts = centers.repeat_interleave(16, 0) + 0.1 * torch.randn(64, 2, generator=g)
    return pts.reshape(64, 2, 1, 1)


@pytest.mark.parametrize("threshold, expect_restart", [(1.0, True), (0.0, False)])
def test_dead_code_restart_raises_usage(threshold, expect_restart):
    torch.manual_seed(0)
    q = EMAVectorQuantizer(
        8, 2, kmeans_init=False, dead_code_threshold=threshold, dead_code_window=1, decay=0.99
    )
    q.embedding.copy_(torch.full((8, 2), 100.0))
    q.embedding[0] = 0.0  # one live code near the data, seven far away
    q.embed_sum.copy_(q.embedding)
    z = _clustered_points()
    usage_before = len(torch.unique(q.nearest_codes(z.reshape(64, 2))))
    q.train()
    q(z)
    usage_after = len(torch.unique(q.nearest_codes(z.reshape(64, 2))))
    assert usage_before == 1
    if expect_restart:
        assert q.last_restarted == 7 and usage_after >= 3
    else:
        assert q.last_restarted == 0 and usage_after == 1


def test_kmeans_init_spreads_codes_over_first_batch():
    torch.manual_seed(0)
    q = EMAVectorQuantizer(4, 2, kmeans_init=True, dead_code_threshold=0.0)
    assert not bool(q.initialized)
    z = _clustered_points()
    q.train()
    _, codes, _ = q(z)
    assert bool(q.initialized)
    assert len(torch.unique(codes)) == 4  # one code per cluster
    assert float(torch.cdist(q.embedding, z.reshape(64, 2)).min(1).values.max()) < 0.5


def test_save_load_round_trip_identical_outputs(tmp_path):
    torch.manual_seed(0)
    model = DepthVQVAE(tiny_config())
    x = torch.rand(2, 1, 80, 80)
    model(x)  # change buffers from their initial values
    model.eval()
    weights = save_vqvae(model, tmp_path)
    assert weights.name == "model.safetensors" and (tmp_path / "config.json").is_file()
    loaded = load_vqvae(tmp_path)
    assert not loaded.training and bool(loaded.quantizer.initialized)
    with torch.no_grad():
        assert torch.equal(loaded.encode(x), model.encode(x))
        assert torch.equal(loaded.decode_codes(model.encode(x)), model.decode_codes(model.encode(x)))
    for k, v in model.state_dict().items():
        assert torch.equal(v, loaded.state_dict()[k]), k
    assert torch.equal(load_vqvae(weights).quantizer.embedding, model.quantizer.embedding)


def test_load_names_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="model.safetensors"):
        load_vqvae(tmp_path)
