"""Marked points: sampling constraints, closest point, drawing inside the image."""

import numpy as np
import pytest

from perception_tokens.markers import (
    CIRCLE_RADIUS,
    LETTERS,
    MarkedPoint,
    PointSamplingError,
    choose_points,
    closest_point,
    draw_markers,
)

GRID = 336


def scene_depth() -> np.ndarray:
    """Smooth vertical ramp (far at top, near at bottom) with a near plateau block."""
    ramp = np.linspace(20, 230, GRID)[:, None].repeat(GRID, axis=1)
    depth = ramp.copy()
    depth[100:180, 60:140] = 250  # a near object
    return depth.round().astype(np.uint8)


@pytest.mark.parametrize("n_points", [2, 3, 4, 5])
def test_choose_points_respects_margins_separation_and_gap(n_points):
    depth = scene_depth()
    for seed in range(6):
        pts = choose_points(depth, n_points, np.random.default_rng(seed), margin=30, min_separation=40, min_depth_gap=25)
        assert [p.letter for p in pts] == list(LETTERS[:n_points])
        for p in pts:
            assert 30 <= p.x < GRID - 30 and 30 <= p.y < GRID - 30
            assert p.depth_value == int(depth[p.y, p.x])
        for i, a in enumerate(pts):
            for b in pts[i + 1 :]:
                assert (a.x - b.x) ** 2 + (a.y - b.y) ** 2 >= 40**2
                assert abs(a.depth_value - b.depth_value) >= 25
        # closest = largest depth on the map at the chosen pixels
        nearest = max(pts, key=lambda p: depth[p.y, p.x])
        assert closest_point(pts) == nearest.letter


def test_choose_points_is_deterministic_and_letters_not_depth_sorted():
    depth = scene_depth()
    a = choose_points(depth, 4, np.random.default_rng(7))
    b = choose_points(depth, 4, np.random.default_rng(7))
    assert a == b
    answers = {closest_point(choose_points(depth, 3, np.random.default_rng(s))) for s in range(30)}
    assert answers == {"A", "B", "C"}  # answer letter varies, no positional shortcut


def test_flat_map_is_rejected_with_reason():
    flat = np.full((GRID, GRID), 90, np.uint8)
    with pytest.raises(PointSamplingError) as err:
        choose_points(flat, 3, np.random.default_rng(0))
    assert "depth range 0" in err.value.reason


def test_impossible_configuration_is_rejected():
    # Range 40 allows 2 points 25 apart but not 3.
    depth = np.linspace(100, 140, GRID)[None, :].repeat(GRID, axis=0).round().astype(np.uint8)
    choose_points(depth, 2, np.random.default_rng(0))
    with pytest.raises(PointSamplingError):
        choose_points(depth, 3, np.random.default_rng(0))


def test_points_avoid_depth_edges():
    step = np.zeros((GRID, GRID), np.uint8)
    step[:, 168:] = 200
    for seed in range(10):
        for p in choose_points(step, 2, np.random.default_rng(seed), max_local_range=24):
            assert abs(p.x - 167.5) > 3


def test_bad_arguments():
    with pytest.raises(ValueError):
        choose_points(np.zeros((100, 100), np.uint8), 3, np.random.default_rng(0))
    with pytest.raises(ValueError):
        choose_points(scene_depth(), 6, np.random.default_rng(0))
    with pytest.raises(ValueError):
        closest_point([MarkedPoint("A", 50, 50, 9), MarkedPoint("B", 100, 100, 9)])


def _is_red(px):
    return px[0] > 180 and px[1] < 90 and px[2] < 90


@pytest.mark.parametrize("variant", ["beside", "center"])
def test_markers_drawn_red_near_points_and_labels_inside(variant):
    rgb = np.full((GRID, GRID, 3), 120, np.uint8)
    pts = [
        MarkedPoint("A", 2, 2, 10),  # corners: labels must be shifted inside
        MarkedPoint("B", GRID - 3, GRID - 3, 50),
        MarkedPoint("C", GRID - 3, 2, 90),
        MarkedPoint("D", 2, GRID - 3, 130),
        MarkedPoint("E", 168, 168, 170),
    ]
    out, boxes = draw_markers(rgb, pts, variant=variant)
    assert out.shape == rgb.shape and out.dtype == np.uint8
    assert (rgb == 120).all()  # input untouched
    assert [b.letter for b in boxes] == list("ABCDE")
    for p, box in zip(pts, boxes):
        assert box.inside(GRID, GRID), box
        # red ring on the circle around the point
        r = CIRCLE_RADIUS
        ring = [(p.x + dx, p.y + dy) for dx, dy in ((r, 0), (-r, 0), (0, r), (0, -r))]
        ring = [(x, y) for x, y in ring if 0 <= x < GRID and 0 <= y < GRID]
        assert any(_is_red(out[y, x]) for x, y in ring)
        # readable label: white fill and dark letter/outline inside the box
        patch = out[box.y1 : box.y2 + 1, box.x1 : box.x2 + 1]
        assert (patch.min(axis=2) > 240).sum() > 20
        assert (patch.max(axis=2) < 80).sum() > 10
    e, box_e = pts[4], boxes[4]
    if variant == "beside":
        assert box_e.x1 > e.x + CIRCLE_RADIUS and box_e.y1 < e.y < box_e.y2
    else:
        assert box_e.y2 < e.y - CIRCLE_RADIUS and abs((box_e.x1 + box_e.x2) / 2 - e.x) <= 1
