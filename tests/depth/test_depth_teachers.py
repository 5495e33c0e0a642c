"""Depth teachers end to end on the tiny Depth Anything: hub and from_pretrained loading,
labelling (batched and one by one), ground truth, and option errors."""

from __future__ import annotations

import textwrap

import numpy as np
import pytest
import torch

from perception_tokens.depth import (
    HUB_DIR,
    DepthAnythingTeacher,
    DepthLabelError,
    DepthTeacher,
    build_teacher,
    build_tiny_depth_anything,
    decode_png,
    label_images,
    label_images_one_by_one,
    save_pretrained_dir,
    save_tiny_for_hub,
)
from perception_tokens.depth.checkpoints import file_sha256

SIZE = 56  # input size for the tiny model: 4 x 4 patches


def _smooth_image(height: int, width: int, seed: int) -> np.ndarray:
    """A scene-like image: smooth gradients plus a bright square (not white noise)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    image = np.stack([x / width, y / height, (x + y) / (width + height)], axis=-1) * 200
    top, left = rng.integers(0, height // 2), rng.integers(0, width // 2)
    image[top : top + height // 3, left : left + width // 3] = rng.integers(100, 255, 3)
    return image.astype(np.uint8)


IMAGES = [_smooth_image(40, 60, 0), _smooth_image(33, 21, 1), _smooth_image(70, 70, 2), _smooth_image(15, 90, 3)]
IDS = [("demo", f"img{i}") for i in range(len(IMAGES))]


@pytest.fixture(scope="module")
def tiny_files(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny_depth")
    model = build_tiny_depth_anything(version=2, seed=0)
    return {
        "model": model,
        "official_pth": save_tiny_for_hub(model, root / "tiny_official.pth", key_format="official"),
        "hf_pth": save_tiny_for_hub(model, root / "tiny_hf.pth", key_format="transformers"),
        "pretrained": save_pretrained_dir(model, root / "tiny_hf"),
        "root": root,
    }


@pytest.fixture(scope="module")
def reference(tiny_files):
    """Predictions of the original in-memory model."""
    teacher = DepthAnythingTeacher(build_tiny_depth_anything(version=2, seed=0), "reference", SIZE, "cpu")
    return teacher.predict(IMAGES, IDS)


@pytest.fixture(scope="module")
def hub_teacher(tiny_files):
    return build_teacher("depth_anything_hub", checkpoint=tiny_files["official_pth"], encoder="tiny",
                         input_size=SIZE, device="cpu")


def test_torch_hub_load_gives_the_same_weights(tiny_files):
    model = torch.hub.load(str(HUB_DIR), "depth_anything_v2", source="local", encoder="tiny",
                           checkpoint=str(tiny_files["official_pth"]))
    original = tiny_files["model"].state_dict()
    loaded = model.state_dict()
    assert set(loaded) == set(original)
    assert all(torch.equal(loaded[k], original[k]) for k in original)
    assert not model.training


def test_hub_and_pretrained_predictions_equal_original(tiny_files, reference, hub_teacher):
    hub_hf_keys = build_teacher("depth_anything_hub", checkpoint=tiny_files["hf_pth"], encoder="tiny",
                                input_size=SIZE, device="cpu")
    from_dir = build_teacher("depth_anything_hf", model=str(tiny_files["pretrained"]), input_size=SIZE, device="cpu")
    for teacher in (hub_teacher, hub_hf_keys, from_dir):
        assert isinstance(teacher, DepthTeacher)
        for got, want in zip(teacher.predict(IMAGES, IDS), reference):
            np.testing.assert_array_equal(got, want)


def test_predictions_have_original_size_float32_and_vary(reference):
    for image, raw in zip(IMAGES, reference):
        assert raw.shape == image.shape[:2] and raw.dtype == np.float32
        assert np.isfinite(raw).all() and raw.min() > 0 and raw.max() > raw.min()


def test_identity_is_stable_and_keyed_on_checkpoint_and_size(tiny_files, hub_teacher):
    sha = file_sha256(tiny_files["official_pth"])[:12]
    assert hub_teacher.identity == f"depth_anything_hub:v2:tiny:ckpt-{sha}:transformers:in{SIZE}"
    other_size = build_teacher("depth_anything_hub", checkpoint=tiny_files["official_pth"], encoder="tiny",
                               input_size=70, device="cpu")
    assert other_size.identity.endswith(":in70")
    hf = build_teacher("depth_anything_hf", model=str(tiny_files["pretrained"]), input_size=SIZE, device="cpu")
    assert hf.identity.startswith("depth_anything_hf:") and ":dir-" in hf.identity
    again = build_teacher("depth_anything_hf", model=str(tiny_files["pretrained"]), input_size=SIZE, device="cpu")
    assert again.identity == hf.identity


def test_labels_cover_full_range_and_are_deterministic(hub_teacher):
    items = [(d, i, im) for (d, i), im in zip(IDS, IMAGES)]
    first = list(label_images(hub_teacher, items, batch_size=3, progress=False))
    second = list(label_images(hub_teacher, items, batch_size=3, progress=False))
    assert [(r.dataset, r.image_id) for r in first] == IDS
    for result, again, image in zip(first, second, IMAGES):
        assert result.depth_png == again.depth_png
        depth = decode_png(result.depth_png)
        assert depth.shape == image.shape[:2] == (result.height, result.width)
        assert depth.min() == 0 and depth.max() == 255
        assert result.raw_max > result.raw_min > 0


def test_batched_matches_one_by_one(hub_teacher):
    items = [(d, i, im) for (d, i), im in zip(IDS, IMAGES)]
    batched = list(label_images(hub_teacher, items, batch_size=4, progress=False))
    single = list(label_images_one_by_one(hub_teacher, items, progress=False))
    assert [r.image_id for r in single] == [r.image_id for r in batched]
    for a, b in zip(batched, single):
        assert abs(a.raw_min - b.raw_min) < 1e-5 and abs(a.raw_max - b.raw_max) < 1e-5
        diff = np.abs(decode_png(a.depth_png).astype(int) - decode_png(b.depth_png).astype(int))
        assert diff.max() <= 1  # float summation order may move a truncation boundary


def test_label_images_streams_one_batch_at_a_time(hub_teacher):
    pulled = []

    def items():
        for (d, i), im in zip(IDS, IMAGES):
            pulled.append(i)
            yield d, i, im

    stream = label_images(hub_teacher, items(), batch_size=2, progress=False)
    next(stream)
    assert len(pulled) == 2
    assert len(list(stream)) == len(IMAGES) - 1 and len(pulled) == len(IMAGES)


def test_bad_images_are_rejected_with_reason_or_raised(hub_teacher):
    items = [("demo", "ok", IMAGES[0]), ("demo", "gray", np.zeros((8, 8), np.uint8)), ("demo", "ok2", IMAGES[1])]
    rejects = []
    results = list(label_images(hub_teacher, items, batch_size=2, progress=False,
                                on_reject=lambda d, i, why: rejects.append((d, i, why))))
    assert [r.image_id for r in results] == ["ok", "ok2"]
    assert len(rejects) == 1 and rejects[0][1] == "gray" and "(H, W, 3)" in rejects[0][2]
    with pytest.raises(DepthLabelError, match="demo/gray"):
        list(label_images(hub_teacher, items, batch_size=2, progress=False))


def test_ground_truth_teacher_is_normalised_inverse_depth():
    depth = {"a": np.array([[1.0, 2.0, 4.0], [0.5, 1.0, 10.0]], dtype=np.float32),
             "zero": np.array([[1.0, 0.0, 4.0], [0.5, 1.0, 10.0]], dtype=np.float32)}
    teacher = build_teacher("ground_truth", depth_fn=lambda dataset, image_id: depth[image_id], name="demo-gt")
    assert teacher.identity == "ground_truth:demo-gt"
    image = np.zeros((2, 3, 3), np.uint8)
    rejects = []
    results = list(label_images(teacher, [("demo", "a", image), ("demo", "zero", image)], batch_size=2,
                                progress=False, on_reject=lambda d, i, why: rejects.append((i, why))))
    # inverse depth 1/d: [[1, .5, .25], [2, 1, .1]]; min .1, max 2; (v - .1) / 1.9 * 255 truncated
    assert decode_png(results[0].depth_png).tolist() == [[120, 53, 20], [255, 120, 0]]
    assert results[0].raw_min == pytest.approx(0.1) and results[0].raw_max == pytest.approx(2.0)
    assert len(results) == 1 and rejects[0][0] == "zero" and "non-positive" in rejects[0][1]
    with pytest.raises(ValueError, match="shape"):
        teacher.predict([np.zeros((4, 4, 3), np.uint8)], [("demo", "a")])


def test_official_class_is_used_when_repo_dir_is_given(tmp_path):
    package = tmp_path / "clone" / "depth_anything_v2"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    # stand-in for the official class: same constructor and output contract, toy body
    (package / "dpt.py").write_text(textwrap.dedent("""
        import torch
        from torch import nn
        CALLS = []
        class DepthAnythingV2(nn.Module):
            def __init__(self, encoder="vitl", features=256, out_channels=(256, 512, 1024, 1024)):
                super().__init__()
                CALLS.append((encoder, features, list(out_channels)))
                self.pretrained = nn.Conv2d(3, 4, kernel_size=14, stride=14)
                self.depth_head = nn.Conv2d(4, 1, kernel_size=1)
            def forward(self, x):
                y = self.depth_head(self.pretrained(x))
                y = nn.functional.interpolate(y, size=x.shape[-2:], mode="bilinear", align_corners=True)
                return torch.relu(y).squeeze(1) + 1.0
    """))
    import importlib.util
    spec = importlib.util.spec_from_file_location("fake_dpt", package / "dpt.py")
    fake = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(fake)
    torch.manual_seed(0)
    original = fake.DepthAnythingV2()
    checkpoint = tmp_path / "official.pth"
    torch.save(original.state_dict(), checkpoint)

    teacher = build_teacher("depth_anything_hub", checkpoint=checkpoint, encoder="vits", input_size=SIZE,
                            device="cpu", repo_dir=str(tmp_path / "clone"))
    assert ":official:" in teacher.identity
    import depth_anything_v2.dpt as loaded_dpt  # the clone's module, imported by the hub entry

    assert loaded_dpt.CALLS == [("vits", 64, [48, 96, 192, 384])]
    expected = DepthAnythingTeacher(original, "x", SIZE, "cpu").predict(IMAGES[:2], IDS[:2])
    for got, want in zip(teacher.predict(IMAGES[:2], IDS[:2]), expected):
        np.testing.assert_array_equal(got, want)
    with pytest.raises(ValueError, match="V2 only"):
        build_teacher("depth_anything_hub", checkpoint=checkpoint, version=1, repo_dir=str(tmp_path / "clone"))


def test_version_1_loads_through_its_own_entry(tmp_path):
    model = build_tiny_depth_anything(version=1, seed=3)
    path = save_tiny_for_hub(model, tmp_path / "v1.pth")
    teacher = build_teacher("depth_anything_hub", checkpoint=path, version=1, encoder="tiny", input_size=SIZE,
                            device="cpu")
    assert teacher.identity.startswith("depth_anything_hub:v1:tiny:")
    expected = DepthAnythingTeacher(model, "x", SIZE, "cpu").predict(IMAGES[:1], IDS[:1])[0]
    np.testing.assert_array_equal(teacher.predict(IMAGES[:1], IDS[:1])[0], expected)


def test_bad_options_give_clear_errors(tiny_files, tmp_path):
    ckpt = tiny_files["official_pth"]
    with pytest.raises(ValueError, match="unknown depth teacher kind 'midas'"):
        build_teacher("midas")
    missing = tmp_path / "absent" / "depth_anything_v2_vits.pth"
    with pytest.raises(FileNotFoundError, match=str(missing)):
        build_teacher("depth_anything_hub", checkpoint=missing)
    with pytest.raises(ValueError, match="missing required option.*checkpoint"):
        build_teacher("depth_anything_hub")
    with pytest.raises(ValueError, match="encoder must be one of .*vits.*vitb.*vitl.*'vitg'"):
        build_teacher("depth_anything_hub", checkpoint=ckpt, encoder="vitg")
    with pytest.raises(ValueError, match="multiple of 14"):
        build_teacher("depth_anything_hub", checkpoint=ckpt, encoder="tiny", input_size=500)
    with pytest.raises(ValueError, match="version"):
        build_teacher("depth_anything_hub", checkpoint=ckpt, version=3)
    with pytest.raises(ValueError, match=r"unknown option\(s\) \['batch'\]"):
        build_teacher("depth_anything_hf", model="x", batch=4)
    with pytest.raises(ValueError, match="trust_repo=True"):
        build_teacher("depth_anything_hub", checkpoint=ckpt, hub_source="github", hub_repo="someone/repo:main")
    with pytest.raises(FileNotFoundError, match="model directory not found"):
        build_teacher("depth_anything_hf", model=str(tmp_path / "no_model_here"))
    from perception_tokens.depth import CheckpointError

    with pytest.raises(CheckpointError, match="does not fit this architecture"):
        build_teacher("depth_anything_hub", checkpoint=ckpt, encoder="vits", input_size=SIZE, device="cpu")
