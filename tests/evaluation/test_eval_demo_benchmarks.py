"""The demo benchmark writer round-trips through the readers with its answer key."""

from pathlib import Path

import numpy as np
import pytest

from evaluation.benchmarks import (
    read_blink,
    read_blink_counting,
    read_cvbench,
    read_hardblink,
    read_seed_counting,
    split_rows,
)
from evaluation.benchmarks.demo import depth_to_uint8, write_demo_benchmarks
from perception_tokens.demo.scenes import generate_scene
from perception_tokens.images import decode_rgb


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    rng = np.random.default_rng(0)
    scenes = [generate_scene(rng, 160, 120) for _ in range(4)]
    root = tmp_path_factory.mktemp("demo_bench")
    return root, scenes, write_demo_benchmarks(root, scenes, seed=3)


def test_every_set_reads_back_with_its_answers(demo):
    root, scenes, manifest = demo
    readers = [
        (read_hardblink, "hardblink"), (read_blink, "blink"), (read_cvbench, "cvbench"),
        (read_blink_counting, "counting"), (read_seed_counting, "counting"),
    ]
    seen = {}
    for reader, folder in readers:
        rows, rejects = split_rows(reader(root / folder))
        assert rejects == []
        for r in rows:
            seen[(r["benchmark"], r["subset"], r["question_id"])] = r
    assert {k: r["gold"] for k, r in seen.items()} == manifest.answers
    counts = manifest.counts()
    for key in [("HardBLINK", "3points"), ("HardBLINK", "5points"), ("BLINK", "Relative_Depth"), ("BLINK", "Counting"),
                ("CV-Bench", "Count"), ("CV-Bench", "Depth"), ("BLINK-Count", "count"), ("SEED-Count", "count")]:
        assert counts.get(key, 0) >= 1, (key, manifest.skipped)
    assert counts[("HardBLINK", "3points")] == len(scenes)
    hb5 = [r for k, r in seen.items() if k[:2] == ("HardBLINK", "5points")]
    assert all(r["valid_letters"] == list("ABCDE") for r in hb5)
    # markers are drawn on the 336 grid
    assert decode_rgb(hb5[0]["image_bytes"]).shape == (336, 336, 3)
    sources = {r["source"] for k, r in seen.items() if k[0] == "CV-Bench"}
    assert sources == {"ADE20K", "COCO", "Omni3D"}


def test_counting_answers_match_the_scene_objects(demo):
    root, scenes, manifest = demo
    rows, _ = split_rows(read_seed_counting(root / "counting"))
    for row in rows:
        scene = scenes[int(row["question_id"])]
        expected = sum(o.category.replace("_", " ") == row["category"] for o in scene.objects)
        assert row["gold"] == str(expected) and expected >= 1


def test_depth_convention_larger_is_nearer():
    depth = np.array([[1.0, 2.0], [4.0, 8.0]], np.float32)
    u8 = depth_to_uint8(depth)
    assert u8[0, 0] == 255 and u8[1, 1] == 0 and u8[0, 1] > u8[1, 0]


def test_same_seed_same_files(tmp_path: Path, demo):
    _, scenes, manifest = demo
    again = write_demo_benchmarks(tmp_path, scenes[:2], seed=3)
    again2 = write_demo_benchmarks(tmp_path / "b", scenes[:2], seed=3)
    assert again.answers == again2.answers
    assert (tmp_path / "hardblink/images/blink4pointscenter/0.png").read_bytes() == (
        tmp_path / "b/hardblink/images/blink4pointscenter/0.png").read_bytes()
