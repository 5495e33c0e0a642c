"""LLaVA JSON export: records, atomic write, validated read, answer token checks."""

import json

import pytest

from perception_tokens.curriculum import (
    LlavaFormatError,
    build_count,
    build_depth_atomic,
    read_llava_json,
    to_llava_record,
    validate_answer_tokens,
    write_llava_json,
)
from perception_tokens.vocab import GridBox, encode_depth

DEPTH = encode_depth([3] * 100)


def records():
    a = build_depth_atomic(
        dataset="ade20k", image_id="ADE_1", image_file="ade20k/ADE_1.png", codes=[3] * 100, depth_token_version="v"
    )
    b = build_count(
        "direct", dataset="lvis", image_id="5", image_file="lvis/5.jpg", category_name="mouse", boxes=[GridBox(1, 1, 5, 5)]
    )
    return [to_llava_record(a), to_llava_record(b)]


def test_record_shape():
    rec = records()[1]
    assert rec == {
        "id": "count_direct:lvis:5:mouse",
        "image": "lvis/5.jpg",
        "conversations": [
            {"from": "human", "value": "<image>\nHow many mice are in the image?"},
            {"from": "gpt", "value": "1"},
        ],
    }


def test_round_trip_and_atomic_write(tmp_path):
    path = tmp_path / "out" / "train.json"
    assert write_llava_json(records(), path) == 2
    assert read_llava_json(path) == records()
    assert [p.name for p in path.parent.iterdir()] == ["train.json"]  # no temp file left
    # a failed write leaves the previous file intact
    bad = records() + [{"id": "x", "image": "/etc/passwd", "conversations": []}]
    with pytest.raises(LlavaFormatError, match="record 2"):
        write_llava_json(bad, path)
    assert read_llava_json(path) == records()


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda r: r[1].update(image="../../secret.png"), "relative path"),
        (lambda r: r[1].update(image="/abs/x.png"), "relative path"),
        (lambda r: r[1]["conversations"].pop(), "at least 2 turns"),
        (lambda r: r[1]["conversations"][1].update({"from": "human"}), "expected 'gpt'"),
        (lambda r: r[1]["conversations"][0].update(value="How many?"), "<image>"),
        (lambda r: r[1].update(id=r[0]["id"]), "id repeats record 0"),
        (lambda r: r[1].pop("id"), "'id'"),
    ],
)
def test_read_names_file_and_record(tmp_path, mutate, message):
    recs = records()
    mutate(recs)
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(recs))
    with pytest.raises(LlavaFormatError) as err:
        read_llava_json(path)
    assert str(path) in str(err.value) and "record 1" in str(err.value) and message in str(err.value)


def test_read_bad_files(tmp_path):
    p = tmp_path / "x.json"
    p.write_text("{not json")
    with pytest.raises(LlavaFormatError, match="not valid JSON"):
        read_llava_json(p)
    p.write_text('{"id": 1}')
    with pytest.raises(LlavaFormatError, match="array"):
        read_llava_json(p)
    with pytest.raises(FileNotFoundError):
        read_llava_json(tmp_path / "missing.json")


def test_validate_answer_tokens():
    good = f"Point A is located at (<PIXEL_3>,<PIXEL_335>). The depth map is {DEPTH}. (<PIXEL_1>,<PIXEL_2>,<PIXEL_9>,<PIXEL_9>) (A)"
    assert validate_answer_tokens(good) == []
    assert validate_answer_tokens("3") == []
    short = "<DEPTH_START>" + "<DEPTH_1>" * 99 + "<DEPTH_END>"
    assert any("expected 100 depth codes, got 99" in p for p in validate_answer_tokens(short))
    bad_code = "<DEPTH_START>" + "<DEPTH_1>" * 99 + "<DEPTH_128><DEPTH_END>"
    assert any("128" in p for p in validate_answer_tokens(bad_code))
    assert any("outside a depth span" in p for p in validate_answer_tokens(f"{DEPTH} then <DEPTH_5>"))
    assert any("outside a depth span" in p for p in validate_answer_tokens("<DEPTH_START><DEPTH_1>"))
    assert any("invalid pixel token <PIXEL_336>" in p for p in validate_answer_tokens("(<PIXEL_336>,<PIXEL_2>)"))
    assert any("invalid pixel token <PIXEL_07>" in p for p in validate_answer_tokens("(<PIXEL_07>,<PIXEL_2>)"))
    assert any("outside a point or box" in p for p in validate_answer_tokens("x <PIXEL_4> y"))
    assert any("degenerate" in p for p in validate_answer_tokens("(<PIXEL_9>,<PIXEL_1>,<PIXEL_3>,<PIXEL_5>)"))
