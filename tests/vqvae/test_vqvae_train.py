"""The trainer: loss goes down, files appear, and interrupted runs resume to the same weights."""

import json

import numpy as np
import pytest
import torch

from training.vqvae.checkpoint import load_vqvae
from training.vqvae.synthetic import synthetic_depth_maps
from training.vqvae.train import VQVAETrainConfig, train_vqvae
from training.vqvae.model import tiny_config


MAPS = synthetic_depth_maps(32, seed=0)
# small window: dead-code restarts (which draw from the RNG) happen inside the tested runs
MODEL_CFG = tiny_config(hidden_channels=(8, 16, 32), code_dim=32, dead_code_window=2)


def _train_cfg(**kw) -> VQVAETrainConfig:
    return VQVAETrainConfig(**{"epochs": 2, "batch_size": 8, "lr": 2e-3, "seed": 3, "shuffle_buffer": 4, **kw})


def _quiet(msg: str) -> None:
    pass


def _run(out, epochs=2, maps=lambda: MAPS, **kw):
    return train_vqvae(MODEL_CFG, _train_cfg(epochs=epochs, **kw), maps, out, log=_quiet, progress=False)


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """An uninterrupted two-epoch run."""
    return _run(tmp_path_factory.mktemp("reference"))


def _assert_same_weights(a_dir, b_dir):
    a, b = load_vqvae(a_dir), load_vqvae(b_dir)
    for k, v in a.state_dict().items():
        assert torch.allclose(v.float(), b.state_dict()[k].float(), atol=1e-5), k


def test_training_lowers_loss_and_writes_files(tmp_path):
    cfg = tiny_config(dead_code_window=2)  # the demo-size model learns faster than MODEL_CFG
    res = train_vqvae(cfg, _train_cfg(epochs=6, lr=3e-3), lambda: iter(MAPS), tmp_path, log=_quiet, progress=False)
    losses = [r["loss"] for r in res.loss_history]
    assert len(losses) == res.step == 24 and res.epoch == 6
    assert np.mean(losses[-4:]) < 0.6 * np.mean(losses[:4])
    assert res.weights_path == tmp_path / "model.safetensors" and res.weights_path.is_file()
    assert json.loads((tmp_path / "config.json").read_text()) == cfg.to_dict()
    assert [m["epoch"] for m in res.epoch_metrics] == list(range(6))
    assert all(m["n_images"] == 32 and 1 <= m["usage"] <= 128 for m in res.epoch_metrics)
    assert [m["lr"] for m in res.epoch_metrics] == pytest.approx([3e-3 * 0.98**e for e in range(6)])
    assert set(res.loss_history[0]) == {"step", "epoch", "loss", "recon", "commit", "lr"}
    state = torch.load(tmp_path / "train_state.pt", weights_only=True)
    assert state["step"] == 24 and state["epoch"] == 6


def test_resume_after_epoch_gives_same_weights(tmp_path, reference):
    first = _run(tmp_path, epochs=1)
    assert first.step == 4
    resumed = _run(tmp_path, epochs=2)
    assert resumed.resumed_from_step == 4
    assert resumed.step == reference.step == 8 and resumed.epoch == 2
    assert len(resumed.loss_history) == len(reference.loss_history)
    for got, want in zip(resumed.loss_history, reference.loss_history):
        assert got == pytest.approx(want, abs=1e-6)
    assert resumed.epoch_metrics == reference.epoch_metrics
    _assert_same_weights(tmp_path, reference.out_dir)


def test_resume_mid_epoch_after_crash_gives_same_weights(tmp_path, reference):
    calls = {"n": 0}

    def crashing_maps():
        calls["n"] += 1
        for i, m in enumerate(MAPS):
            if calls["n"] == 2 and i == 14:  # second epoch, a few batches in
                raise OSError("disk went away")
            yield m

    with pytest.raises(OSError, match="disk went away"):
        _run(tmp_path, maps=crashing_maps, checkpoint_every_steps=1)
    resumed = _run(tmp_path, checkpoint_every_steps=1)
    assert resumed.resumed_from_step is not None and 4 < resumed.resumed_from_step < 8  # mid-epoch
    assert resumed.step == reference.step
    assert resumed.epoch_metrics == reference.epoch_metrics  # epoch-level counts survived the crash
    _assert_same_weights(tmp_path, reference.out_dir)


def test_resume_refuses_changed_config_and_restart_overwrites(tmp_path):
    _run(tmp_path, epochs=1)
    with pytest.raises(ValueError, match="lr: checkpoint 0.002 vs now 0.001"):
        _run(tmp_path, epochs=2, lr=1e-3)
    fresh = train_vqvae(MODEL_CFG, _train_cfg(epochs=1, lr=1e-3), lambda: MAPS, tmp_path, log=_quiet, resume=False, progress=False)
    assert fresh.resumed_from_step is None and fresh.step == 4


def test_empty_data_is_an_error(tmp_path):
    with pytest.raises(ValueError, match="yielded no depth maps"):
        _run(tmp_path, maps=lambda: [])


def test_bad_map_names_epoch_and_batch(tmp_path):
    bad = [*MAPS[:8], np.zeros((8, 8), np.float32)]
    with pytest.raises(ValueError, match=r"epoch 0, batch \d+ \(after shuffling\): depth map #\d: expected dtype uint8"):
        _run(tmp_path, maps=lambda: bad)


def test_float64_training_resumes_exactly_and_saves_float32_weights(tmp_path):
    from safetensors.torch import load_file

    whole = _run(tmp_path / "whole", epochs=2, dtype="float64")
    _run(tmp_path / "split", epochs=1, dtype="float64")
    _run(tmp_path / "split", epochs=2, dtype="float64")  # resumes the float64 state at the epoch end
    state = torch.load(tmp_path / "whole" / "train_state.pt", weights_only=True)
    assert state["model"]["encoder.net.0.weight"].dtype == torch.float64  # the resume point keeps the arithmetic
    a, b = load_file(whole.weights_path), load_file(tmp_path / "split" / "model.safetensors")
    assert all(t.dtype == torch.float32 for t in a.values() if t.is_floating_point())  # the file format is unchanged
    for k in a:  # the same float64 operations in the same order: bit-identical
        assert torch.equal(a[k], b[k]), k
    assert load_vqvae(whole.out_dir).encoder.net[0].weight.dtype == torch.float32


def test_an_unknown_training_dtype_is_refused():
    with pytest.raises(ValueError, match="dtype must be one of"):
        _train_cfg(dtype="float16")
