"""Benchmark readers on small fixture sets written in each published format."""

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from evaluation.benchmarks import (
    Reject,
    read_blink,
    read_blink_counting,
    read_cvbench,
    read_hardblink,
    read_seed_counting,
    split_rows,
)
from evaluation.benchmarks.records import BenchmarkFileError, MissingBenchmarkFile
from perception_tokens.images import encode_png

QUESTION = (
    "Multiple points are circled on the image, labeled by letters beside each circle. "
    "Which point is the closest to the camera?"
)


def png(value: int = 0) -> bytes:
    return encode_png(np.full((8, 8, 3), value, np.uint8))


def write_jsonl(path: Path, lines: list) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join((line if isinstance(line, str) else json.dumps(line)) + "\n" for line in lines))


def reasons(rejects: list[Reject]) -> dict[str, str]:
    return {r.record_id: r.reason for r in rejects}


# ---------------------------------------------------------------------------- HardBLINK


@pytest.fixture()
def hardblink_root(tmp_path: Path) -> Path:
    root = tmp_path / "hardblink"
    img = root / "images" / "blink3pointscenter"
    img.mkdir(parents=True)
    (img / "0.png").write_bytes(png(10))
    (img / "5.png").write_bytes(png(20))
    (img / "bad.png").write_text("not an image")
    outside = tmp_path / "secret.png"
    outside.write_bytes(png(30))
    (img / "link.png").symlink_to(outside)
    q = lambda i, image: {"question_id": i, "image": image, "text": QUESTION, "category": "count"}  # noqa: E731
    write_jsonl(
        root / "questions" / "blink_3pointscenter_questions.jsonl",
        [
            q(0, "0.png"),
            q(1, "missing.png"),
            q(2, "../../../etc/passwd"),
            q(3, "/etc/passwd"),
            q(4, "0.png"),
            '{"question_id": 6, "image": ',
            q(5, "5.png"),
            q(7, "bad.png"),
            q(8, "link.png"),
            q(9, "0.png"),
        ],
    )
    a = lambda i, t: {"question_id": i, "text": t, "category": "count"}  # noqa: E731
    write_jsonl(
        root / "answers" / "blink_3pointscenter_answers.jsonl",
        [a(0, "(B)"), a(1, "(A)"), a(2, "(A)"), a(3, "(A)"), a(5, "C"), a(7, "(A)"), a(8, "(A)"), a(9, "(D)"), a(99, "(A)")],
    )
    return root


def test_hardblink_rows_and_rejects(hardblink_root: Path):
    rows, rejects = split_rows(read_hardblink(hardblink_root, point_counts=[3]))
    assert [(r["question_id"], r["gold"]) for r in rows] == [("0", "B"), ("5", "C")]
    row = rows[0]
    assert row["benchmark"] == "HardBLINK" and row["subset"] == "3points"
    assert row["valid_letters"] == ["A", "B", "C"] and row["choices"] is None
    assert row["answer_type"] == "letter" and row["prompt"] == QUESTION
    assert row["image_bytes"] == png(10)
    assert row["image_file"] == "images/blink3pointscenter/0.png"
    why = reasons(rejects)
    assert why["1"].startswith("missing image")
    assert "unsafe image path" in why["2"] and "climbs" in why["2"]
    assert "unsafe image path" in why["3"] and "absolute" in why["3"]
    assert why["4"] == "question without answer"
    assert why["line 6"].startswith("malformed JSON line")
    assert "not a PNG/JPEG" in why["7"]
    assert "unsafe image path" in why["8"]  # symlink pointing outside the root
    assert "not one of" in why["9"]  # (D) with 3 points
    assert why["99"] == "answer without question"
    # counts in = counts out + rejects (10 question lines + 1 orphan answer)
    assert len(rows) + len(rejects) == 11


def test_hardblink_missing_questions_file_names_it(hardblink_root: Path):
    with pytest.raises(MissingBenchmarkFile, match="blink_4pointscenter_questions.jsonl"):
        list(read_hardblink(hardblink_root, point_counts=[4]))


# ---------------------------------------------------------------------------- BLINK

IMAGE = pa.struct([("bytes", pa.binary()), ("path", pa.string())])
BLINK_SCHEMA = pa.schema(
    [("idx", pa.string()), ("question", pa.string()), ("sub_task", pa.string()), ("choices", pa.list_(pa.string())),
     ("answer", pa.string()), ("prompt", pa.string())]
    + [(f"image_{k}", IMAGE) for k in range(1, 5)]
)


def blink_row(idx, answer="(A)", image=None, choices=("A", "B"), **extra):
    row = {"idx": idx, "question": "Which point is closer to the camera?", "sub_task": "Relative Depth",
           "choices": list(choices), "answer": answer, "prompt": "Which point is closer?\n(A) A\n(B) B",
           "image_1": {"bytes": png(1), "path": "x.png"} if image is None else image,
           "image_2": None, "image_3": None, "image_4": None}
    row.update(extra)
    return row


def test_blink_parquet_rows_and_rejects(tmp_path: Path):
    root = tmp_path / "blink"
    (root / "Relative_Depth").mkdir(parents=True)
    (root / "Relative_Depth" / "on_disk.png").write_bytes(png(5))
    rows = [
        blink_row("val_Relative_Depth_1", "(B)"),
        blink_row("val_Relative_Depth_2", image={"bytes": None, "path": "on_disk.png"}),
        blink_row("val_Relative_Depth_3", image={"bytes": None, "path": "../../../etc/passwd"}),
        blink_row("val_Relative_Depth_4", answer=None),
        blink_row("val_Relative_Depth_5", answer="(C)"),
        blink_row("val_Relative_Depth_6", image={"bytes": None, "path": None}),
        blink_row("val_Relative_Depth_7", image_2={"bytes": png(9), "path": "y.png"}),
    ]
    rows[-1]["image_1"] = None
    pq.write_table(pa.Table.from_pylist(rows, schema=BLINK_SCHEMA), root / "Relative_Depth" / "val-00000-of-00001.parquet")
    got, rejects = split_rows(read_blink(root, subtasks=["Relative_Depth"]))
    assert [(r["question_id"], r["gold"]) for r in got] == [("val_Relative_Depth_1", "B"), ("val_Relative_Depth_2", "A")]
    assert got[0]["valid_letters"] == ["A", "B"] and got[0]["choices"] == ["A", "B"]
    assert got[0]["prompt"].startswith("Which point is closer?") and got[0]["image_bytes"] == png(1)
    assert got[1]["image_bytes"] == png(5)
    why = reasons(rejects)
    assert "unsafe image path" in why["val_Relative_Depth_3"]
    assert why["val_Relative_Depth_4"] == "question without answer"
    assert "not one of" in why["val_Relative_Depth_5"]
    assert "missing image" in why["val_Relative_Depth_6"]
    assert "missing image" in why["val_Relative_Depth_7"]
    assert len(got) + len(rejects) == len(rows)


def test_blink_bad_or_missing_files(tmp_path: Path):
    with pytest.raises(MissingBenchmarkFile, match="Counting"):
        list(read_blink(tmp_path, subtasks=["Counting"]))
    (tmp_path / "Counting").mkdir()
    (tmp_path / "Counting" / "val-0.parquet").write_text("garbage")
    with pytest.raises(BenchmarkFileError, match="val-0.parquet"):
        list(read_blink(tmp_path, subtasks=["Counting"]))
    with pytest.raises(ValueError, match="plain config name"):
        list(read_blink(tmp_path, subtasks=["../Counting"]))


# ---------------------------------------------------------------------------- CV-Bench

CV_SCHEMA = pa.schema(
    [("idx", pa.int64()), ("type", pa.string()), ("task", pa.string()), ("image", IMAGE), ("question", pa.string()),
     ("choices", pa.list_(pa.string())), ("answer", pa.string()), ("prompt", pa.string()), ("source", pa.string())]
)


def cv_row(idx, task="Count", source="COCO", answer="(C)", choices=("1", "2", "3", "4")):
    return {"idx": idx, "type": "3D" if task == "Depth" else "2D", "task": task, "image": {"bytes": png(2), "path": "a.png"},
            "question": "How many cups are in the image?", "choices": list(choices), "answer": answer,
            "prompt": "How many cups?", "source": source}


@pytest.mark.parametrize("layout", ["top", "data"])
def test_cvbench_rows_and_rejects(tmp_path: Path, layout: str):
    root = tmp_path / "cv"
    folder = root if layout == "top" else root / "data"
    folder.mkdir(parents=True)
    pq.write_table(pa.Table.from_pylist([cv_row(0, source="ADE20K"), cv_row(1), cv_row(1), cv_row(2, answer="(F)")], schema=CV_SCHEMA),
                   folder / ("test_2d.parquet" if layout == "top" else "test-2d.parquet"))
    pq.write_table(pa.Table.from_pylist([cv_row(3, "Depth", "Omni3D", "(B)", ("lamp", "chair"))], schema=CV_SCHEMA),
                   folder / ("test_3d.parquet" if layout == "top" else "test-3d.parquet"))
    rows, rejects = split_rows(read_cvbench(root))
    assert [(r["question_id"], r["subset"], r["source"], r["gold"]) for r in rows] == [
        ("0", "Count", "ADE20K", "C"), ("1", "Count", "COCO", "C"), ("3", "Depth", "Omni3D", "B")]
    assert rows[2]["valid_letters"] == ["A", "B"] and rows[2]["choices"] == ["lamp", "chair"]
    assert reasons(rejects) == {"1": "duplicate idx", "2": "answer '(F)' is not one of ['A', 'B', 'C', 'D']"}
    only_depth, _ = split_rows(read_cvbench(root, tasks=["Depth"]))
    assert [r["question_id"] for r in only_depth] == ["3"]


def test_cvbench_missing_columns_named(tmp_path: Path):
    pq.write_table(pa.table({"idx": [0]}), tmp_path / "test_2d.parquet")
    with pytest.raises(BenchmarkFileError, match="lacks column"):
        list(read_cvbench(tmp_path))


# ---------------------------------------------------------------------------- counting jsonl


def test_seed_counting_rows_and_rejects(tmp_path: Path):
    """The released flat layout (Aurora Data/evals/seedbench): string ids, answers without category,
    images in a folder given apart."""
    root, images = tmp_path / "seedbench", tmp_path / "seed_images"
    images.mkdir()
    (images / "a.jpg").write_bytes(png(3))
    q = lambda i, image="a.jpg": {"question_id": str(i), "text": "How many cups are in the image?", "category": "count", "image": image}  # noqa: E731
    write_jsonl(root / "seedbench_questions.jsonl",
                [q(100), q(101), q(102), q(103, "../a.jpg"), q(104, "nope.jpg"), q(105), "[1, 2]"])
    write_jsonl(root / "seedbench_answers.jsonl",
                [{"question_id": "100", "text": "3"}, {"question_id": "101", "text": 4}, {"question_id": "102", "text": "three"},
                 {"question_id": "103", "text": "1"}, {"question_id": "104", "text": "1"}])
    rows, rejects = split_rows(read_seed_counting(root, images=images))
    assert [(r["question_id"], r["gold"], r["answer_type"], r["valid_letters"]) for r in rows] == [
        ("100", "3", "number", []), ("101", "4", "number", [])]
    assert rows[0]["image_bytes"] == png(3) and rows[0]["image_file"] == "seed_images/a.jpg"
    why = reasons(rejects)
    assert "not a whole number" in why["102"]
    assert "unsafe image path" in why["103"]
    assert why["104"].startswith("missing image")
    assert why["105"] == "question without answer"
    assert "not an object" in why["line 7"]
    assert len(rows) + len(rejects) == 7


def test_released_blink_counting_files_read_as_they_are(tmp_path: Path):
    """The first lines of Aurora's released blink_counting files, verbatim; images 0..2 present."""
    root, images = tmp_path / "blink_counting", tmp_path / "imgs"
    images.mkdir()
    for i in range(3):
        (images / f"{i}.png").write_bytes(png(i))
    write_jsonl(root / "blinkcounting_questions.jsonl", [
        '{"question_id": 0, "image": "0.png", "text": "How many blue floats are there?", "category": "count"}',
        '{"question_id": 1, "image": "1.png", "text": "How many black toilets are there?", "category": "count"}',
        '{"question_id": 2, "image": "2.png", "text": "How many tvs are hung up on the wall?", "category": "count"}',
        '{"question_id": 3, "image": "3.png", "text": "How many people are in purple?", "category": "count"}'])
    write_jsonl(root / "blinkcounting_answers.jsonl", [
        '{"question_id": 0, "text": "1", "category": "count"}', '{"question_id": 1, "text": "0", "category": "count"}',
        '{"question_id": 2, "text": "0", "category": "count"}', '{"question_id": 3, "text": "1", "category": "count"}'])
    rows, rejects = split_rows(read_blink_counting(root, images=images))
    assert [(r["benchmark"], r["subset"], r["question_id"], r["gold"]) for r in rows] == [
        ("BLINK-Count", "count", "0", "1"), ("BLINK-Count", "count", "1", "0"), ("BLINK-Count", "count", "2", "0")]
    assert reasons(rejects) == {"3": "missing image '3.png'"}
    # default image folder: <root>/images; absent, the error names it and the option
    with pytest.raises(MissingBenchmarkFile, match="--images"):
        read_blink_counting(root)


def test_counting_missing_answers_file_names_it(tmp_path: Path):
    write_jsonl(tmp_path / "seedbench_questions.jsonl", [])
    with pytest.raises(MissingBenchmarkFile, match="seedbench_answers.jsonl"):
        read_seed_counting(tmp_path, images=tmp_path)
