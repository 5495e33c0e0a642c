"""Reconstruction metrics, codebook statistics and closest-point agreement."""

import math

import numpy as np
import pytest
import torch

from training.vqvae.metrics import (
    CodeUsage,
    closest_point_agreement,
    codebook_stats,
    depth_errors,
    evaluate_vqvae,
    examples_to_grid,
    reconstruction_examples,
    sample_points,
)
from training.vqvae.model import DepthVQVAE, tiny_config
from training.vqvae.synthetic import synthetic_depth_maps


def test_identical_maps_are_perfect():
    m = np.random.default_rng(0).integers(0, 256, (20, 30), dtype=np.uint8)
    assert depth_errors(m, m.copy()) == {"abs_rel": 0.0, "rmse": 0.0, "delta1": 1.0}


def test_known_errors_on_shifted_scale():
    t = np.full((4, 4), 255, np.uint8)  # (255+1)/256 = 1.0
    p = np.full((4, 4), 127, np.uint8)  # (127+1)/256 = 0.5
    e = depth_errors(t, p)
    assert e["abs_rel"] == pytest.approx(0.5) and e["rmse"] == pytest.approx(0.5) and e["delta1"] == 0.0
    # value 0 is where a raw v/255 scale would divide by zero
    e0 = depth_errors(np.zeros((2, 2), np.uint8), np.ones((2, 2), np.uint8))
    assert e0["abs_rel"] == pytest.approx(1.0) and e0["delta1"] == 0.0
    # half the pixels within delta1
    p2 = p.copy()
    p2[:2] = 250
    assert depth_errors(t, p2)["delta1"] == 0.5
    with pytest.raises(ValueError, match="differ in shape"):
        depth_errors(t, np.zeros((4, 5), np.uint8))


def test_codebook_stats_on_known_counts():
    assert codebook_stats([5, 5, 5, 5, 0, 0]) == {"usage": 4, "perplexity": pytest.approx(4.0)}
    assert codebook_stats(np.array([10, 0])) == {"usage": 1, "perplexity": pytest.approx(1.0)}
    assert codebook_stats([0, 0]) == {"usage": 0, "perplexity": 0.0}
    p = np.array([0.5, 0.25, 0.25])
    assert codebook_stats([2, 1, 1])["perplexity"] == pytest.approx(math.exp(-(p * np.log(p)).sum()))


def test_epoch_level_usage_accumulates_over_batches():
    usage = CodeUsage(8)
    usage.update(torch.tensor([[0, 0], [1, 1]]))
    assert usage.stats() == {"usage": 2, "perplexity": pytest.approx(2.0)}  # one batch alone
    usage.update(np.array([2, 2, 3, 3]))
    # whole epoch: four codes equally used -> 4, not the per-batch average of 2
    assert usage.stats() == {"usage": 4, "perplexity": pytest.approx(4.0)}
    with pytest.raises(ValueError, match="outside 0..7"):
        usage.update(np.array([8]))


def test_closest_point_agreement_hand_made():
    t = np.zeros((10, 10), np.uint8)
    t[2, 2], t[7, 7], t[2, 7] = 200, 100, 50
    pts = [(2, 2), (7, 7), (2, 7)]
    good = t.copy()
    good[2, 2] = 120  # still the largest
    bad = t.copy()
    bad[7, 7] = 250  # now (7, 7) looks nearest
    tie = t.copy()
    tie[7, 7] = 200  # reconstruction cannot decide -> disagreement
    got = closest_point_agreement([t, t, t, t, t], [good, bad, t, tie, bad], [pts, pts, pts, pts, [(2, 2)]])
    assert got == pytest.approx(2 / 4)  # last image has one point: skipped
    assert math.isnan(closest_point_agreement([t], [t], [[]]))
    with pytest.raises(ValueError, match="tie for the nearest true depth"):
        closest_point_agreement([t], [t], [[(0, 0), (0, 1)]])


def test_sample_points_respects_gap_border_and_seed():
    maps = synthetic_depth_maps(10, seed=3)
    for m in maps:
        pts = sample_points(m, np.random.default_rng(1), min_gap=16, border_frac=0.1)
        assert len(pts) <= 5
        vals = [int(m[y, x]) for y, x in pts]
        assert all(abs(a - b) >= 16 for i, a in enumerate(vals) for b in vals[i + 1 :])
        assert all(6 <= y < 58 and 6 <= x < 58 for y, x in pts)
        assert pts == sample_points(m, np.random.default_rng(1), min_gap=16, border_frac=0.1)
    assert len(sample_points(np.full((32, 32), 7, np.uint8), np.random.default_rng(0))) == 1  # flat: unusable
    counts = {len(sample_points(maps[0], np.random.default_rng(s), min_gap=1)) for s in range(30)}
    assert counts <= {2, 3, 4, 5} and len(counts) > 1


def test_evaluate_vqvae_reports_everything_without_touching_the_codebook():
    torch.manual_seed(0)
    model = DepthVQVAE(tiny_config())
    model.train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    maps = synthetic_depth_maps(6, height=48, width=72, seed=0)
    res = evaluate_vqvae(model, iter(maps), batch_size=4, seed=0)
    assert set(res) >= {"abs_rel", "rmse", "delta1", "usage", "perplexity", "closest_point_agreement", "n_images"}
    assert res["n_images"] == 6 and res["n_point_images"] == 6
    assert 1 <= res["usage"] <= 128 and 0.0 <= res["delta1"] <= 1.0 and res["rmse"] > 0
    assert 0.0 <= res["closest_point_agreement"] <= 1.0
    assert model.training  # mode restored
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in before.items())
    assert evaluate_vqvae(model, maps, batch_size=2, seed=0) == res  # batch size does not matter
    with pytest.raises(ValueError, match="no depth maps"):
        evaluate_vqvae(model, [], batch_size=2)


def test_reconstruction_examples_are_original_size_triples():
    torch.manual_seed(0)
    model = DepthVQVAE(tiny_config())
    maps = synthetic_depth_maps(3, height=48, width=72, seed=0)
    ex = reconstruction_examples(model, maps, n=2)
    assert len(ex) == 2
    for (inp, rec, err), m in zip(ex, maps):
        assert inp.shape == rec.shape == err.shape == (48, 72) and rec.dtype == np.uint8
        assert np.array_equal(inp, m)
        assert np.array_equal(err, np.abs(inp.astype(int) - rec.astype(int)).astype(np.uint8))
    grid = examples_to_grid(ex, size=32, gap=2)
    assert grid.shape == (2 * 32 + 2, 3 * 32 + 2 * 2) and grid.dtype == np.uint8
