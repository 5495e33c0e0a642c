"""JSON and JSON-lines parsing whose every failure names the file and the line.

``json.loads`` fails in three ways that say nothing about where: malformed text (a
``JSONDecodeError``, which does carry a position), nesting deeper than the parser's
recursion allows (``RecursionError``) and an integer longer than Python's
int-to-string limit of 4300 digits (``ValueError``). Here all three become a
:class:`JsonInputError` naming the source and the line; for the last two the line is
found by a second, linear scan of the text, done only after a failure.

Dataset readers call :func:`load_json_file` for one document (an LVIS or COCO json);
benchmark and answer readers call :func:`parse_json_line` per line so one bad line is
one reject, not an aborted read.
"""

from __future__ import annotations

import codecs
import json
import os
import re
import sys
from pathlib import Path
from typing import IO, Any

__all__ = ["JsonInputError", "MAX_REPORTED_DEPTH", "load_json_file", "loads_checked", "open_jsonl", "parse_json_line"]

# Where to point when the parser ran out of recursion: the first place nesting passes this.
# Real annotation files nest 5 deep (LVIS segmentation polygons); 100 is far past any of them.
MAX_REPORTED_DEPTH = 100

# A JSON string (skipped whole, so digits and brackets inside text are not counted), or
# one of the tokens the scans look for.
_STRING = r'"(?:[^"\\]|\\.)*"'
_BRACKETS = re.compile(_STRING + r"|([\[\]{}])")


class JsonInputError(ValueError):
    """A JSON document or line that cannot be parsed; says which source, line and why.

    ``problem`` is the reason without the place (for a reject row that names the file
    and line in its own columns); ``str()`` is the full message.
    """

    def __init__(self, source: str, problem: str, line: int | None = None, message: str | None = None):
        where = f"{source}: line {line}" if line is not None else source
        super().__init__(message or f"{where}: {problem}")
        self.source = source
        self.problem = problem
        self.line = line


def _as_text(data: str | bytes) -> str:
    return data if isinstance(data, str) else data.decode("utf-8", errors="replace")


def _line_of(text: str, pos: int) -> int:
    return text.count("\n", 0, pos) + 1


def _locate_deep_nesting(text: str, limit: int = MAX_REPORTED_DEPTH) -> int | None:
    """Position where brackets outside strings first nest deeper than ``limit``, if anywhere."""
    depth = 0
    for m in _BRACKETS.finditer(text):
        token = m.group(1)
        if token in ("[", "{"):
            depth += 1
            if depth > limit:
                return m.start()
        elif token:
            depth -= 1
    return None


def _locate_long_integer(text: str, max_digits: int) -> tuple[int, int] | None:
    """(position, digit count) of the first number outside strings longer than ``max_digits``."""
    pattern = re.compile(_STRING + r"|-?(\d{%d,})" % (max_digits + 1))
    for m in pattern.finditer(text):
        if m.group(1):
            return m.start(1), len(m.group(1))
    return None


def loads_checked(data: str | bytes, source: str, *, first_line: int = 1) -> Any:
    """``json.loads(data)``; any failure is a JsonInputError naming ``source`` and the line.

    ``first_line`` is the line number of ``data``'s first line in its file (for JSONL).
    Bytes are decoded as ``json.loads`` does (UTF-8/16/32 detected from the first bytes);
    bytes that are not valid text raise JsonInputError "not UTF-8 text".
    """
    offset = first_line - 1
    try:
        return json.loads(data)
    except json.JSONDecodeError as exc:
        line = exc.lineno + offset
        raise JsonInputError(
            source, exc.msg, line,
            message=f"{source}: malformed JSON at line {line} column {exc.colno}: {exc.msg}",
        ) from None
    except UnicodeDecodeError as exc:
        raise JsonInputError(source, f"not UTF-8 text ({exc})") from None
    except RecursionError:
        text = _as_text(data)
        pos = _locate_deep_nesting(text)
        line = _line_of(text, pos) + offset if pos is not None else None
        depth = f"past {MAX_REPORTED_DEPTH} levels" if pos is not None else "too deep for the parser"
        raise JsonInputError(source, f"arrays/objects nested {depth}", line) from None
    except ValueError as exc:  # int() refused a number past sys.get_int_max_str_digits()
        text = _as_text(data)
        limit = sys.get_int_max_str_digits() or 4300
        found = _locate_long_integer(text, limit)
        if found is None:
            raise JsonInputError(source, f"unreadable JSON: {exc}") from None
        pos, digits = found
        raise JsonInputError(
            source, f"integer of {digits} digits (more than {limit} cannot be read)", _line_of(text, pos) + offset
        ) from None


def load_json_file(path: str | os.PathLike) -> Any:
    """Parse the JSON file ``path``; failures are JsonInputError naming the file and line.

    ``FileNotFoundError`` / ``OSError`` from opening or reading pass through unchanged,
    so callers keep their own wording for a missing file.
    """
    path = Path(path)
    with path.open("rb") as fh:
        data = fh.read()
    return loads_checked(data, str(path))


def parse_json_line(line: str | bytes, source: str, line_no: int) -> Any:
    """One line of a JSONL file; failures are JsonInputError with ``line = line_no``."""
    return loads_checked(line, source, first_line=line_no)


# BOMs of encodings that are not UTF-8 (UTF-32 first: its LE mark starts with UTF-16's)
_OTHER_BOMS = ((codecs.BOM_UTF32_LE, "UTF-32-LE"), (codecs.BOM_UTF32_BE, "UTF-32-BE"),
               (codecs.BOM_UTF16_LE, "UTF-16-LE"), (codecs.BOM_UTF16_BE, "UTF-16-BE"))


def open_jsonl(path: str | os.PathLike) -> IO[str]:
    """Open a JSON-lines file as UTF-8 text, skipping a leading UTF-8 byte order mark (Windows
    editors and PowerShell write one; without this the first line fails to parse).

    A UTF-16 or UTF-32 file (a BOM of its own, or NUL bytes at the start) raises
    :class:`JsonInputError` naming the file and the encoding: read as UTF-8 it would turn
    into one reject per line and hide the real cause.
    """
    path = Path(path)
    if path.exists() and not path.is_file():  # a FIFO would block the open; a folder cannot be read
        raise JsonInputError(str(path), "not a regular file")
    with path.open("rb") as fh:
        head = fh.read(4)
    for bom, name in _OTHER_BOMS:
        if head.startswith(bom):
            raise JsonInputError(str(path), f"the file is {name} encoded (byte order mark {bom.hex(' ')}); save it as UTF-8")
    if b"\x00" in head:
        raise JsonInputError(str(path), "the file starts with NUL bytes (UTF-16/32 without a byte order mark, "
                             "or not text); save it as UTF-8")
    return path.open("r", encoding="utf-8-sig", errors="replace")
