"""The released file formats the demo benchmark sets are written in: BLINK's and CV-Bench's
Parquet schemas and rows (Hugging Face image structs), jsonl and JPEG, each written to a
temporary name and renamed."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from perception_tokens.paths import atomic_write_text

from evaluation.benchmarks.records import LETTERS, format_choices_prompt

_IMAGE_STRUCT = pa.struct([("bytes", pa.binary()), ("path", pa.string())])


def _image_struct(data: bytes, name: str) -> dict:
    return {"bytes": data, "path": name}


def write_parquet(path: Path, rows: list[dict], schema: pa.Schema) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    pq.write_table(pa.Table.from_pylist(rows, schema=schema), tmp)
    tmp.replace(path)


def encode_jpeg(rgb: np.ndarray) -> bytes:
    ok, buf = cv2.imencode(".jpg", np.ascontiguousarray(rgb[..., ::-1]), [cv2.IMWRITE_JPEG_QUALITY, 90])
    if not ok:
        raise ValueError("JPEG encoding failed")
    return buf.tobytes()


def write_jsonl(path: Path, records: list[dict]) -> None:
    atomic_write_text(path, "".join(json.dumps(r) + "\n" for r in records), fsync=False)


BLINK_SCHEMA = pa.schema(
    [
        ("idx", pa.string()),
        ("question", pa.string()),
        ("sub_task", pa.string()),
        ("image_1", _IMAGE_STRUCT),
        ("image_2", _IMAGE_STRUCT),
        ("image_3", _IMAGE_STRUCT),
        ("image_4", _IMAGE_STRUCT),
        ("choices", pa.list_(pa.string())),
        ("answer", pa.string()),
        ("prompt", pa.string()),
        ("explanation", pa.string()),
    ]
)

CVBENCH_SCHEMA = pa.schema(
    [
        ("idx", pa.int64()),
        ("type", pa.string()),
        ("task", pa.string()),
        ("image", _IMAGE_STRUCT),
        ("question", pa.string()),
        ("choices", pa.list_(pa.string())),
        ("answer", pa.string()),
        ("prompt", pa.string()),
        ("filename", pa.string()),
        ("source", pa.string()),
    ]
)


def blink_row(idx: str, sub_task: str, question: str, choices: list[str], gold: str, image: bytes) -> dict:
    return {
        "idx": idx,
        "question": question,
        "sub_task": sub_task,
        "image_1": _image_struct(image, f"{idx}.png"),
        "image_2": None,
        "image_3": None,
        "image_4": None,
        "choices": choices,
        "answer": f"({gold})",
        "prompt": format_choices_prompt(question, choices),
        "explanation": "",
    }


def cvbench_row(idx, type_, task, question, choices, gold, image, source, scene_index) -> dict:
    return {
        "idx": idx,
        "type": type_,
        "task": task,
        "image": _image_struct(image, f"img/{type_.lower()}/{task.lower()}/{scene_index:06d}.png"),
        "question": question,
        "choices": choices,
        "answer": f"({gold})",
        "prompt": _cvbench_prompt(question, choices),
        "filename": f"img/{type_.lower()}/{task.lower()}/{scene_index:06d}.png",
        "source": source,
    }


def _cvbench_prompt(question: str, choices: list[str]) -> str:
    # CV-Bench's prompt: question, then the options on one line, then the instruction.
    options = " ".join(f"({letter}) {choice}" for letter, choice in zip(LETTERS, choices))
    return f"{question} Select from the following choices.\n{options}"
