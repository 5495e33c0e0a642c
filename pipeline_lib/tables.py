"""Parquet tables as the pipeline stores them: streamed, hashed, atomically committed, lazily read.

No Dagster here: the IO manager and the assets both use these pieces, and tests use them
directly. Paths are ``upath.UPath`` so the same code runs on local disk and on any fsspec
filesystem (object storage, or the in-memory filesystem in tests).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import uuid
from dataclasses import dataclass, field
from typing import Any, Iterable, Iterator, Mapping, Sequence

import pyarrow as pa
import pyarrow.parquet as pq
from upath import UPath

LINEAGE_KEY = b"perception_tokens.lineage"
DEFAULT_ROW_GROUP_ROWS = 256  # image tables hold encoded bytes: small groups keep reads streaming


def as_upath(path: str | UPath, **storage_options: Any) -> UPath:
    return path if isinstance(path, UPath) else UPath(str(path), **storage_options)


def _atomic_rename(src: UPath, dst: UPath) -> None:
    """Rename within one filesystem; on local disk this is os.replace (atomic on POSIX)."""
    if src.protocol in ("", "file", "local"):
        import os

        os.replace(src.path, dst.path)
    else:  # object stores have no rename: fsspec's mv is copy+delete, the best they offer
        src.fs.mv(src.path, dst.path)


@dataclass
class StagedTable:
    """A Parquet file fully written under a temporary name, waiting to be committed."""

    staging_path: UPath
    num_rows: int
    content_hash: str
    schema: pa.Schema
    lineage: dict[str, Any] = field(default_factory=dict)
    # set once committed: a history append commits inside its asset, under the table's append
    # lock, and the IO manager's commit of the same table is then a no-op (pipeline_lib/history.py)
    committed_to: str | None = None

    def commit(self, final_path: UPath) -> UPath:
        """Move the staged file under its final name; if that fails (no permission, disk
        gone) the staged file is deleted, so only the previous version remains."""
        if self.committed_to is not None:
            if self.committed_to != str(final_path):
                raise ValueError(f"staged table already committed to {self.committed_to}, not {final_path}")
            return final_path
        try:
            final_path.parent.mkdir(parents=True, exist_ok=True)
            _atomic_rename(self.staging_path, final_path)
            self.committed_to = str(final_path)
        except BaseException:
            with contextlib.suppress(OSError):  # the commit error is the one to report
                self.discard()
            raise
        return final_path

    def discard(self) -> None:
        try:
            self.staging_path.unlink()
        except FileNotFoundError:
            pass


class TableWriter:
    """Streams record batches into a Parquet file under a temporary name.

    The content hash is computed over the Arrow IPC bytes of the data (not the file, which
    also carries run ids in its metadata), so the same rows give the same data version.
    Use as a context manager: an exception deletes the partial file.
    """

    def __init__(
        self,
        directory: UPath,
        schema: pa.Schema,
        lineage: Mapping[str, Any] | None = None,
        *,
        row_group_rows: int = DEFAULT_ROW_GROUP_ROWS,
        compression: str = "zstd",
    ) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.path = directory / f".staging-{uuid.uuid4().hex}.parquet"
        self.lineage = dict(lineage or {})
        self.schema = schema.with_metadata({**(schema.metadata or {}), LINEAGE_KEY: _dumps(self.lineage)})
        self.row_group_rows = row_group_rows
        self._hash = hashlib.sha256()
        self._hash.update(_schema_fingerprint(schema))
        self._rows = 0
        self._pending: list[pa.RecordBatch] = []
        self._pending_rows = 0
        self._file = self.path.open("wb")
        self._writer = pq.ParquetWriter(self._file, self.schema, compression=compression)

    def write_rows(self, rows: Sequence[Mapping[str, Any]]) -> None:
        if rows:
            self.write_batch(pa.RecordBatch.from_pylist(list(rows), schema=self.schema))

    def write_batch(self, batch: pa.RecordBatch | pa.Table) -> None:
        batches = batch.to_batches() if isinstance(batch, pa.Table) else [batch]
        for b in batches:
            if not b.schema.equals(self.schema, check_metadata=False):
                b = pa.RecordBatch.from_arrays([b.column(n).cast(self.schema.field(n).type) for n in self.schema.names], schema=self.schema)
            self._hash.update(_batch_bytes(b))
            self._pending.append(b)
            self._pending_rows += b.num_rows
            self._rows += b.num_rows
            if self._pending_rows >= self.row_group_rows:
                self._flush()

    def _flush(self) -> None:
        if self._pending:
            with _naming_file(self.path):
                self._writer.write_table(pa.Table.from_batches(self._pending, schema=self.schema), row_group_size=self.row_group_rows)
            self._pending, self._pending_rows = [], 0

    def close(self) -> StagedTable:
        self._flush()
        with _naming_file(self.path):
            self._writer.close()
            self._file.close()
        return StagedTable(self.path, self._rows, self._hash.hexdigest()[:24], self.schema, self.lineage)

    def abort(self) -> None:
        """Delete the partial file. Errors while closing it are ignored: the write already
        failed (often with the same error, e.g. a full disk) and that is the one to report."""
        for close in (self._writer.close, self._file.close):
            with contextlib.suppress(Exception):
                close()
        try:
            self.path.unlink()
        except FileNotFoundError:
            pass

    def __enter__(self) -> "TableWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None:
            self.abort()


def stage_table(
    directory: UPath,
    schema: pa.Schema,
    rows_or_batches: Iterable[Mapping[str, Any]] | Iterable[pa.RecordBatch] | pa.Table,
    lineage: Mapping[str, Any] | None = None,
    *,
    batch_rows: int = DEFAULT_ROW_GROUP_ROWS,
) -> StagedTable:
    """Write rows (dicts), record batches or a table to a staged file and return it."""
    with TableWriter(directory, schema, lineage, row_group_rows=batch_rows) as writer:
        if isinstance(rows_or_batches, pa.Table):
            writer.write_batch(rows_or_batches)
        else:
            buffer: list[Mapping[str, Any]] = []
            for item in rows_or_batches:
                if isinstance(item, (pa.RecordBatch, pa.Table)):
                    writer.write_batch(item)
                    continue
                buffer.append(item)
                if len(buffer) >= batch_rows:
                    writer.write_rows(buffer)
                    buffer = []
            writer.write_rows(buffer)
        return writer.close()


def write_table_atomic(path: UPath, table: pa.Table, lineage: Mapping[str, Any] | None = None) -> StagedTable:
    staged = stage_table(path.parent, table.schema, table, lineage)
    staged.commit(path)
    return staged


class TableHandle:
    """A lazy view of one or more Parquet files (the partitions of one asset).

    Nothing is read until asked; ``iter_batches`` streams row groups so a stage over 100k
    images holds one batch at a time.
    """

    def __init__(self, paths: Sequence[UPath]):
        self.paths = [p for p in paths]

    def __repr__(self) -> str:
        return f"TableHandle({len(self.paths)} file(s))"

    def _files(self) -> Iterator[pq.ParquetFile]:
        for p in self.paths:
            with p.open("rb") as f:
                yield pq.ParquetFile(f)

    @property
    def schema(self) -> pa.Schema:
        if not self.paths:
            return pa.schema([])
        with self.paths[0].open("rb") as f:
            return pq.ParquetFile(f).schema_arrow

    @property
    def num_rows(self) -> int:
        return sum(pf.metadata.num_rows for pf in self._files())

    def lineage(self) -> list[dict[str, Any]]:
        return [read_lineage(p) for p in self.paths]

    def iter_batches(self, columns: Sequence[str] | None = None, batch_size: int = DEFAULT_ROW_GROUP_ROWS) -> Iterator[pa.RecordBatch]:
        for pf in self._files():
            yield from pf.iter_batches(batch_size=batch_size, columns=list(columns) if columns else None)

    def iter_rows(self, columns: Sequence[str] | None = None, batch_size: int = DEFAULT_ROW_GROUP_ROWS) -> Iterator[dict[str, Any]]:
        for batch in self.iter_batches(columns, batch_size):
            yield from batch.to_pylist()

    def read(self, columns: Sequence[str] | None = None) -> pa.Table:
        """Read fully: only for small tables or a few columns."""
        tables = [pf.read(columns=list(columns) if columns else None) for pf in self._files()]
        if not tables:
            return pa.table({})
        return pa.concat_tables(tables, promote_options="default")


def read_lineage(path: UPath) -> dict[str, Any]:
    with path.open("rb") as f:
        meta = pq.ParquetFile(f).schema_arrow.metadata or {}
    raw = meta.get(LINEAGE_KEY)
    return json.loads(raw) if raw else {}


@contextlib.contextmanager
def _naming_file(path: UPath) -> Iterator[None]:
    """Python reports a failed write (ENOSPC, EDQUOT, EIO) without the file's name; add it,
    keeping the errno (and so the OSError subclass) for callers that check it. ``from None``:
    the runner and the UI show a failure's innermost cause, which must be the named one."""
    try:
        yield
    except OSError as exc:
        if exc.filename is not None:
            raise
        if exc.errno is not None:
            raise OSError(exc.errno, exc.strerror or str(exc), str(path)) from None
        raise OSError(f"{path}: {exc}") from None


def _dumps(obj: Any) -> bytes:
    return json.dumps(obj, sort_keys=True, default=str).encode()


def _schema_fingerprint(schema: pa.Schema) -> bytes:
    return ";".join(f"{f.name}:{f.type}" for f in schema).encode()


def _batch_bytes(batch: pa.RecordBatch) -> bytes:
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, batch.schema.remove_metadata()) as w:
        w.write_batch(batch)
    return sink.getvalue().to_pybytes()
