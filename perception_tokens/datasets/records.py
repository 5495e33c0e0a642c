"""Shared pieces of the dataset readers: the reject record, the format error, and the
checked loading of one image file / one JSON document.

Readers are generators that yield either a row ``dict`` or a :class:`Reject`, so a
caller can stream 100k images and still account for every input record:
rows out + rejects = records in.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any, Iterable, Mapping

from ..images import DEFAULT_MAX_IMAGE_BYTES, DEFAULT_MAX_PIXELS, BadImageError, probe_image, read_image_bytes, sha256_bytes
from ..safe_json import JsonInputError, load_json_file
from ..paths import UnsafePathError, UnusablePathError, file_kind, safe_join
from ..rejects import REJECT_COLUMNS, Reject, split_rows

__all__ = [
    "Reject",
    "DatasetFormatError",
    "REJECT_COLUMNS",
    "IMAGE_ROW_KEYS",
    "load_json_document",
    "require_keys",
    "read_image_file",
    "split_rows",
    "is_int",
    "is_int64",
    "is_number",
    "finite_number",
    "int_problem",
    "box_problem",
    "size_problem",
    "dedupe_by_id",
    "check_category_table",
    "mapping_size",
]

IMAGE_ROW_KEYS = ("dataset", "split", "image_id", "file_name", "width", "height", "format", "sha256", "image_bytes")
SUPPORTED_IMAGE_FORMATS = ("jpeg", "png")
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1  # ids land in int64 table columns
INT32_MAX = 2**31 - 1  # image sizes land in int32 columns


class DatasetFormatError(ValueError):
    """A whole input (annotation file, refs pickle) is missing or malformed."""


def load_json_document(path: str | os.PathLike, required_top_level: Iterable[str] = ()) -> dict:
    """``json.load`` a dataset file; any problem becomes a DatasetFormatError naming the file."""
    path = Path(path)
    if not path.exists():
        raise DatasetFormatError(f"{path}: annotation file does not exist")
    if not path.is_file():
        raise DatasetFormatError(f"{path}: is not a regular file")
    try:
        doc = load_json_file(path)
    except JsonInputError as exc:  # malformed, not UTF-8, nested too deep, a 5000-digit number
        raise DatasetFormatError(str(exc)) from exc
    except OSError as exc:
        raise DatasetFormatError(f"{path}: cannot read: {exc}") from exc
    if not isinstance(doc, dict):
        raise DatasetFormatError(f"{path}: top level must be a JSON object, got {type(doc).__name__}")
    missing = [k for k in required_top_level if k not in doc]
    if missing:
        raise DatasetFormatError(f"{path}: missing top-level key(s) {missing}; found {sorted(doc)[:10]}")
    for key in required_top_level:
        if not isinstance(doc[key], list):
            raise DatasetFormatError(f"{path}: top-level {key!r} must be a list, got {type(doc[key]).__name__}")
    return doc


def require_keys(record: Any, keys: Iterable[str]) -> str | None:
    """None if ``record`` is a dict holding every key, else the reason it is not."""
    if not isinstance(record, dict):
        return f"record is a {type(record).__name__}, not an object"
    missing = [k for k in keys if k not in record]
    if missing:
        return f"missing key(s) {missing}"
    return None


def is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def is_int64(value: Any) -> bool:
    """An integer (not bool) that fits a signed 64-bit table column."""
    return is_int(value) and INT64_MIN <= value <= INT64_MAX


def is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def finite_number(value: Any) -> float | None:
    """``value`` as a finite float, or None (not a number, NaN, +-inf, an int too big for a float)."""
    if not is_number(value):
        return None
    try:
        out = float(value)
    except OverflowError:
        return None
    return out if math.isfinite(out) else None


def int_problem(name: str, value: Any) -> str | None:
    """None for an int64 id, else why ``name`` is not one."""
    if not is_int(value):
        return f"{name} {value!r} is not an integer"
    if not is_int64(value):
        return f"{name} {value} is outside the signed 64-bit range"
    return None


def read_image_file(
    image_root: str | os.PathLike,
    relative: str,
    *,
    dataset: str,
    stage: str,
    record_id: str,
    expected_size: tuple[int, int] | None = None,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    max_bytes: int = DEFAULT_MAX_IMAGE_BYTES,
) -> dict | Reject:
    """Read and fully verify one image under ``image_root``.

    Returns the image-row fields (file_name, width, height, format, sha256, image_bytes)
    or a Reject for an escaping path (or a symlink loop), a missing/unreadable file, a
    file over ``max_bytes`` (refused before it is read), bad bytes, an unsupported
    format or (with ``expected_size`` = (w, h)) a size that disagrees with the
    annotation file.
    """
    root_str = str(image_root)
    shown = str(Path(root_str) / relative) if isinstance(relative, str) else repr(relative)

    def reject(reason: str) -> Reject:
        return Reject(dataset=dataset, stage=stage, file=shown, record_id=record_id, reason=reason)

    if not isinstance(relative, str):
        return reject(f"image path is {type(relative).__name__}, not a string")
    try:
        path = safe_join(image_root, relative)
    except UnsafePathError as exc:
        return reject(f"path escapes image root: {exc.why}")
    except UnusablePathError as exc:  # e.g. a symlink loop: this record only, not the whole run
        return reject(f"unusable image path: {exc.why}")
    try:
        kind = file_kind(path)
    except UnusablePathError as exc:
        return reject(f"unusable image path: {exc.why}")
    if kind == "missing":
        return reject("missing image file")
    if kind != "file":
        return reject("image path is not a regular file")
    try:
        data = read_image_bytes(path, max_bytes=max_bytes)
    except BadImageError as exc:
        return reject(f"bad image: {exc}")
    except OSError as exc:
        return reject(f"unreadable image file: {exc.strerror or exc}")
    try:
        info = probe_image(data, max_pixels=max_pixels)
    except BadImageError as exc:
        return reject(f"bad image: {exc}")
    if info.format not in SUPPORTED_IMAGE_FORMATS:
        return reject(f"unsupported image format {info.format!r} (expected jpeg or png)")
    if expected_size is not None and (info.width, info.height) != tuple(expected_size):
        return reject(
            f"image is {info.width}x{info.height} but the annotation says {expected_size[0]}x{expected_size[1]}"
        )
    return {
        "file_name": Path(relative).as_posix(),
        "width": info.width,
        "height": info.height,
        "format": info.format,
        "sha256": sha256_bytes(data),
        "image_bytes": data,
    }


def box_problem(
    bbox: Any, image_width: int, image_height: int, tolerance: float = 1.0
) -> str | None:
    """None for a usable [x, y, w, h] box inside the image (within ``tolerance`` px)."""
    if not isinstance(bbox, (list, tuple)) or len(bbox) != 4 or not all(is_number(v) for v in bbox):
        return f"bbox {bbox!r} is not [x, y, w, h] numbers"
    values = [finite_number(v) for v in bbox]
    if any(v is None for v in values):
        return f"bbox {bbox!r} has non-finite values"
    x, y, w, h = values
    if w <= 0 or h <= 0:
        return f"non-positive box size w={w:g} h={h:g}"
    if x < -tolerance or y < -tolerance or x + w > image_width + tolerance or y + h > image_height + tolerance:
        return f"box [{x:g}, {y:g}, {w:g}, {h:g}] outside the {image_width}x{image_height} image"
    return None


def size_problem(width: Any, height: Any) -> str | None:
    """None for positive integer image sizes, else the reason."""
    if not is_int(width) or not is_int(height):
        return f"width/height {width!r}x{height!r} are not integers"
    if width <= 0 or height <= 0:
        return f"non-positive width/height {width}x{height}"
    if width > INT32_MAX or height > INT32_MAX:
        return f"width/height {width}x{height} too large"
    return None


def dedupe_by_id(
    records: list,
    *,
    dataset: str,
    stage: str,
    file: str,
    kind: str,
    required: Iterable[str],
    int_fields: Iterable[str] = (),
) -> tuple[list[dict], list[Reject]]:
    """Keep the first record of each id; reject later duplicates and malformed records.

    Records must be dicts with ``required`` keys and an integer ``id`` (and integer
    ``int_fields``: ids that pycocotools will use as dict keys), all within int64:
    they end up in int64 table columns.
    """
    int_fields = tuple(int_fields)
    required = tuple(required)
    seen: set[int] = set()
    kept: list[dict] = []
    rejects: list[Reject] = []
    for pos, rec in enumerate(records):
        problem = require_keys(rec, required)
        rid = rec.get("id") if isinstance(rec, dict) else None
        record_id = str(rid) if rid is not None else f"#{pos}"
        if problem is None:
            problem = int_problem(f"{kind} id", rid)
        if problem is None:
            problem = next((p for f in int_fields if (p := int_problem(f, rec[f])) is not None), None)
        if problem is not None:
            rejects.append(Reject(dataset, stage, file, record_id, f"malformed {kind} record: {problem}"))
            continue
        if rid in seen:
            rejects.append(Reject(dataset, stage, file, record_id, f"duplicate {kind} id {rid} (first kept)"))
            continue
        seen.add(rid)
        kept.append(rec)
    return kept, rejects


def check_category_table(categories: list, path: str | os.PathLike, required: Iterable[str]) -> dict[int, dict]:
    """Categories are the label schema: any bad entry fails the whole file.

    Every required field but ``id`` is text (``name``, ``synset``, ``frequency``) that
    lands in string table columns: a number or null there fails here, naming the field,
    instead of as an anonymous Arrow type error when the table is written.
    """
    required = tuple(required)
    out: dict[int, dict] = {}
    for pos, cat in enumerate(categories):
        problem = require_keys(cat, required)
        if problem is None:
            problem = int_problem("id", cat["id"])
        if problem is None:
            problem = next(
                (f"field {k!r} is {type(cat[k]).__name__} {repr(cat[k])[:60]}, not a string"
                 for k in required if k != "id" and not isinstance(cat[k], str)),
                None,
            )
        if problem is not None:
            raise DatasetFormatError(f"{path}: categories[{pos}]: {problem}")
        if cat["id"] in out:
            raise DatasetFormatError(f"{path}: categories[{pos}]: duplicate category id {cat['id']}")
        out[cat["id"]] = cat
    return out


def mapping_size(sizes: Mapping | None, image_id: Any) -> tuple[int, int] | None:
    """Look ``image_id`` up in an image-size mapping keyed by str or int ids."""
    if sizes is None:
        return None
    for key in (str(image_id), image_id):
        if key in sizes:
            w, h = sizes[key]
            return int(w), int(h)
    return None
