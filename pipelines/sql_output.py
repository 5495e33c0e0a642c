"""How ``ptok sql`` shows and saves a result: a table on a terminal, CSV when piped, JSON or
markdown on request; ``--out FILE`` writes CSV, JSON or Parquet. Only the terminal table
shortens long values; CSV, JSON, markdown and files carry every value whole."""

from __future__ import annotations

import base64
import csv
import datetime as dt
import decimal
import io
import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any, Sequence

FORMATS = ("table", "csv", "json", "markdown")
OUT_SUFFIXES = (".csv", ".json", ".parquet")


def default_format(stream) -> str:
    """``table`` for a person at a terminal, ``csv`` for a pipe or a file."""
    return "table" if hasattr(stream, "isatty") and stream.isatty() else "csv"


def _plain(v: Any) -> Any:
    """A JSON-ready value: bytes as base64, times as ISO 8601, decimals as numbers, NaN as null."""
    if isinstance(v, (bytes, bytearray, memoryview)):
        return base64.b64encode(bytes(v)).decode("ascii")
    if isinstance(v, (dt.datetime, dt.date, dt.time)):
        return v.isoformat()
    if isinstance(v, dt.timedelta):
        return v.total_seconds()
    if isinstance(v, decimal.Decimal):
        return float(v) if v != v.to_integral_value() else int(v)
    if isinstance(v, float) and (math.isnan(v) or math.isinf(v)):
        return None
    if isinstance(v, dict):
        return {str(k): _plain(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    if hasattr(v, "hex") and type(v).__name__ == "UUID":
        return str(v)
    return v


def _cell(v: Any) -> str:
    """A CSV / markdown cell: nested values as JSON, None as empty, nothing shortened."""
    v = _plain(v)
    if v is None:
        return ""
    if isinstance(v, (dict, list)):
        return json.dumps(v, ensure_ascii=False)
    return str(v)


def render(columns: Sequence[str], rows: Sequence[Sequence[Any]], fmt: str) -> str:
    """The result as text in ``csv``, ``json`` (an array of objects) or ``markdown``."""
    if fmt == "csv":
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(columns)
        w.writerows([[_cell(v) for v in r] for r in rows])
        return buf.getvalue()
    if fmt == "json":
        return json.dumps([{c: _plain(v) for c, v in zip(columns, r)} for r in rows], ensure_ascii=False, indent=1) + "\n"
    if fmt == "markdown":
        def esc(s: str) -> str:
            return s.replace("\\", "\\\\").replace("|", "\\|").replace("\n", "<br>")

        lines = ["| " + " | ".join(esc(str(c)) for c in columns) + " |", "|" + "|".join(" --- " for _ in columns) + "|"]
        lines += ["| " + " | ".join(esc(_cell(v)) for v in r) + " |" for r in rows]
        return "\n".join(lines) + "\n"
    raise ValueError(f"unknown format {fmt!r}; expected one of {FORMATS}")


def check_out_path(path: Path, protected_dirs: Sequence[str], force: bool = False) -> None:
    """Refuse an ``--out`` file under the pipeline's folders (it could replace a table or the
    catalog) and, without ``force``, one that exists already."""
    target = path.resolve()
    for d in protected_dirs:
        if "://" in str(d):
            continue
        folder = Path(d).resolve()
        if target == folder or folder in target.parents:
            raise ValueError(f"--out {path}: inside {d}, where the pipeline's tables and catalog live; write elsewhere")
    if path.exists() and not force:
        raise FileExistsError(f"--out {path}: the file exists; pass --force to replace it")


def write_out(path: Path, columns: Sequence[str], rows: Sequence[Sequence[Any]], arrow_table=None) -> Path:
    """Write the result to ``path`` by its suffix (.csv, .json, .parquet): a temporary name in
    the same folder, then one rename, so a failed write leaves no half file."""
    suffix = path.suffix.lower()
    if suffix not in OUT_SUFFIXES:
        raise ValueError(f"--out {path}: unknown file type {suffix or '(none)'!r}; use one of {OUT_SUFFIXES}")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        if suffix == ".parquet":
            import pyarrow.parquet as pq

            os.close(fd)
            pq.write_table(arrow_table, tmp)
        else:
            with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
                fh.write(render(columns, rows, suffix[1:]))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
