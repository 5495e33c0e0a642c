"""Golden codes: a fixed tiny reference-format checkpoint and depth PNGs (tests/data/vqvae_golden,
derived step by step in make_golden.py) must give exactly the recorded codes. Any change to
reading, resizing, normalisation, the layers or the quantizer fails here."""

import hashlib
import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from perception_tokens.vocab import decode_depth
from pipelines.cli import main as ptok
from training.vqvae.data import model_input
from training.vqvae.depth_codes import find_depth_pngs, read_depth_png
from training.vqvae.extract import extract_codes
from training.vqvae.model import DepthVQVAE
from training.vqvae.reference_format import load_reference_vqvae, read_reference_state

GOLDEN_DIR = Path(__file__).resolve().parents[1] / "data" / "vqvae_golden"
GOLDEN = json.loads((GOLDEN_DIR / "golden.json").read_text())
CKPT = GOLDEN_DIR / GOLDEN["checkpoint"]
DEPTH = GOLDEN_DIR / "depth"


def test_fixture_is_the_committed_one():
    assert hashlib.sha256(CKPT.read_bytes()).hexdigest() == GOLDEN["checkpoint_sha256"]
    assert all(k.startswith("module.") for k in torch.load(CKPT, weights_only=True)["weights"])  # a DDP-trained file
    # the derivation kept clear of near-ties, so these codes are not at the mercy of float32 noise
    assert GOLDEN["min_distance_margin"] > 1e-5 * GOLDEN["mean_squared_latent_norm"]


def test_reference_checkpoint_gives_the_golden_codes():
    model = load_reference_vqvae(CKPT)
    cfg = GOLDEN["config"]
    assert (model.config.image_size, list(model.config.hidden_channels), model.config.num_res_blocks) == (
        cfg["image_size"], cfg["hidden_channels"], cfg["num_res_blocks"])
    assert (model.config.codebook_size, model.config.code_dim) == (cfg["codebook_size"], cfg["code_dim"])
    names = sorted(GOLDEN["codes"])
    maps = [read_depth_png(DEPTH / n) for n in names]
    codes = np.concatenate(list(extract_codes(model, maps, batch_size=3)))
    for name, row in zip(names, codes):
        assert row.tolist() == GOLDEN["codes"][name], name


def test_depth_codes_command_writes_the_golden_lines(tmp_path, capsys):
    out = tmp_path / "codes.jsonl"
    rc = ptok(["depth-codes", "--checkpoint", str(CKPT), "--out", str(out), "--batch-size", "2", str(DEPTH)])
    captured = capsys.readouterr()
    assert rc == 0
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["file"] for r in lines] == sorted(GOLDEN["codes"])  # one line per readable PNG, sorted
    for r in lines:
        assert r["codes"] == GOLDEN["codes"][r["file"]]
        assert decode_depth(r["depth_tokens"]) == r["codes"]
        assert r["depth_tokens"] == "<DEPTH_START>" + "".join(f"<DEPTH_{c}>" for c in r["codes"]) + "<DEPTH_END>"
    assert "skipped not_a_png.png: " in captured.err and "not a readable image" in captured.err
    assert "4 files" in captured.out and "1 skipped" in captured.out
    assert list(tmp_path.iterdir()) == [out]  # no temp file left behind


def test_depth_codes_accepts_a_project_checkpoint_and_missing_folder_is_named(tmp_path, capsys):
    from training.vqvae.checkpoint import save_vqvae

    save_vqvae(load_reference_vqvae(CKPT), tmp_path / "project")
    out = tmp_path / "codes.jsonl"
    assert ptok(["depth-codes", "--checkpoint", str(tmp_path / "project"), "--out", str(out), str(DEPTH)]) == 0
    assert {json.loads(x)["file"]: json.loads(x)["codes"] for x in out.read_text().splitlines()} == GOLDEN["codes"]
    assert ptok(["depth-codes", "--checkpoint", str(CKPT), "--out", str(out), str(tmp_path / "nope")]) == 2
    assert "depth map folder not found" in capsys.readouterr().out


def test_channel_zero_is_read_like_the_reference():
    path = DEPTH / "color_97x131.png"
    raw = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    assert raw.ndim == 3 and not np.array_equal(raw[:, :, 0], raw[:, :, 2])  # channels differ
    assert np.array_equal(read_depth_png(path), raw[:, :, 0])  # cv2's channel 0 (custom.py:61)
    assert read_depth_png(DEPTH / "blobs_123x77.png").shape == (123, 77)  # 1-channel file: its channel


@pytest.mark.parametrize(
    "change",
    ["area resize", "[0, 1] input", "channel 2", "no ResBlock skip"],
)
def test_golden_codes_catch_each_kind_of_change(change):
    """The fixture is sensitive: each deviation from the reference changes some code."""
    model = load_reference_vqvae(CKPT)
    names = sorted(GOLDEN["codes"])
    expected = np.array([GOLDEN["codes"][n] for n in names])
    if change == "channel 2":
        maps = [cv2.imread(str(DEPTH / n), cv2.IMREAD_UNCHANGED) for n in names]
        maps = [m[:, :, 2] if m.ndim == 3 else m for m in maps]
    else:
        maps = [read_depth_png(DEPTH / n) for n in names]
    if change == "area resize":
        model.config.resize = "area"
    if change == "[0, 1] input":
        model.config.input_range = "zero_one"
    if change == "no ResBlock skip":
        block = model.encoder[6]
        block.forward = lambda x: block.net(x)
    codes = np.concatenate(list(extract_codes(model, maps)))
    assert not np.array_equal(codes, expected)


def test_golden_codes_survive_float32_noise():
    """The margins are wide: a float32-rounding-sized change of the codebook changes no code."""
    model = load_reference_vqvae(CKPT)
    with torch.no_grad():
        model.vq._embedding.mul_(1 + 2**-23)
    names = sorted(GOLDEN["codes"])
    codes = np.concatenate(list(extract_codes(model, [read_depth_png(DEPTH / n) for n in names])))
    assert codes.tolist() == [GOLDEN["codes"][n] for n in names]


def test_one_training_step_updates_the_quantizer_as_the_reference():
    model = load_reference_vqvae(CKPT)
    model.train()
    name = GOLDEN["train_step_on"]
    x = model_input([read_depth_png(DEPTH / name)], model.config)
    out = model(x)
    assert out.codes.reshape(-1).tolist() == GOLDEN["codes"][name]  # training-time (float32) assignment agrees
    want = GOLDEN["after_train_step"]
    assert torch.allclose(model.vq._ema_cluster_size.double(), torch.tensor(want["ema_cluster_size"], dtype=torch.float64), rtol=1e-5)
    assert torch.allclose(model.vq._embedding.double(), torch.tensor(want["embedding"], dtype=torch.float64), rtol=1e-4, atol=1e-6)
    assert torch.equal(model.vq._embedding, model.vq._ema_w / model.vq._ema_cluster_size.unsqueeze(1))


def test_state_dict_of_the_fixture_has_no_prefix_after_reading():
    state = read_reference_state(CKPT)
    assert "_vq_vae._embedding" in state and not any(k.startswith("module.") for k in state)
    assert set(state) == set(DepthVQVAE(load_reference_vqvae(CKPT).config).state_dict())
    assert [p.name for p in find_depth_pngs(DEPTH)] == sorted([*GOLDEN["codes"], "not_a_png.png"])
