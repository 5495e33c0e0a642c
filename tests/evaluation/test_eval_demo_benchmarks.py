"""The demo benchmark writer round-trips through the readers with its answer key."""

from pathlib import Path

import numpy as np
import pytest

from evaluation.benchmarks import read_seed_counting, registry, split_rows
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
    seen = {}
    # every registered benchmark with a demo set reads back from the folders the registry names
    # (Aurora's counting sets: released flat layout, images in a folder of their own)
    for spec in registry.specs():
        images = root / spec.demo_images_dir if spec.demo_images_dir else None
        rows, rejects = split_rows(registry.read_benchmark(spec.name, root / spec.demo_dir, images))
        assert rejects == [] and rows, spec.name
        if spec.answer_type == "mask":  # refcoco_res: its key is the masks (test_refcoco_res_benchmark.py)
            continue
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


def test_counting_sets_use_the_released_layout_and_answers_match_the_scenes(demo):
    import json

    from perception_tokens.curriculum.plurals import clean_category_name, pluralize

    root, scenes, manifest = demo
    assert sorted(p.name for p in (root / "blink_counting").iterdir()) == ["blinkcounting_answers.jsonl", "blinkcounting_questions.jsonl"]
    assert sorted(p.name for p in (root / "seedbench").iterdir()) == ["seedbench_answers.jsonl", "seedbench_questions.jsonl"]
    blink_q = json.loads((root / "blink_counting" / "blinkcounting_questions.jsonl").read_text().splitlines()[0])
    seed_q = json.loads((root / "seedbench" / "seedbench_questions.jsonl").read_text().splitlines()[0])
    seed_a = json.loads((root / "seedbench" / "seedbench_answers.jsonl").read_text().splitlines()[0])
    assert blink_q["question_id"] == 0 and blink_q["image"] == "0.png" and blink_q["category"] == "count"
    assert isinstance(seed_q["question_id"], str) and seed_q["image"].endswith(".jpg") and set(seed_a) == {"question_id", "text"}
    rows, _ = split_rows(read_seed_counting(root / "seedbench", images=root / "counting_images" / "seedbench"))
    assert rows and all(r["image_bytes"][:3] == b"\xff\xd8\xff" for r in rows)  # JPEG, as released
    for row in rows:
        scene = scenes[int(row["image_file"].rsplit("_", 1)[1].removesuffix(".jpg"))]
        expected = sum(row["question"] == f"How many {pluralize(clean_category_name(o.category))} are in the image?"
                       for o in scene.objects)
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
