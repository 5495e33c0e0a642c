"""Materialization metadata: row counts, schema, a preview, pictures embedded as markdown."""

from __future__ import annotations

import base64
from typing import Any, Sequence

import dagster as dg
import pyarrow as pa

from perception_tokens.column_docs import column_description
from pipeline_lib.tables import TableHandle

PREVIEW_ROWS = 5


def _cell(value: Any) -> str:
    if isinstance(value, (bytes, bytearray)):
        return f"<{len(value)} bytes>"
    text = str(value)
    text = text if len(text) <= 60 else text[:57] + "..."
    return text.replace("|", "\\|").replace("\n", " ")


def preview_markdown(table: pa.Table) -> str:
    cols = table.column_names
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for row in table.to_pylist():
        lines.append("| " + " | ".join(_cell(row[c]) for c in cols) + " |")
    return "\n".join(lines)


def table_metadata(handle: TableHandle) -> dict[str, Any]:
    schema = handle.schema
    first = next(handle.iter_batches(batch_size=PREVIEW_ROWS), None)
    preview = pa.Table.from_batches([first.slice(0, PREVIEW_ROWS)]) if first is not None else schema.empty_table()
    return {
        "dagster/row_count": dg.MetadataValue.int(handle.num_rows),
        "dagster/column_schema": dg.TableSchema(
            columns=[dg.TableColumn(name=f.name, type=str(f.type), description=column_description(None, f.name)) for f in schema]
        ),
        "path": dg.MetadataValue.path(str(handle.paths[0]) if len(handle.paths) == 1 else str(handle.paths)),
        "preview": dg.MetadataValue.md(preview_markdown(preview)),
    }


def png_markdown(png: bytes, alt: str = "image", width: int | None = None) -> str:
    data = base64.b64encode(png).decode()
    size = f' width="{width}"' if width else ""
    return f'<img alt="{alt}" src="data:image/png;base64,{data}"{size}/>'


def image_grid_markdown(rows: Sequence[Sequence[tuple[str, bytes]]], width: int = 160) -> str:
    """A markdown table of pictures: each row a list of (caption, PNG bytes)."""
    if not rows:
        return "(no images)"
    n = max(len(r) for r in rows)
    out = ["| " + " | ".join(c for c, _ in rows[0]) + " |", "|" + "---|" * n]
    for r in rows:
        out.append("| " + " | ".join(png_markdown(b, c, width) for c, b in r) + " |")
    return "\n".join(out)
