"""The ``aurora`` architecture is the reference AiT VQ-VAE: names, shapes, size, init,
preprocessing, training schedule, reference checkpoint files (read strictly, written back)."""

import numpy as np
import pytest
import torch
from PIL import Image

from training.vqvae.data import depth_to_tensor, resize_depth
from training.vqvae.model import DepthVQVAE, VQVAEConfig
from training.vqvae.reference_format import (
    config_from_reference_state,
    load_any_vqvae,
    load_reference_vqvae,
    read_reference_state,
    save_reference_checkpoint,
)
from training.vqvae.train import VQVAETrainConfig, train_vqvae


def tiny_aurora(**kw) -> VQVAEConfig:
    values = dict(image_size=80, num_downsamples=3, hidden_channels=(4, 8, 16), num_res_blocks=1, codebook_size=16, code_dim=8)
    values.update(kw)
    return VQVAEConfig.aurora(**values)


def test_full_aurora_model_has_reference_names_shapes_and_size():
    model = DepthVQVAE(VQVAEConfig.aurora())
    sd = model.state_dict()
    # VQVAE.py:241-297 with ait_depth_vqvae.py's hidden_dim 16, ratio 32, 2 ResBlock_v1, 128 x 512
    expected = {
        "encoder.0.weight": (16, 1, 4, 4), "encoder.2.weight": (32, 16, 4, 4), "encoder.8.weight": (256, 128, 4, 4),
        "encoder.10.net.0.weight": (256, 256, 3, 3), "encoder.10.net.2.weight": (256, 256, 3, 3),
        "encoder.11.net.4.weight": (256, 256, 1, 1), "encoder.12.weight": (512, 256, 1, 1),
        "decoder.0.weight": (256, 512, 1, 1), "decoder.2.net.0.weight": (256, 256, 3, 3), "decoder.3.net.4.bias": (256,),
        "decoder.4.weight": (256, 256, 4, 4), "decoder.6.weight": (256, 128, 4, 4), "decoder.12.weight": (32, 16, 4, 4),
        "decoder.14.weight": (1, 16, 1, 1),
        "_vq_vae._embedding": (128, 512), "_vq_vae._ema_cluster_size": (128,), "_vq_vae._ema_w": (128, 512),
    }
    assert {k: tuple(sd[k].shape) for k in expected} == expected
    assert len(sd) == 53  # 24 encoder and 26 decoder weights and biases, 3 quantizer buffers
    assert model.num_parameters() == 7_689_201  # the 7.69 M of the reference config
    assert isinstance(model.decoder[4], torch.nn.ConvTranspose2d) and isinstance(model.encoder[12], torch.nn.Conv2d)


def test_quantizer_init_is_the_references():
    torch.manual_seed(0)
    q = DepthVQVAE(VQVAEConfig.aurora())._vq_vae
    assert torch.equal(q._ema_cluster_size, torch.zeros(128))
    # embedding and ema_w are two independent N(0, 1) draws (VQVAE.py:65-73), not k-means
    assert not torch.equal(q._embedding, q._ema_w)
    for t in (q._embedding, q._ema_w):
        assert abs(float(t.mean())) < 0.02 and abs(float(t.std()) - 1.0) < 0.02


def test_aurora_config_rejects_project_only_options():
    with pytest.raises(ValueError, match="kmeans_init applies to the project quantizer"):
        VQVAEConfig.aurora(kmeans_init=True)
    with pytest.raises(ValueError, match="dead_code_threshold 0"):
        VQVAEConfig.aurora(dead_code_threshold=1.0)
    with pytest.raises(ValueError, match="doubling"):
        VQVAEConfig.aurora(hidden_channels=(16, 32, 64, 128, 128))
    with pytest.raises(ValueError, match="resize must be one of"):
        VQVAEConfig.aurora(resize="bicubic")


def test_nearest_resize_is_pils_and_differs_from_area():
    rng = np.random.default_rng(0)
    depth = rng.integers(0, 256, (97, 131), dtype=np.uint8)
    got = resize_depth(depth, 80, "nearest")
    assert np.array_equal(got, np.asarray(Image.fromarray(depth).resize((80, 80), Image.Resampling.NEAREST)))
    rows = np.floor((np.arange(80) + 0.5) * 97 / 80).astype(int)
    cols = np.floor((np.arange(80) + 0.5) * 131 / 80).astype(int)
    assert np.array_equal(got, depth[rows][:, cols])  # every value is a source pixel, none blended
    assert not np.array_equal(got, resize_depth(depth, 80, "area"))


def test_aurora_input_is_normalized_to_minus_one_one_and_loss_on_that_scale():
    torch.manual_seed(0)
    model = DepthVQVAE(tiny_aurora())
    x = depth_to_tensor([np.array([[0, 255], [51, 204]], np.uint8)], 80, "nearest")
    x_in = model.normalize(x)
    assert float(x_in.min()) == -1.0 and float(x_in.max()) == 1.0
    assert torch.equal(x_in, x.clone().sub_(0.5).div_(0.5))  # torchvision Normalize((0.5), (0.5))
    model.eval()  # no EMA update: the codebook stays the one the forward used
    out = model(x)
    raw = model.decoder(model.vq.lookup(out.codes).permute(0, 3, 1, 2))
    assert torch.allclose(out.recon_loss, torch.nn.functional.mse_loss(raw, x_in))
    assert torch.allclose(out.recon, raw * 0.5 + 0.5)
    assert torch.allclose(out.loss, out.recon_loss + 0.25 * out.commit_loss)


def test_reference_lr_schedule_and_drop_last(tmp_path):
    maps = [np.full((20, 20), v, np.uint8) for v in range(0, 140, 10)]  # 14 maps
    tc = VQVAETrainConfig(epochs=2, batch_size=4, lr=1e-3, lr_decay_gamma=0.5, lr_decay_every=2, drop_last=True,
                          shuffle_buffer=64)
    result = train_vqvae(tiny_aurora(), tc, lambda: iter(maps), tmp_path, log=lambda m: None, progress=False)
    # drop_last: 3 full batches of 4 per epoch; decays after batches 0 and 2 of each epoch
    # (train_depth_vqvae_dist.py:116: if iter % schedule_step == 0: sched.step())
    assert [round(h["lr"] / 1e-3, 6) for h in result.loss_history] == [1, 0.5, 0.5, 0.25, 0.125, 0.125]
    assert [h["epoch"] for h in result.loss_history] == [0, 0, 0, 1, 1, 1]


def test_reference_checkpoint_round_trip_with_and_without_ddp_prefix(tmp_path):
    torch.manual_seed(1)
    model = DepthVQVAE(tiny_aurora())
    for prefix in (False, True):
        path = save_reference_checkpoint(model, tmp_path / f"vae-{prefix}.pt", ddp_prefix=prefix)
        raw = torch.load(path, weights_only=True)
        assert list(raw) == ["weights"] and all(k.startswith("module.") == prefix for k in raw["weights"])
        again = load_reference_vqvae(path)
        assert again.config == model.config and not again.training
        assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), again.state_dict().values()))


def test_config_is_read_off_the_tensors():
    state = DepthVQVAE(VQVAEConfig.aurora()).state_dict()
    assert config_from_reference_state(state) == VQVAEConfig.aurora()
    assert config_from_reference_state(DepthVQVAE(tiny_aurora()).state_dict()) == tiny_aurora()


def test_strict_loading_names_missing_unexpected_and_mismatched_keys(tmp_path):
    state = {k: v.clone() for k, v in DepthVQVAE(tiny_aurora()).state_dict().items()}
    del state["decoder.0.bias"]
    state["decoder.99.weight"] = torch.zeros(1)
    state["decoder.3.weight"] = torch.zeros(2, 2, 4, 4)  # ConvT weight with the wrong shape
    path = tmp_path / "bad.pt"
    torch.save({"weights": state}, path)
    with pytest.raises(ValueError) as err:
        load_reference_vqvae(path)
    msg = str(err.value)
    assert str(path) in msg and "missing keys ['decoder.0.bias']" in msg and "unexpected keys ['decoder.99.weight']" in msg
    assert "decoder.3.weight: file (2, 2, 4, 4) vs model (16, 16, 4, 4)" in msg


@pytest.mark.parametrize(
    "content, message",
    [
        ({"state_dict": {}}, "expected {'weights': state_dict}"),
        ({"weights": {"module.encoder.0.weight": torch.zeros(1), "encoder.0.bias": torch.zeros(1)}}, "some keys carry DDP"),
        ({"weights": {"encoder.0.weight": torch.zeros(4, 1, 4, 4)}}, "no '_vq_vae._embedding'"),
    ],
)
def test_bad_reference_files_are_named(tmp_path, content, message):
    path = tmp_path / "x.pt"
    torch.save(content, path)
    with pytest.raises(ValueError, match=message) as err:
        load_reference_vqvae(path)
    assert str(path) in str(err.value)


def test_pickled_objects_are_refused(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"weights": {"x": torch.zeros(1)}, "extra": np.random.default_rng(0)}, path)
    with pytest.raises(ValueError, match="weights_only"):
        read_reference_state(path)


def test_init_state_adopts_with_zero_epochs_and_fine_tunes_otherwise(tmp_path):
    torch.manual_seed(5)
    source = DepthVQVAE(tiny_aurora())
    state = source.state_dict()
    maps = [np.full((20, 20), v, np.uint8) for v in range(0, 160, 20)]
    adopted = train_vqvae(tiny_aurora(), VQVAETrainConfig(epochs=0), lambda: iter(maps), tmp_path / "a",
                          log=lambda m: None, progress=False, init_state=state)
    assert adopted.step == 0
    loaded = load_any_vqvae(tmp_path / "a")
    assert all(torch.equal(state[k], v) for k, v in loaded.state_dict().items())
    tuned = train_vqvae(tiny_aurora(), VQVAETrainConfig(epochs=1, batch_size=4), lambda: iter(maps), tmp_path / "b",
                        log=lambda m: None, progress=False, init_state=state)
    assert tuned.step == 2
    after = load_any_vqvae(tmp_path / "b").state_dict()
    assert not torch.equal(after["encoder.0.weight"], state["encoder.0.weight"])  # trained from them
    assert float((after["encoder.0.weight"] - state["encoder.0.weight"]).abs().max()) < 0.01  # ...not from scratch
    with pytest.raises(ValueError, match="epochs 0 trains nothing"):
        train_vqvae(tiny_aurora(), VQVAETrainConfig(epochs=0), lambda: iter(maps), tmp_path / "c", log=lambda m: None)
    with pytest.raises(ValueError, match="missing keys"):
        train_vqvae(tiny_aurora(), VQVAETrainConfig(epochs=0), lambda: iter(maps), tmp_path / "d", log=lambda m: None,
                    init_state={k: v for k, v in state.items() if k != "_vq_vae._ema_w"})
