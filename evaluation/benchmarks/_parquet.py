"""Reading Hugging Face Parquet releases row by row, with clear errors for bad files."""

from __future__ import annotations

from pathlib import Path
from typing import Iterable, Iterator

from evaluation.benchmarks.records import BenchmarkFileError, MissingBenchmarkFile


def find_parquet_files(root: Path, patterns: Iterable[str], benchmark: str, what: str) -> list[Path]:
    """Sorted files matching any of ``patterns`` under ``root``; raises if there are none."""
    files = sorted({p for pattern in patterns for p in root.glob(pattern) if p.is_file()})
    if not files:
        raise MissingBenchmarkFile(benchmark, f"{what} ({' or '.join(patterns)})", root)
    return files


def iter_parquet_rows(
    path: Path, benchmark: str, required: Iterable[str], batch_size: int = 32
) -> Iterator[tuple[int, dict]]:
    """``(row_number, row_dict)`` for each row, streaming in small batches.

    A file that is not Parquet, or lacks a required column, raises BenchmarkFileError
    naming the file: a whole input that cannot be read is not a per-row problem.
    """
    import pyarrow as pa  # here, not at import: the CLI lists benchmarks without loading Arrow
    import pyarrow.parquet as pq

    try:
        pf = pq.ParquetFile(path)
    except (pa.ArrowInvalid, OSError) as exc:
        raise BenchmarkFileError(f"{benchmark}: {path} is not a readable Parquet file: {exc}") from exc
    missing = [c for c in required if c not in pf.schema_arrow.names]
    if missing:
        raise BenchmarkFileError(
            f"{benchmark}: {path} lacks column(s) {missing}; has {pf.schema_arrow.names}"
        )
    row_number = 0
    try:
        for batch in pf.iter_batches(batch_size=batch_size):
            for row in batch.to_pylist():
                yield row_number, row
                row_number += 1
    except (pa.ArrowInvalid, OSError) as exc:
        raise BenchmarkFileError(f"{benchmark}: {path} is corrupt after row {row_number}: {exc}") from exc
