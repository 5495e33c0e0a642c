"""Incremental row reuse: carry rows of a table's previous version over instead of recomputing them.

``pseudo_depth`` and ``depth_tokens`` both rewrite a partition from the last committed one
(``folders.previous_table``): rows still valid for the current inputs are kept, the others
computed, and the result is written in the inputs' order, so an incremental run writes the
same table (the same data version) as a clean one.
"""

from __future__ import annotations

from typing import Any, Callable, Iterable, Iterator, Mapping

from pipeline_lib.tables import TableHandle


def reusable_rows(previous: TableHandle | None, still_valid: Callable[[dict[str, Any]], bool],
                  id_field: str = "image_id") -> dict[str, dict[str, Any]]:
    """Rows of the previous version for which ``still_valid`` holds, by id (none without a previous version)."""
    if previous is None:
        return {}
    return {row[id_field]: row for row in previous.iter_rows() if still_valid(row)}


def merge_in_order(ids: Iterable[str], reused: Mapping[str, dict[str, Any]], new_rows: Iterable[dict[str, Any]],
                   id_field: str = "image_id") -> Iterator[dict[str, Any]]:
    """Reused and new rows in the order of ``ids``, streaming.

    ``new_rows`` must come in the order of ``ids`` (the workers keep input order); an id with
    neither a reused nor a new row was rejected and is skipped. A new row out of order is
    never dropped: it and the rest follow at the end.
    """
    new = iter(new_rows)
    pending = next(new, None)
    for row_id in ids:
        if row_id in reused:
            yield reused[row_id]
        elif pending is not None and pending[id_field] == row_id:
            yield pending
            pending = next(new, None)
    if pending is not None:
        yield pending
        yield from new
