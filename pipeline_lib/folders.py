"""Where each folder and table of the pipeline lives: one function per place.

Assets, asset checks, the CLI and the IO manager's callers ask here, so a place is named once.

Tables live under the storage root, a local path or an fsspec URL (``UPath``). Model files,
run folders and the LLaVA export are written with ordinary file I/O (training code, LLaVA's
own scripts), so they need a local folder: beside the tables when storage is local, under
``.ptok/files`` when the tables are on object storage.
"""

from __future__ import annotations

from pathlib import Path

import dagster as dg
from upath import UPath

from pipeline_lib.partition_files import table_file, unreadable_reason
from pipeline_lib.tables import TableHandle

# local stand-in for model files when the tables are on object storage (relative to the work dir)
OBJECT_STORAGE_FILES = Path(".ptok") / "files"
LLAVA_JSON_NAME = "curriculum.json"
LLAVA_IMAGES_NAME = "images"


def is_object_storage(root: str) -> bool:
    return "://" in str(root)


def local_files_base(root: str) -> Path:
    """Where the local folders of a storage root begin; rows name files relative to it, so a table's
    content (and data version) does not depend on where the storage happens to be."""
    return OBJECT_STORAGE_FILES if is_object_storage(root) else Path(root)


def relative_to_files(root: str, path: Path) -> str:
    return Path(path).relative_to(local_files_base(root)).as_posix()


def from_files(root: str, relative: str) -> Path:
    """A path a row names relative to the local files base; one that would leave the base is refused."""
    base = local_files_base(root)
    path = base / relative
    if Path(relative).is_absolute() or ".." in Path(relative).parts:
        raise ValueError(f"{relative!r}: a stored file path must stay under {base}")
    return path


def files_dir(root: str, asset_name: str, *parts: str, create: bool = True) -> Path:
    """A local folder for an asset's files (model weights, run folders, exports, charts)."""
    path = local_files_base(root).joinpath(asset_name, "files", *parts)
    if create:
        path.mkdir(parents=True, exist_ok=True)
    return path


def run_dir(root: str, asset_name: str, run_key: str) -> Path:
    """The folder of one training run (checkpoints, config, logs), keyed so a rerun resumes it."""
    return files_dir(root, asset_name, run_key)


def curriculum_export_dir(root: str, create: bool = True, asset_name: str = "curriculum") -> Path:
    """The LLaVA export of a curriculum (``curriculum`` or an experiment variant's ``curriculum__<variant>``):
    ``curriculum.json`` and its ``images/`` folder."""
    return files_dir(root, asset_name, create=create) / "llava"


def eval_chart_file(root: str, asset_name: str = "eval_scores") -> Path:
    return files_dir(root, asset_name) / "scores.png"


def report_file(root: str) -> Path:
    """Default place of ``ptok report``'s HTML: beside the storage folder, or in .ptok on object storage."""
    return Path(".ptok") / "report.html" if is_object_storage(root) else Path(root).parent / "report.html"


def table_path(root: str, asset_name: str, partitions_def: dg.PartitionsDefinition | None = None,
               partition_key: str | dg.MultiPartitionKey | None = None) -> UPath:
    """The committed table of an asset (or of one partition), where the IO manager writes it."""
    return table_file(UPath(root), asset_name, partitions_def, partition_key)


def previous_table(root: str, asset_name: str, partitions_def: dg.PartitionsDefinition | None = None,
                   partition_key: str | dg.MultiPartitionKey | None = None, *, must_be_readable: bool = False) -> TableHandle | None:
    """The last committed version of a table (or partition) an asset is about to rewrite; None when there is none.

    A file broken by hand is treated as absent for incremental reuse (the asset recomputes
    its rows), but with ``must_be_readable`` (a history the asset appends to) it is an error
    naming the file: rewriting it would silently drop the history.
    """
    path = table_path(root, asset_name, partitions_def, partition_key)
    reason = unreadable_reason(path)
    if reason is None:
        return TableHandle([path])
    if must_be_readable and reason != "missing":
        raise ValueError(f"{path}: {reason}; it holds the history of {asset_name}: repair or move it away, then rerun")
    return None


def committed_table(root: str, asset_name: str) -> TableHandle:
    """An unpartitioned asset's table, for a reader outside a run (the CLI); an error naming it when absent."""
    table = previous_table(root, asset_name)
    if table is None:
        raise FileNotFoundError(f"{table_path(root, asset_name)} is missing or unreadable: "
                                f"materialize {asset_name} first (ptok materialize {asset_name})")
    return table


def partition_tables(root: str, asset_name: str, partitions_def: dg.PartitionsDefinition) -> TableHandle:
    """Whichever partitions of an asset are committed now (for an unpartitioned check)."""
    paths = [table_path(root, asset_name, partitions_def, key) for key in partitions_def.get_partition_keys()]
    return TableHandle([p for p in paths if p.exists()])
