"""Where each asset's table files are, whether they can be read, and which ones no longer belong.

The runner asks these before trusting Dagster's "fresh": a table deleted or corrupted by hand
is recorded as materialized in the instance but is not there, so it must be rebuilt (issue
12.4). And when the partitioning changes (``num_shards`` 3 -> 2) the files of partitions that no
longer exist would stay and be read by the catalog views twice over (issue 12.5); they are
removed. Paths follow ParquetIOManager (``UPathIOManager``): ``<root>/<asset>.parquet``, or
``<root>/<asset>/<v1>/<v2>.parquet`` with a multi-partition's values in dimension-name order.
"""

from __future__ import annotations

from typing import Callable

import dagster as dg
import pyarrow.parquet as pq
from upath import UPath


def partition_subpath(partition_key: str | dg.MultiPartitionKey, partitions_def: dg.PartitionsDefinition) -> str:
    if isinstance(partitions_def, dg.MultiPartitionsDefinition):
        key = partition_key if isinstance(partition_key, dg.MultiPartitionKey) else partitions_def.get_partition_key_from_str(partition_key)
        return "/".join(key.keys_by_dimension[d] for d in sorted(key.keys_by_dimension))
    return str(partition_key)


def table_file(root: UPath, asset_name: str, partitions_def: dg.PartitionsDefinition | None, partition_key: str | None) -> UPath:
    if partitions_def is None or partition_key is None:
        return root / f"{asset_name}.parquet"
    return root / asset_name / f"{partition_subpath(partition_key, partitions_def)}.parquet"


def unreadable_reason(path: UPath) -> str | None:
    """None when ``path`` is a readable Parquet file (its footer parses), else why not."""
    try:
        with path.open("rb") as f:
            pq.read_metadata(f)
    except FileNotFoundError:
        return "missing"
    except Exception as exc:  # truncated, not Parquet, no permission: all mean "rebuild it"
        return f"unreadable ({type(exc).__name__}: {str(exc)[:120]})"
    return None


def retired_partition_files(root: UPath, asset_name: str, partitions_def: dg.PartitionsDefinition) -> list[UPath]:
    """Committed files under ``<root>/<asset>/`` that belong to no current partition. Staging
    files (dot names) and the model-files folder are not partitions and are left alone."""
    folder = root / asset_name
    if not folder.exists():
        return []
    current = {f"{partition_subpath(pk, partitions_def)}.parquet" for pk in partitions_def.get_partition_keys()}
    depth = 2 if isinstance(partitions_def, dg.MultiPartitionsDefinition) else 1
    found = []
    for path in folder.rglob("*.parquet"):
        rel = path.relative_to(folder).as_posix() if hasattr(path, "relative_to") else str(path)[len(str(folder)) + 1:]
        parts = rel.split("/")
        if len(parts) != depth or any(p.startswith(".") for p in parts) or parts[0] == "files":
            continue
        if rel not in current:
            found.append(path)
    return sorted(found, key=str)


def remove_retired_partitions(root: UPath, assets: list[dg.AssetsDefinition], log: Callable[[str], None] = print) -> list[str]:
    """Delete the files of partitions the definitions no longer have; returns the asset names touched."""
    touched = []
    for ad in assets:
        if getattr(ad, "partitions_def", None) is None or not isinstance(ad, dg.AssetsDefinition):
            continue  # unpartitioned, or a source / external spec whose files are not ours
        for key in ad.keys:
            name = key.path[-1]
            retired = retired_partition_files(root, name, ad.partitions_def)
            for path in retired:
                path.unlink()
            if retired:
                touched.append(name)
                log(f"  - {name}: removed {len(retired)} file(s) of partitions that no longer exist "
                    f"({', '.join(p.name if len(p.parts) < 2 else '/'.join(p.parts[-2:]) for p in retired)})")
    return touched
