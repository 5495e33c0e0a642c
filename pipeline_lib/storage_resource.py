"""Where tables and model files live (``storage`` settings section)."""

from __future__ import annotations

import os
import stat
import time
from pathlib import Path

import dagster as dg
from upath import UPath

from pipeline_lib.settings import Settings


class StorageResource(dg.ConfigurableResource):
    """Where tables and model files live. ``root`` is a local path or an fsspec URL.

    Nothing here enters a code version: moving the store changes where outputs are, not what
    they are (the runner rebuilds a table it cannot read), so the launchpad may edit it."""

    root: str
    catalog_path: str | None = None
    row_group_rows: int = 256

    @classmethod
    def from_settings(cls, settings: Settings) -> "StorageResource":
        return cls(root=settings.storage_root, catalog_path=str(settings.catalog_path),
                   row_group_rows=settings.storage.row_group_rows)

    def asset_dir(self, asset_name: str) -> UPath:
        return UPath(self.root) / asset_name

    def table_path(self, asset_name: str) -> UPath:
        """The committed table of an unpartitioned asset (the IO manager's path for it)."""
        from pipeline_lib.folders import table_path

        return table_path(self.root, asset_name)

    def staging_dir(self, asset_name: str) -> UPath:
        """Temporary files of an asset; same filesystem as the tables, so commit is a rename.

        Files left by a killed writer are invisible to readers; ones older than a day are
        removed here (younger ones may belong to a partition being written right now).
        """
        path = UPath(self.root) / ".staging" / asset_name
        _remove_stale_staging(path, max_age_s=24 * 3600)
        return path

    def fingerprint_state(self, name: str) -> Path:
        """Local file keeping a dataset root's per-file sizes, mtimes and hashes between observations."""
        base = Path(self.root) if "://" not in self.root else Path(".ptok")
        return base / ".fingerprints" / f"{name}.json"

    def local_files_dir(self, asset_name: str, *parts: str) -> Path:
        """A local folder for model files (training writes with ordinary file I/O). Beside the
        tables when storage is local; under ``.ptok/files`` when the tables are on object storage."""
        from pipeline_lib.folders import files_dir

        return files_dir(self.root, asset_name, *parts)


def _remove_stale_staging(path: UPath, max_age_s: float, now: float | None = None) -> None:
    """Delete ``.staging-*.parquet`` files older than ``max_age_s`` that this user wrote.

    Only regular files owned by this user are judged, by ``lstat``: a symlink (or a device,
    a folder) is never followed, so its target's age cannot make it look stale and nothing
    outside the staging folder is ever touched.
    """
    if path.protocol not in ("", "file", "local") or not path.exists():
        return
    now = time.time() if now is None else now
    uid = os.getuid()
    for f in Path(path.path).glob(".staging-*.parquet"):
        try:
            st = f.lstat()
            if stat.S_ISREG(st.st_mode) and st.st_uid == uid and now - st.st_mtime > max_age_s:
                f.unlink()
        except OSError:
            pass  # gone already, or not ours to delete: a stale file only costs disk space
