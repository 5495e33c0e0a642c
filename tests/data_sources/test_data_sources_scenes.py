"""The procedural scene generator: determinism and the truth of its labels."""

from __future__ import annotations

import time

import numpy as np
import pytest

from perception_tokens.demo import CATEGORIES, COLORS, PlacedObject, generate_scene, render_layout
from perception_tokens.demo.scenes import SURFACE_FLOOR, SURFACE_OBJECT, position_word


@pytest.fixture(scope="module")
def scenes():
    return [generate_scene(np.random.default_rng(seed), 160, 120) for seed in range(12)]


def test_same_seed_same_scene_and_different_seed_differs():
    a = generate_scene(np.random.default_rng(7), 160, 120)
    b = generate_scene(np.random.default_rng(7), 160, 120)
    c = generate_scene(np.random.default_rng(8), 160, 120)
    assert np.array_equal(a.rgb, b.rgb) and np.array_equal(a.depth, b.depth)
    assert [(o.category, o.color_name, o.bbox_xywh) for o in a.objects] == [
        (o.category, o.color_name, o.bbox_xywh) for o in b.objects
    ]
    assert not np.array_equal(a.rgb, c.rgb)


def test_scene_arrays_and_depth_are_valid(scenes):
    for s in scenes:
        assert s.rgb.shape == (120, 160, 3) and s.rgb.dtype == np.uint8
        assert s.depth.shape == (120, 160) and s.depth.dtype == np.float32
        assert np.isfinite(s.depth).all() and s.depth.min() > 0.3
        assert s.depth.max() < 20.0  # bounded by the back wall
        assert s.rgb.std() > 10  # not a flat image
        # the floor is visible and, looking down at it, farther up the image is farther away
        floor = s.surface == SURFACE_FLOOR
        col = floor[:, 80]
        rows = np.nonzero(col)[0]
        assert len(rows) > 5 and s.depth[rows[0], 80] > s.depth[rows[-1], 80]


def test_objects_have_consistent_boxes_masks_and_depth(scenes):
    n_objects = []
    for s in scenes:
        n_objects.append(len(s.objects))
        union = np.zeros(s.depth.shape, bool)
        for i, o in enumerate(s.objects):
            assert o.object_index == i
            assert o.category in CATEGORIES and o.color_name in COLORS
            assert o.mask.dtype == bool and o.mask.shape == s.depth.shape
            assert o.area >= 40
            assert not (union & o.mask).any(), "visible masks overlap"
            union |= o.mask
            ys, xs = np.nonzero(o.mask)
            x, y, w, h = o.bbox_xywh
            assert (x, y, w, h) == (xs.min(), ys.min(), xs.max() + 1 - xs.min(), ys.max() + 1 - ys.min())
            assert 0 <= x and 0 <= y and x + w <= 160 and y + h <= 120 and w > 0 and h > 0
            assert o.mean_depth == pytest.approx(float(s.depth[o.mask].mean()), rel=1e-5)
            assert o.position == position_word(x + w / 2, 160)
            assert np.array_equal(s.instance_map == i, o.mask)
        assert np.array_equal(union, s.surface == SURFACE_OBJECT)
    assert min(n_objects) >= 3 and max(n_objects) <= 7 and len(set(n_objects)) > 1


def test_nearer_object_occludes_farther_one():
    front = PlacedObject("chair", "red", 0.0, 3.0, 1.2)
    back = PlacedObject("ball", "blue", 0.05, 4.2, 1.0)
    both = render_layout([front, back], 160, 120)
    alone_front = render_layout([front], 160, 120).objects[0]
    alone_back = render_layout([back], 160, 120).objects[0]
    f, b = both.objects
    assert (f.color_name, b.color_name) == ("red", "blue")
    assert np.array_equal(f.mask, alone_front.mask)  # nothing hides the near chair
    assert b.area < alone_back.area  # the ball is partly hidden...
    overlap = alone_back.mask & alone_front.mask
    assert overlap.any() and not (b.mask & overlap).any()  # ...exactly where the chair is
    assert f.mean_depth < b.mean_depth
    assert (both.depth[overlap] < render_layout([back], 160, 120).depth[overlap]).all()


def test_categories_render_and_positions():
    layout = [PlacedObject(cat, "green", x, 4.0) for cat, x in zip(CATEGORIES, np.linspace(-1.6, 1.6, 6))]
    s = render_layout(layout, 320, 240)
    assert [o.category for o in s.objects] == list(CATEGORIES)
    assert s.objects[0].position == "left" and s.objects[-1].position == "right"
    with pytest.raises(ValueError):
        render_layout([PlacedObject("zebra", "red", 0.0, 3.0)])


def test_generation_is_fast():
    generate_scene(np.random.default_rng(0))
    t0 = time.process_time()
    for seed in range(10):
        generate_scene(np.random.default_rng(seed))
    per_scene = (time.process_time() - t0) / 10
    assert per_scene < 0.08, f"{per_scene * 1000:.1f} ms CPU per 320x240 scene"
