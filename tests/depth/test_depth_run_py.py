"""The official V1 run.py --grayscale handling (keep-aspect resize, align_corners=False back,
float32 min-max, three equal channels), the teacher that uses it, and depth.preset aurora."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from assets.versioning import code_version
from perception_tokens.depth import (
    RUN_PY_FORMAT,
    build_teacher,
    build_tiny_dpt_dinov2,
    decode_png,
    label_images,
    lower_bound_size,
    minmax_uint8_float32,
    normalize_depth,
    preprocess_keep_aspect,
)
from perception_tokens.depth.run_py import resize_back


@pytest.mark.parametrize(
    ("height", "width", "expected"),
    [
        (518, 518, (518, 518)),
        (480, 640, (518, 686)),  # 640 * 518/480 = 690.7 -> 49.3 patches -> 49 -> 686
        (640, 480, (686, 518)),
        (512, 683, (518, 686)),  # a typical ADE20K image: 691.0 -> 49.4 -> 686
        (300, 301, (518, 518)),  # 519.7 -> 37.1 -> 37
        (518, 679, (518, 672)),  # 679 / 14 = 48.5 exactly: numpy rounds half to even -> 48
        (518, 693, (518, 700)),  # 49.5 -> 50
        (100, 1000, (518, 5180)),  # very wide: the short side sets the scale
        (1000, 2000, (518, 1036)),  # downscaled: 1036 = 74 x 14
        (7, 5, (728, 518)),  # tiny portrait: 725.2 -> 51.8 -> 52
    ],
)
def test_lower_bound_resize_sizes(height, width, expected):
    assert lower_bound_size(height, width) == expected
    new_height, new_width = expected
    assert new_height % 14 == 0 and new_width % 14 == 0 and min(expected) >= 518


def test_lower_bound_rejects_empty_sizes():
    with pytest.raises(ValueError, match="positive"):
        lower_bound_size(0, 10)


def test_keep_aspect_preprocess_shape_and_normalised_values():
    image = np.empty((480, 640, 3), np.uint8)
    image[...] = (255, 0, 128)  # constant: bicubic keeps it, so the values are exact
    out = preprocess_keep_aspect(image)
    assert out.dtype == np.float32 and out.shape == (3, 518, 686) and out.flags.c_contiguous
    expected = [(1.0 - 0.485) / 0.229, (0.0 - 0.456) / 0.224, (128 / 255 - 0.406) / 0.225]
    for channel, value in enumerate(expected):
        np.testing.assert_allclose(out[channel], value, rtol=0, atol=1e-6)
    with pytest.raises(ValueError, match="uint8"):
        preprocess_keep_aspect(image.astype(np.float32))


def test_resize_back_does_not_align_corners():
    prediction = torch.tensor([[0.0, 1.0]])
    np.testing.assert_allclose(resize_back(prediction, (1, 4)), [[0.0, 0.25, 0.75, 1.0]])
    with pytest.raises(ValueError, match=r"\(H, W\)"):
        resize_back(torch.zeros(1, 2, 2), (4, 4))


def test_minmax_is_float32_like_run_py():
    raw = np.array([[0.0, 1.4, 7.0], [3.5, 7.0, 0.7]], dtype=np.float32)
    depth, low, high = minmax_uint8_float32(raw)
    # float32: 1.4 / 7 * 255 = 51.0 exactly; in float64 it is 50.99999... and truncates to 50
    assert depth.tolist() == [[0, 51, 255], [127, 255, 25]]
    assert normalize_depth(raw)[0].tolist() == [[0, 50, 255], [127, 255, 25]]
    assert (low, high) == (0.0, 7.0)
    assert minmax_uint8_float32(np.full((2, 2), 3.0))[0].tolist() == [[0, 0], [0, 0]]
    with pytest.raises(ValueError, match="non-finite"):
        minmax_uint8_float32(np.array([[0.0, np.nan]]))


def test_grayscale_png_has_three_equal_channels_and_decodes_to_one():
    raw = np.array([[0.0, 1.4, 7.0], [3.5, 7.0, 0.7]], dtype=np.float32)
    png, low, high = RUN_PY_FORMAT.to_png(raw)
    stored = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_UNCHANGED)
    assert stored.shape == (2, 3, 3)
    for channel in range(3):
        assert stored[..., channel].tolist() == [[0, 51, 255], [127, 255, 25]]
    assert decode_png(png).tolist() == [[0, 51, 255], [127, 255, 25]]  # channel 0, as the VQ-VAE reads it


def _image(height: int, width: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    image = np.stack([x / width, y / height, (x * y) / (width * height)], axis=-1) * 220
    image += rng.normal(0, 8, image.shape)
    return np.clip(image, 0, 255).astype(np.uint8)


IMAGES = [_image(40, 60, 0), _image(20, 30, 1), _image(33, 21, 2), _image(50, 50, 3)]
IDS = [("demo", f"img{i}") for i in range(len(IMAGES))]


@pytest.fixture(scope="module")
def keep_aspect_teacher(tmp_path_factory):
    path = tmp_path_factory.mktemp("v1") / "depth_anything_tiny14.pth"
    torch.save(build_tiny_dpt_dinov2(seed=2).state_dict(), path)
    return build_teacher("depth_anything_hub", checkpoint=path, version=1, encoder="tiny", implementation="dpt_dinov2",
                         resize="keep_aspect", input_size=28, device="cpu")


def test_keep_aspect_teacher_equals_run_py_steps(keep_aspect_teacher):
    """run.py:67-84 written out step by step for one image at the tiny size (lower bound 28).

    The float map is compared with a tolerance (the teacher runs channels_last, which may
    change float rounding); the uint8 step is then checked exactly on the teacher's map."""
    model = build_tiny_dpt_dinov2(seed=2)
    image = IMAGES[0]
    h, w = image.shape[:2]
    resized = cv2.resize(image / 255.0, (42, 28), interpolation=cv2.INTER_CUBIC)  # 40x60 -> 28x42
    normalised = (resized - [0.485, 0.456, 0.406]) / [0.229, 0.224, 0.225]
    tensor = torch.from_numpy(np.ascontiguousarray(normalised.transpose(2, 0, 1)).astype(np.float32))[None]
    with torch.no_grad():
        depth = model(tensor)
    depth = F.interpolate(depth[None], (h, w), mode="bilinear", align_corners=False)[0, 0]
    raw = keep_aspect_teacher.predict([image], [("demo", "a")])[0]
    np.testing.assert_allclose(raw, depth.numpy(), rtol=0, atol=1e-5)

    teacher_map = torch.from_numpy(raw)
    scaled = (teacher_map - teacher_map.min()) / (teacher_map.max() - teacher_map.min()) * 255.0
    expected = scaled.numpy().astype(np.uint8)
    assert expected.min() == 0 and expected.max() == 255 and len(np.unique(expected)) > 50
    result = next(label_images(keep_aspect_teacher, [("demo", "a", image)], progress=False))
    got = cv2.imdecode(np.frombuffer(result.depth_png, np.uint8), cv2.IMREAD_UNCHANGED)
    assert got.shape == (h, w, 3)
    for channel in range(3):
        np.testing.assert_array_equal(got[..., channel], expected)


def test_keep_aspect_batches_by_shape_and_matches_one_by_one(keep_aspect_teacher):
    batched = keep_aspect_teacher.predict(IMAGES, IDS)  # shapes: 28x42, 28x42, 42x28, 28x28
    assert [p.shape for p in batched] == [im.shape[:2] for im in IMAGES]
    for image, image_id, got in zip(IMAGES, IDS, batched):
        alone = keep_aspect_teacher.predict([image], [image_id])[0]
        np.testing.assert_allclose(got, alone, rtol=0, atol=1e-5)
    assert keep_aspect_teacher.identity.endswith(":dpt_dinov2:in28:keep_aspect")


def test_bad_teacher_options_are_named(tmp_path):
    path = tmp_path / "tiny.pth"
    torch.save(build_tiny_dpt_dinov2().state_dict(), path)
    with pytest.raises(ValueError, match="resize must be one of"):
        build_teacher("depth_anything_hub", checkpoint=path, version=1, encoder="tiny", resize="pad")
    with pytest.raises(ValueError, match="implementation must be one of"):
        build_teacher("depth_anything_hub", checkpoint=path, version=1, encoder="tiny", implementation="timm")
    with pytest.raises(ValueError, match="V1 only"):
        build_teacher("depth_anything_hub", checkpoint=path, version=2, encoder="tiny", implementation="dpt_dinov2")


# ----------------------------------------------------------------------------- settings


def test_aurora_preset_is_v1_vits_through_run_py():
    from pipeline_lib.settings import DepthSettings

    depth = DepthSettings(preset="aurora", checkpoint="/models/depth_anything_vits14.pth")
    assert (depth.teacher, depth.version, depth.encoder) == ("depth_anything_hub", 1, "vits")
    assert (depth.implementation, depth.resize, depth.input_size) == ("dpt_dinov2", "keep_aspect", 518)
    assert depth.autocast is False  # float32 like run.py, also on CUDA
    assert DepthSettings(preset="aurora", checkpoint="x", version=1).version == 1  # restating is fine
    with pytest.raises(ValueError, match=r"preset aurora fixes.*version=2 \(aurora: 1\).*encoder='vitl'"):
        DepthSettings(preset="aurora", checkpoint="x", version=2, encoder="vitl")
    with pytest.raises(ValueError, match="checkpoint is required"):
        DepthSettings(preset="aurora")
    with pytest.raises(ValueError, match="dpt_dinov2 needs teacher depth_anything_hub and version 1"):
        DepthSettings(teacher="depth_anything_hub", checkpoint="x", version=2, implementation="dpt_dinov2")
    custom = DepthSettings()
    assert (custom.preset, custom.implementation, custom.resize) == ("custom", "transformers", "square")
    assert code_version("1", custom) != code_version("1", DepthSettings(resize="keep_aspect"))  # marks depth stale


def test_resource_builds_the_keep_aspect_teacher(tmp_path):
    from pipeline_lib.resources import DepthTeacherResource
    from pipeline_lib.settings import DepthSettings, settings_from_dict

    path = tmp_path / "tiny.pth"
    torch.save(build_tiny_dpt_dinov2(seed=2).state_dict(), path)
    settings = DepthSettings(teacher="depth_anything_hub", checkpoint=str(path), version=1, encoder="tiny",
                             implementation="dpt_dinov2", resize="keep_aspect", input_size=28, device="cpu")
    teacher = DepthTeacherResource.from_settings(settings_from_dict({"depth": settings.model_dump()})).build()
    assert teacher.identity.startswith("depth_anything_hub:v1:tiny:")
    assert teacher.identity.endswith(":dpt_dinov2:in28:keep_aspect")
    assert teacher.image_format is RUN_PY_FORMAT
