"""The curriculum's LLaVA export: ``curriculum.json`` and every image it names, in the folder
``pipeline_lib.folders.curriculum_export_dir`` names, and the reference to it that travels
in the curriculum's rows (``lora_adapter`` and ``ptok export-llava`` read it from there)."""

from __future__ import annotations

import json
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path

from perception_tokens.curriculum import pools as curriculum_pools
from perception_tokens.curriculum.llava_json import to_llava_record, write_llava_json
from perception_tokens.paths import (UnsafePathError, UnusablePathError, atomic_write_bytes, file_kind, file_sha256,
                                     safe_join)
from pipeline_lib.folders import LLAVA_IMAGES_NAME, LLAVA_JSON_NAME, curriculum_export_dir, from_files, relative_to_files
from pipeline_lib.tables import TableHandle

EXPORT_COLUMNS = ("llava_json", "llava_image_folder", "llava_json_sha256")


@dataclass(frozen=True)
class LlavaExport:
    """Where an export is (relative to the storage's local files base, so the rows, and the
    curriculum's data version, do not depend on where storage is) and what its JSON holds;
    the same on every curriculum row."""

    llava_json: str
    llava_image_folder: str
    llava_json_sha256: str

    def as_columns(self) -> dict[str, str]:
        return {"llava_json": self.llava_json, "llava_image_folder": self.llava_image_folder,
                "llava_json_sha256": self.llava_json_sha256}

    @classmethod
    def from_table(cls, curriculum: TableHandle) -> "LlavaExport":
        """The export a curriculum table was written with; an error naming the table when it has none."""
        names = curriculum.schema.names
        missing = [c for c in EXPORT_COLUMNS if c not in names]
        if missing:
            raise ValueError(f"{curriculum.paths}: curriculum table has no {missing} columns (written before exports "
                             "travelled in its rows): materialize curriculum again")
        refs = {tuple(r[c] for c in EXPORT_COLUMNS) for r in curriculum.iter_rows(columns=list(EXPORT_COLUMNS))}
        if len(refs) != 1:
            raise ValueError(f"{curriculum.paths}: expected one LLaVA export named in the curriculum rows, found {len(refs)}")
        return cls(*refs.pop())

    def image_folder(self, root: str) -> Path:
        return from_files(root, self.llava_image_folder)

    def verified_json(self, root: str) -> Path:
        """The JSON file, after checking it is still the one the curriculum exported."""
        path = from_files(root, self.llava_json)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: the curriculum's LLaVA JSON is missing: materialize curriculum again")
        actual = file_sha256(path)
        if actual != self.llava_json_sha256:
            raise ValueError(f"{path}: sha256 {actual[:12]}... is not the curriculum's {self.llava_json_sha256[:12]}...: "
                             "the export was rewritten since; materialize curriculum again")
        return path

    def missing_images(self, root: str, image_folder: Path | None = None) -> list[str]:
        """The images the (verified) JSON names that are not regular files in ``image_folder``
        (default: the export's own), sorted."""
        folder = self.image_folder(root) if image_folder is None else image_folder
        return sorted(name for name in image_names(self.verified_json(root)) if not _is_file_inside(folder, name))

    def incomplete_reason(self, root: str) -> str | None:
        """Why the export is not what the curriculum's rows promise (JSON gone or rewritten, an
        image missing), or None when it is complete."""
        try:
            missing = self.missing_images(root)
        except (OSError, ValueError) as exc:
            return str(exc)
        if missing:
            return f"its LLaVA export lacks {len(missing)} image(s) ({', '.join(missing[:3])}{', ...' if len(missing) > 3 else ''})"
        return None


def image_names(llava_json: Path) -> set[str]:
    """Every image file a LLaVA JSON names (``image`` is one name, or a list for multi-image samples)."""
    names: set[str] = set()
    for record in json.loads(llava_json.read_text(encoding="utf-8")):
        image = record.get("image") if isinstance(record, dict) else None
        names.update([image] if isinstance(image, str) else [i for i in image or [] if isinstance(i, str)])
    return names


def _is_file_inside(folder: Path, name: str) -> bool:
    try:
        return file_kind(safe_join(folder, name)) == "file"
    except (UnsafePathError, UnusablePathError):
        return False


def export_llava(root: str, schedule, image_tables: dict[str, TableHandle], marked_points: TableHandle,
                 aurora_style: bool, asset_name: str = "curriculum") -> LlavaExport:
    """Write the LLaVA JSON and every image it names into a fresh folder, then swap it in for the export folder."""
    folder = curriculum_export_dir(root, asset_name=asset_name)
    tmp = folder.parent / f".{folder.name}-{uuid.uuid4().hex}"
    images = tmp / LLAVA_IMAGES_NAME
    (images / "marked").mkdir(parents=True)
    needed = {(s.image.dataset, s.image.image_id): s.image.file_name for _, s in schedule if not s.image.file_name.startswith("marked/")}
    for dataset, table in image_tables.items():
        for r in table.iter_rows(columns=["image_id", "image_bytes"]):
            name = needed.get((dataset, r["image_id"]))
            if name:
                (images / name).parent.mkdir(parents=True, exist_ok=True)
                (images / name).write_bytes(r["image_bytes"])
    marked_needed = {s.image.file_name for _, s in schedule if s.image.file_name.startswith("marked/")}
    for r in marked_points.iter_rows(columns=["marked_id", "marked_png"]):
        name = curriculum_pools.marked_image_file(r["marked_id"])
        if name in marked_needed:
            (images / name).write_bytes(r["marked_png"])
    # a sample whose image is in no table would train on nothing: fail before the swap, naming them
    missing = sorted(name for name in {*needed.values(), *marked_needed} if not (images / name).is_file())
    if missing:
        shutil.rmtree(tmp, ignore_errors=True)
        raise ValueError(f"LLaVA export: {len(missing)} image(s) named by the curriculum are in no image table "
                         f"(e.g. {', '.join(missing[:5])})")
    records = [{**to_llava_record(s), "id": f"{s.sample_id}#{i}"} for i, (_, s) in enumerate(schedule)]
    # the reference's notebooks write indent=2 with ASCII escapes; the project writes compact UTF-8
    write_llava_json(records, tmp / LLAVA_JSON_NAME, **({"indent": 2, "ensure_ascii": True} if aurora_style else {}))
    digest = file_sha256(tmp / LLAVA_JSON_NAME)
    old = folder.parent / f".old-{uuid.uuid4().hex}"
    if folder.exists():
        folder.rename(old)
    tmp.rename(folder)
    shutil.rmtree(old, ignore_errors=True)
    return LlavaExport(relative_to_files(root, folder / LLAVA_JSON_NAME), relative_to_files(root, folder / LLAVA_IMAGES_NAME), digest)


class IncompleteExportError(FileNotFoundError):
    """Images the LLaVA JSON names are not in the export; the message names them."""


def copy_export(root: str, export: LlavaExport, dest: Path) -> Path:
    """Copy an export (verified against its sha256) to ``dest`` for LLaVA's own scripts; returns the JSON's path.

    Every image the JSON names is checked in the source (nothing is copied when one is
    missing) and again in ``dest`` after the copy; a missing one is an error naming it."""
    source = export.verified_json(root)
    if missing := export.missing_images(root):
        raise IncompleteExportError(_missing_message(export.image_folder(root), missing)
                                    + ": materialize curriculum again (ptok materialize curriculum)")
    dest.mkdir(parents=True, exist_ok=True)
    shutil.copytree(export.image_folder(root), dest / LLAVA_IMAGES_NAME, dirs_exist_ok=True)
    if missing := export.missing_images(root, dest / LLAVA_IMAGES_NAME):
        raise IncompleteExportError(_missing_message(dest / LLAVA_IMAGES_NAME, missing) + " after the copy")
    atomic_write_bytes(dest / LLAVA_JSON_NAME, source.read_bytes())  # last: a JSON in dest means a complete export
    return dest / LLAVA_JSON_NAME


def _missing_message(folder: Path, missing: list[str]) -> str:
    shown = ", ".join(missing[:10]) + (f" and {len(missing) - 10} more" if len(missing) > 10 else "")
    return f"{folder}: {len(missing)} image(s) the LLaVA JSON names are missing ({shown})"


def curriculum_export_problem(root: str, asset_name: str = "curriculum") -> str | None:
    """Why the committed curriculum's (or an experiment variant's ``curriculum__<variant>``) LLaVA
    export is incomplete, or None; the runner does not call it fresh while this says something
    (Dagster sees only the table)."""
    from pipeline_lib.folders import previous_table

    table = previous_table(root, asset_name)
    if table is None:
        return None  # no readable table: the runner's own check rebuilds it
    try:
        return LlavaExport.from_table(table).incomplete_reason(root)
    except ValueError as exc:
        return str(exc)
