"""Benchmark rows, reject records and the small helpers every reader shares.

A benchmark row is a plain dict with (at least) the keys in :data:`ROW_FIELDS`:

- ``benchmark``, ``subset``: e.g. ``"HardBLINK"``, ``"3points"``
- ``question_id``: always a string (ids are ints in some releases, strings in others)
- ``question``: the question as released; ``prompt``: the text to give the model
- ``choices``: list of option strings, or ``None`` when the options are implicit
- ``valid_letters``: the letters an answer may take (``[]`` for numeric answers)
- ``gold``: ``"B"`` for letter answers, ``"3"`` for numeric ones
- ``image_bytes``: the encoded image (PNG/JPEG) exactly as stored; ``image_file``: where
  it came from, relative to the benchmark root (``file.parquet#row=12/image_1`` for
  images embedded in Parquet)
- ``answer_type``: ``"letter"``, ``"number"`` or ``"mask"`` (``gold`` is then the mask as
  compressed-RLE JSON, see :mod:`evaluation.benchmarks.refcoco_res`)

Readers may add more keys (``category``, ``source``, ``task``...). A record that cannot
be read becomes a :class:`~perception_tokens.rejects.Reject` (made by :func:`reject`)
with the reason; a whole input that is unusable
(missing questions file, unreadable Parquet) raises an exception naming the file.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Iterator

from perception_tokens.safe_json import JsonInputError, open_jsonl, parse_json_line
from perception_tokens.rejects import Reject, split_rows  # noqa: F401  (split_rows: re-exported for readers' callers)
from perception_tokens.paths import UnsafePathError, UnusablePathError, file_kind, safe_join

ROW_FIELDS = (
    "benchmark",
    "subset",
    "question_id",
    "question",
    "prompt",
    "choices",
    "valid_letters",
    "gold",
    "image_bytes",
    "image_file",
    "answer_type",
)

LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"

_IMAGE_MAGIC = {
    b"\x89PNG\r\n\x1a\n": "png",
    b"\xff\xd8\xff": "jpeg",
    b"GIF87a": "gif",
    b"GIF89a": "gif",
    b"BM": "bmp",
}


# The one reject record of the project (datasets and benchmarks alike); a benchmark reject
# carries the benchmark's name as its dataset and "benchmark" as its stage.
BENCHMARK_STAGE = "benchmark"


def reject(benchmark: str, file: str, record_id: Any, reason: str) -> Reject:
    """A :class:`Reject` for one benchmark record that could not be turned into a row."""
    return Reject(benchmark, BENCHMARK_STAGE, file, str(record_id), reason)


class BenchmarkFileError(ValueError):
    """A whole benchmark input (a questions file, a Parquet file) is unusable."""


class MissingBenchmarkFile(FileNotFoundError):
    """A file a benchmark needs is not there; the message names it."""

    def __init__(self, benchmark: str, what: str, path: Path):
        super().__init__(f"{benchmark}: {what} not found: {path}")
        self.path = path


def letters(n: int) -> list[str]:
    """The first ``n`` option letters: ``letters(3) == ["A", "B", "C"]``."""
    if not 1 <= n <= len(LETTERS):
        raise ValueError(f"cannot have {n} option letters")
    return list(LETTERS[:n])


_GOLD_LETTER_RE = re.compile(r"^\s*\(?\s*([A-Za-z])\s*\)?\s*\.?\s*$")


def gold_letter(answer: Any, valid_letters: list[str]) -> str | None:
    """A released gold answer (``"(B)"``, ``"B"``) -> ``"B"``; ``None`` if it is not one of ``valid_letters``."""
    if not isinstance(answer, str):
        return None
    m = _GOLD_LETTER_RE.match(answer)
    if not m:
        return None
    letter = m.group(1).upper()
    return letter if letter in valid_letters else None


def gold_number(answer: Any) -> str | None:
    """A released numeric gold answer (``3``, ``"3"``, ``" 3 "``) -> ``"3"``; ``None`` if not a whole number >= 0."""
    if isinstance(answer, bool):
        return None
    if isinstance(answer, int):
        return str(answer) if answer >= 0 else None
    if isinstance(answer, float):
        return str(int(answer)) if answer.is_integer() and answer >= 0 else None
    if isinstance(answer, str) and re.fullmatch(r"\s*\d+\s*", answer):
        return str(int(answer))
    return None


def image_format(data: bytes) -> str | None:
    """``"png"``/``"jpeg"``/... from the magic bytes, ``None`` if not a known image."""
    for magic, name in _IMAGE_MAGIC.items():
        if data.startswith(magic):
            return name
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    return None


def read_image_file(root: Path, relative: Any) -> bytes | str:
    """Read an image named by a data file, confined to ``root``.

    Returns the bytes, or a string saying why it could not be read (for a Reject).
    """
    from perception_tokens.images import BadImageError, read_image_bytes  # (numpy, PIL): only when reading

    if not isinstance(relative, str) or not relative.strip():
        return f"image name is {relative!r}, not a file name"
    try:
        path = safe_join(root, relative)
        kind = file_kind(path)
    except UnsafePathError as exc:
        return f"unsafe image path: {exc.why} ({relative!r})"
    except UnusablePathError as exc:  # a name over 255 bytes, a symlink loop: one bad record, not a failed run
        return f"unusable image path: {exc.why} ({relative!r})"
    if kind == "missing":
        return f"missing image {relative!r}"
    if kind != "file":
        return f"image {relative!r} is not a regular file"
    try:
        data = read_image_bytes(path)  # size checked before the read
    except BadImageError as exc:
        return f"cannot read image {relative!r}: {exc}"
    except OSError as exc:
        return f"cannot read image {relative!r}: {exc.strerror or exc}"
    if image_format(data) is None:
        return f"image {relative!r} is not a PNG/JPEG (or other known) image"
    return data


def image_from_struct(value: Any, root: Path, where: str) -> bytes | str:
    """Hugging Face's image struct ``{"bytes", "path"}`` -> bytes, or a reason string.

    Embedded bytes are preferred; a struct with only a ``path`` is read from disk under
    ``root`` (never outside it). ``where`` names the cell for messages.
    """
    if value is None:
        return f"missing image ({where} is null)"
    if isinstance(value, (bytes, bytearray)):
        data = bytes(value)
    elif isinstance(value, dict):
        data = value.get("bytes")
        if data is None:
            path = value.get("path")
            if not path:
                return f"missing image ({where} has neither bytes nor path)"
            return read_image_file(root, path)
        data = bytes(data)
    else:
        return f"{where} is a {type(value).__name__}, not an image struct"
    if not data:
        return f"missing image ({where} has empty bytes)"
    if image_format(data) is None:
        return f"{where} does not hold a PNG/JPEG (or other known) image"
    return data


def iter_jsonl(path: Path, benchmark: str, display: str) -> Iterator[tuple[int, dict] | Reject]:
    """``(line_number, object)`` per non-blank line; a malformed line becomes a Reject.

    ``display`` is the file name relative to the benchmark root, used in rejects.
    """
    try:
        fh = open_jsonl(path)  # a UTF-8 BOM is skipped; UTF-16 is an error naming the file
    except JsonInputError as exc:
        raise BenchmarkFileError(f"{benchmark}: {exc}") from None
    with fh:
        for line_no, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                obj = parse_json_line(line, display, line_no)
            except JsonInputError as exc:  # malformed, nested too deep, a 5000-digit number: this line only
                yield reject(benchmark, display, f"line {line_no}", f"malformed JSON line: {exc.problem}")
                continue
            if not isinstance(obj, dict):
                yield reject(benchmark, display, f"line {line_no}", f"JSON line is a {type(obj).__name__}, not an object")
                continue
            yield line_no, obj


def record_id(obj: dict, key: str, line_no: int) -> str | None:
    """The record's id as a string, or ``None`` if missing/unusable."""
    value = obj.get(key)
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (int, str)) and str(value).strip():
        return str(value).strip()
    return None


def format_choices_prompt(question: str, choices: list[str]) -> str:
    """BLINK/CV-Bench style prompt: question, then ``(A) ...`` lines."""
    lines = [question.rstrip(), "Select from the following choices."]
    lines += [f"({letter}) {choice}" for letter, choice in zip(LETTERS, choices)]
    return "\n".join(lines)


# ---------------------------------------------------------------------------- questions + answers jsonl


def read_answers_jsonl(path: Path, benchmark: str, display: str) -> tuple[dict[str, Any], list[Reject]]:
    """``question_id -> answer text`` from an answers jsonl (LLaVA layout), with rejects for
    lines without a usable id and for duplicate answers."""
    answers: dict[str, Any] = {}
    rejects: list[Reject] = []
    for item in iter_jsonl(path, benchmark, display):
        if isinstance(item, Reject):
            rejects.append(item)
            continue
        line_no, obj = item
        qid = record_id(obj, "question_id", line_no)
        if qid is None:
            rejects.append(reject(benchmark, display, f"line {line_no}", "answer without a usable question_id"))
        elif qid in answers:
            rejects.append(reject(benchmark, display, qid, "duplicate answer for this question_id"))
        else:
            answers[qid] = obj.get("text", obj.get("answer"))
    return answers, rejects


def iter_questions(path: Path, benchmark: str, display: str, seen: set[str] | None = None
                   ) -> Iterator[Reject | tuple[str, dict]]:
    """``(question_id, record)`` per line of a questions jsonl, or a Reject for a line without a
    usable ``question_id`` or with one seen before (``seen`` collects the ids)."""
    seen = set() if seen is None else seen
    for item in iter_jsonl(path, benchmark, display):
        if isinstance(item, Reject):
            yield item
            continue
        line_no, obj = item
        qid = record_id(obj, "question_id", line_no)
        if qid is None:
            yield reject(benchmark, display, f"line {line_no}", "question without a usable question_id")
            continue
        if qid in seen:
            yield reject(benchmark, display, qid, "duplicate question_id")
            continue
        seen.add(qid)
        yield qid, obj


def iter_answered_questions(
    path: Path, benchmark: str, display: str, answers: dict[str, Any], answers_display: str
) -> Iterator[Reject | tuple[str, dict, str, Any]]:
    """Questions of a questions jsonl that have an id, text and an answer: yields
    ``(question_id, record, text, answer)`` or a Reject; afterwards, one Reject per answer
    whose question never appeared (reported, not silently dropped)."""
    seen: set[str] = set()
    for item in iter_questions(path, benchmark, display, seen):
        if isinstance(item, Reject):
            yield item
            continue
        qid, obj = item
        text = obj.get("text")
        if not isinstance(text, str) or not text.strip():
            yield reject(benchmark, display, qid, "question without text")
            continue
        if qid not in answers:
            yield reject(benchmark, display, qid, "question without answer")
            continue
        yield qid, obj, text, answers[qid]
    for qid in sorted(answers.keys() - seen):
        yield reject(benchmark, answers_display, qid, "answer without question")
