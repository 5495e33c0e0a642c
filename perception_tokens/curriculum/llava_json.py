"""LLaVA conversation JSON: export samples, read them back with validation, check answer tokens.

Record format (LLaVA's ``LazySupervisedDataset``)::

    {"id": ..., "image": "<file relative to the image folder>",
     "conversations": [{"from": "human", "value": "<image>\\n<question>"},
                       {"from": "gpt", "value": "<answer>"}],
     "mask_rle": {"size": [h, w], "counts": "..."}}   # only on samples with a mask (Perceptio)
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from pathlib import Path, PurePosixPath
from typing import Any, Iterable

from perception_tokens.curriculum.sample import Sample
from perception_tokens.vocab import (
    DEPTH_END,
    DEPTH_START,
    PIXEL_GRID,
    GridBox,
    TokenParseError,
    decode_depth,
)

IMAGE_PREFIX = "<image>\n"


class LlavaFormatError(ValueError):
    """A LLaVA JSON file that does not follow the record format; the message names file and record."""


def to_llava_record(sample: Sample) -> dict[str, Any]:
    """A :class:`Sample` as one LLaVA conversation record; a sample with a mask carries it as
    ``mask_rle`` (what the fine-tune's segmentation head trains on), a VPT sample names its training stage."""
    record = {
        "id": sample.sample_id,
        "image": sample.image.file_name,
        "conversations": [
            {"from": "human", "value": IMAGE_PREFIX + sample.question},
            {"from": "gpt", "value": sample.answer},
        ],
    }
    if sample.mask_rle is not None:
        record["mask_rle"] = {"size": [int(v) for v in sample.mask_rle["size"]], "counts": str(sample.mask_rle["counts"])}
    if sample.vpt_stage is not None:
        record["vpt_stage"] = sample.vpt_stage
    return record


def _image_path_problem(image: Any) -> str | None:
    if not isinstance(image, str) or not image:
        return "'image' must be a non-empty string"
    p = PurePosixPath(image.replace("\\", "/"))
    if p.is_absolute() or ".." in p.parts or re.match(r"^[A-Za-z]:", image):
        return f"'image' {image!r} must be a relative path inside the image folder"
    return None


def record_problems(record: Any) -> list[str]:
    """Everything wrong with one record's structure (empty list: valid)."""
    if not isinstance(record, dict):
        return [f"record must be an object, got {type(record).__name__}"]
    problems = []
    if not isinstance(record.get("id"), str) or not record.get("id"):
        problems.append("'id' must be a non-empty string")
    has_image = "image" in record
    if has_image:
        problem = _image_path_problem(record["image"])
        if problem:
            problems.append(problem)
    conversations = record.get("conversations")
    if not isinstance(conversations, list) or len(conversations) < 2:
        problems.append("'conversations' must be a list of at least 2 turns")
        return problems
    if len(conversations) % 2:
        problems.append(f"'conversations' has {len(conversations)} turns; expected human/gpt pairs")
    for i, turn in enumerate(conversations):
        expected = "human" if i % 2 == 0 else "gpt"
        if not isinstance(turn, dict):
            problems.append(f"turn {i} must be an object")
            continue
        if turn.get("from") != expected:
            problems.append(f"turn {i} is from {turn.get('from')!r}, expected {expected!r}")
        if not isinstance(turn.get("value"), str):
            problems.append(f"turn {i} 'value' must be a string")
    first = conversations[0]
    if has_image and isinstance(first, dict) and isinstance(first.get("value"), str):
        value = first["value"]
        if not value.startswith(IMAGE_PREFIX):
            problems.append("first human turn must start with '<image>\\n'")
        if value.count("<image>") != 1:
            problems.append(f"first human turn has {value.count('<image>')} '<image>' tags, expected 1")
    return problems


def write_llava_json(records: Iterable[dict[str, Any]], path: str | os.PathLike, *, indent: int = 1,
                     ensure_ascii: bool = False) -> int:
    """Validate and write records as one JSON array, atomically (temp file + ``os.replace``).

    Aurora's notebooks write ``json.dump(data, f, indent=2)`` (ASCII escapes): pass
    ``indent=2, ensure_ascii=True`` for their bytes.

    Returns the number of records. Raises LlavaFormatError naming the record if one is
    malformed or an id repeats; nothing is written then.
    """
    path = Path(path)
    records = list(records)
    _validate_all(records, str(path))
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(records, f, ensure_ascii=ensure_ascii, indent=indent)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return len(records)


def _validate_all(records: list[Any], source: str) -> None:
    seen: dict[str, int] = {}
    for i, rec in enumerate(records):
        rid = rec.get("id") if isinstance(rec, dict) else None
        problems = record_problems(rec)
        if isinstance(rid, str) and rid:
            if rid in seen:
                problems.append(f"id repeats record {seen[rid]}")
            seen.setdefault(rid, i)
        if problems:
            raise LlavaFormatError(f"{source}: record {i} (id={rid!r}): " + "; ".join(problems))


def read_llava_json(path: str | os.PathLike) -> list[dict[str, Any]]:
    """Read a LLaVA JSON array and validate every record.

    Raises FileNotFoundError for a missing file and LlavaFormatError (naming the file and
    the first bad record) for text that is not UTF-8, invalid JSON, a non-array top level
    or a malformed record.
    """
    path = Path(path)
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except json.JSONDecodeError as err:
        raise LlavaFormatError(f"{path}: not valid JSON: {err}") from err
    except UnicodeDecodeError as err:
        raise LlavaFormatError(f"{path}: not UTF-8 text ({err})") from err
    if not isinstance(data, list):
        raise LlavaFormatError(f"{path}: top level must be a JSON array of records, got {type(data).__name__}")
    _validate_all(data, str(path))
    return data


# ---------------------------------------------------------------------------- answer tokens

_SPAN_RE = re.compile(re.escape(DEPTH_START) + r".*?" + re.escape(DEPTH_END), re.S)
_ANY_DEPTH_RE = re.compile(r"<DEPTH_[^<>]*>")
_ANY_PIXEL_RE = re.compile(r"<PIXEL_[^<>]*>")
_PIXEL_VALUE_RE = re.compile(r"<PIXEL_(0|[1-9]\d*)>")
_PX = r"<PIXEL_(\d+)>"
_BOX_GROUP_RE = re.compile(rf"\({_PX},{_PX},{_PX},{_PX}\)")
_POINT_GROUP_RE = re.compile(rf"\({_PX},{_PX}\)")


def validate_answer_tokens(text: str) -> list[str]:
    """Problems with the perception tokens in an answer (empty list: all parse).

    Checks: every ``<DEPTH_START>...<DEPTH_END>`` span holds exactly 100 valid codes and
    nothing else; no depth token (start, end or code) outside a span; every pixel token
    is ``<PIXEL_v>`` with v in 0..335 and sits in a point ``(x,y)`` or a box
    ``(x1,y1,x2,y2)``; boxes have x1 < x2 and y1 < y2.
    """
    problems: list[str] = []
    for n, span in enumerate(_SPAN_RE.findall(text)):
        try:
            decode_depth(span)
        except TokenParseError as err:
            problems.append(f"depth span {n}: {err.reason}")
    outside = _SPAN_RE.sub(" ", text)
    stray = _ANY_DEPTH_RE.findall(outside)
    if stray:
        problems.append(f"{len(stray)} depth token(s) outside a depth span, first {stray[0]}")

    for tok in _ANY_PIXEL_RE.findall(text):
        m = _PIXEL_VALUE_RE.fullmatch(tok)
        if not m or int(m.group(1)) >= PIXEL_GRID:
            problems.append(f"invalid pixel token {tok} (expected <PIXEL_0>..<PIXEL_{PIXEL_GRID - 1}>)")
    for m in _BOX_GROUP_RE.finditer(text):
        try:
            GridBox(*(int(g) for g in m.groups()))
        except TokenParseError as err:
            problems.append(f"box {m.group(0)}: {err.reason}")
    rest = _POINT_GROUP_RE.sub(" ", _BOX_GROUP_RE.sub(" ", text))
    loose = _ANY_PIXEL_RE.findall(rest)
    if loose:
        problems.append(f"{len(loose)} pixel token(s) outside a point or box, first {loose[0]}")
    return problems
