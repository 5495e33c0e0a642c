"""benchmark_hardblink from a hand-written release layout: a good question becomes a row with
its image bytes and gold letter; a wrong answer letter and an image path leaving the root
become reject rows."""

from __future__ import annotations

import json

import cv2
import numpy as np

from asset_unit_helpers import make_settings, materialization_metadata, materialize_asset, read_rows

QUESTION = "Which point is closer to the camera? Select from the following choices.\n(A) A\n(B) B\n(C) C"


def _jsonl(path, records) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in records))


def test_benchmark_hardblink_rows_and_rejects(tmp_path):
    root = tmp_path / "HardBLINK"
    image = cv2.imencode(".png", np.full((12, 16, 3), 77, np.uint8))[1].tobytes()
    (root / "images" / "blink3pointscenter").mkdir(parents=True)
    (root / "images" / "blink3pointscenter" / "1.png").write_bytes(image)
    (tmp_path / "outside.png").write_bytes(image)
    _jsonl(root / "questions" / "blink_3pointscenter_questions.jsonl", [
        {"question_id": 1, "image": "1.png", "text": QUESTION, "category": "depth"},
        {"question_id": 2, "image": "1.png", "text": QUESTION, "category": "depth"},
        {"question_id": 3, "image": "../../../outside.png", "text": QUESTION, "category": "depth"},
    ])
    _jsonl(root / "answers" / "blink_3pointscenter_answers.jsonl", [
        {"question_id": 1, "text": "(B)"}, {"question_id": 2, "text": "(D)"}, {"question_id": 3, "text": "(A)"}])
    settings = make_settings(tmp_path, evaluation={"roots": {"hardblink": str(root)}})
    result = materialize_asset(settings, "benchmark_hardblink")

    (row,) = read_rows(settings, "benchmark_hardblink")
    assert (row["benchmark"], row["subset"], row["question_id"], row["gold"], row["answer_type"]) == ("HardBLINK", "3points", "1", "B", "letter")
    assert row["valid_letters"] == ["A", "B", "C"] and row["prompt"] == QUESTION
    assert (row["image_file"], row["image_bytes"]) == ("images/blink3pointscenter/1.png", image)
    rejects = read_rows(settings, "benchmark_hardblink_rejects")
    assert [(r["record_id"], r["file"]) for r in rejects] == [
        ("2", "answers/blink_3pointscenter_answers.jsonl"), ("3", "questions/blink_3pointscenter_questions.jsonl")]
    assert [r["reason"] for r in rejects] == [
        "answer '(D)' is not one of ['A', 'B', 'C']", "unsafe image path: '..' climbs above the root ('../../../outside.png')"]
    assert materialization_metadata(result, "benchmark_hardblink")["dagster/row_count"] == 1
