"""The zoom benchmark (VPT's questions that need a zoom): the demo writes a tiny label in a large image,
the reader gives it back with its answer and ground-truth box through the registry, and every unusable
record is a reject row with its reason (paths stay inside the root, boxes inside the image, sizes capped)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from evaluation.benchmarks import registry, zoom
from evaluation.benchmarks.records import BenchmarkFileError, MissingBenchmarkFile
from evaluation.benchmarks.zoom_demo import IMAGE_SIZE, LABEL_SIZE, write_demo_zoom
from perception_tokens.images import decode_rgb, encode_png
from perception_tokens.rejects import split_rows


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    root = tmp_path_factory.mktemp("zoom") / "zoom"
    return root, write_demo_zoom(root, 6, seed=5)


def test_demo_questions_read_back_with_their_answers_and_boxes(demo):
    root, answers = demo
    rows, rejects = split_rows(registry.read_benchmark("zoom", root))
    assert rejects == []
    assert {(r["benchmark"], r["subset"], r["question_id"]): r["gold"] for r in rows} == answers
    assert [r["subset"] for r in rows] == ["letter", "digit"] * 3
    width, height = IMAGE_SIZE
    for r in rows:
        rgb = decode_rgb(r["image_bytes"])
        assert rgb.shape == (height, width, 3)
        x0, y0, x1, y1 = (int(v) for v in r["gt_box"])
        assert (x1 - x0, y1 - y0) == LABEL_SIZE
        assert (x0 < 20 or x1 > width - 20) and (y0 < 20 or y1 > height - 20)  # in a corner
        label = rgb[y0:y1, x0:x1]
        assert (label == 255).all(axis=-1).mean() > 0.5 and (label.max(axis=-1) < 128).sum() >= 8  # ink on white
        answer = r["choices"]["ABCD".index(r["gold"])]
        assert answer.isdigit() == (r["subset"] == "digit") and len(r["choices"]) == 4
        assert r["prompt"].startswith(r["question"]) and f"({r['gold']}) {answer}" in r["prompt"]
    assert [r["question_id"] for r in split_rows(registry.read_subsets("zoom", root, "digit"))[0]] == [
        "zoom0001", "zoom0003", "zoom0005"]


def test_same_seed_same_files(demo, tmp_path):
    root, answers = demo
    assert write_demo_zoom(tmp_path, 6, seed=5) == answers
    assert (tmp_path / "questions.jsonl").read_bytes() == (root / "questions.jsonl").read_bytes()
    assert (tmp_path / "images" / "zoom0004.png").read_bytes() == (root / "images" / "zoom0004.png").read_bytes()


def good(qid, **changes):
    return {"question_id": qid, "category": "letter", "image": "images/a.png", "question": "Which letter?",
            "choices": ["K", "R"], "answer": "B", "bbox": [2, 3, 4, 5], **changes}


def test_every_unusable_record_is_a_reject_with_its_reason(tmp_path):
    (tmp_path / "images").mkdir()
    (tmp_path / "images" / "a.png").write_bytes(encode_png(np.zeros((20, 30, 3), np.uint8)))
    (tmp_path / "images" / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    (tmp_path.parent / "outside.png").write_bytes(encode_png(np.zeros((20, 30, 3), np.uint8)))
    records = [good("ok"), good("ok"), {"category": "letter"}, good("cat", category="word"), good("q", question=" "),
               good("ch1", choices=["K"]), good("ch2", choices=["K", 3]), good("nobox", bbox=None),
               good("box3", bbox=[1, 2, 3]), good("boxnan", bbox=[1, 2, "x", 4]), good("flat", bbox=[1, 2, 0, 4]),
               good("out", bbox=[20, 10, 11, 5]), good("ans", answer="C"), good("img", image="images/missing.png"),
               good("esc", image="../outside.png"), good("dec", image="images/bad.png"), good("digit", category="digit")]
    del records[7]["bbox"]
    lines = [json.dumps(r) for r in records]
    lines.insert(3, "{not json")
    (tmp_path / "questions.jsonl").write_text("\n".join(lines) + "\n")
    rows, rejects = split_rows(zoom.read_zoom(tmp_path))
    assert [r["question_id"] for r in rows] == ["ok", "digit"]
    assert rows[0]["gt_box"] == [2.0, 3.0, 6.0, 8.0] and rows[0]["gold"] == "B"
    reasons = {rej.record_id: rej.reason for rej in rejects}
    assert all(rej.file == "questions.jsonl" and rej.dataset == "Zoom" for rej in rejects)
    expected = {
        "ok": "duplicate question_id", "line 3": "question without a usable question_id",
        "line 4": "malformed JSON line", "cat": "category 'word' is not one of", "q": "question without text",
        "ch1": "choices must be a list of 2 to 8", "ch2": "a choice is empty, not a string", "nobox": "no bbox",
        "box3": "is not four finite numbers", "boxnan": "is not four finite numbers", "flat": "is empty",
        "out": "is not inside the 30x20 image", "ans": "answer 'C' is not one of ['A', 'B']",
        "img": "missing image 'images/missing.png'", "esc": "unsafe image path", "dec": "does not decode",
    }
    assert set(reasons) == set(expected)
    for record_id, start in expected.items():
        assert start in reasons[record_id], (record_id, reasons[record_id])


def test_a_missing_or_oversized_questions_file_is_an_error_naming_it(tmp_path, monkeypatch):
    with pytest.raises(MissingBenchmarkFile, match="questions.jsonl"):
        zoom.read_zoom(tmp_path)
    (tmp_path / "questions.jsonl").write_text(json.dumps(good("a")) + "\n")
    monkeypatch.setattr(zoom, "MAX_QUESTIONS_BYTES", 10)
    with pytest.raises(BenchmarkFileError, match=r"questions.jsonl is \d+ bytes, over the 10-byte limit"):
        zoom.read_zoom(tmp_path)


def test_registered_with_its_demo_folder_and_subsets():
    spec = registry.get("zoom")
    assert (spec.title, spec.subsets, spec.answer_type, spec.demo_dir) == ("Zoom", ("letter", "digit"), "letter", "zoom")
