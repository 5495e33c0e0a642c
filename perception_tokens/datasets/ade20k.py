"""ADE20K SceneParsing (``ADEChallengeData2016``) image reader.

Layout: ``<root>/images/{training,validation}/ADE_*.jpg`` with class-index masks at
``<root>/annotations/<split>/<same stem>.png`` (absent for the test release).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable, Iterator

from ..images import DEFAULT_MAX_IMAGE_BYTES, DEFAULT_MAX_PIXELS
from ..paths import UnsafePathError, UnusablePathError, file_kind, kind_of_mode, printable_name, safe_join
from .records import DatasetFormatError, Reject, read_image_file

__all__ = ["iter_ade20k_images", "ADE20K_SPLITS"]

ADE20K_SPLITS = ("training", "validation")
_IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
STAGE = "ade20k_images"


def iter_ade20k_images(
    root: str | os.PathLike, splits: Iterable[str] = ADE20K_SPLITS, *, max_pixels: int = DEFAULT_MAX_PIXELS,
    max_bytes: int = DEFAULT_MAX_IMAGE_BYTES,
) -> Iterator[dict | Reject]:
    """Stream image rows (or Rejects) for ``splits`` of an ADEChallengeData2016 folder.

    ``root`` is the folder holding ``images/`` (i.e. ``.../ADEChallengeData2016``).
    Row ``split`` is the official folder name ("training"/"validation"), ``image_id``
    the file stem, ``file_name``/``annotation_file`` posix paths relative to ``root``
    (``annotation_file`` is None when no mask exists). Files are visited in sorted
    order; every file in an images folder becomes a row or a Reject.
    """
    root = Path(root)
    images_dir = root / "images"
    if not images_dir.is_dir():
        hint = " (did you mean its ADEChallengeData2016 subfolder?)" if (root / "ADEChallengeData2016").is_dir() else ""
        raise DatasetFormatError(f"{root}: not an ADE20K root, no images/ folder{hint}")
    splits = list(splits)
    for split in splits:
        if not isinstance(split, str) or "/" in split or split in ("", ".", ".."):
            raise ValueError(f"invalid ADE20K split name {split!r}")
        if not (images_dir / split).is_dir():
            raise DatasetFormatError(f"{root}: split folder images/{split} does not exist")

    seen: set[str] = set()
    for split in splits:
        for entry in sorted(os.listdir(images_dir / split)):
            rel = f"images/{split}/{entry}"
            image_id = Path(entry).stem
            shown = str(root / rel)
            if printable_name(entry) != entry:
                # os.listdir decoded a non-UTF-8 name with lone surrogates: a row holding it
                # could not be written to the table. The reject shows the name's bytes.
                yield Reject("ade20k", STAGE, repr(os.fsencode(shown)), printable_name(image_id),
                             f"file name {printable_name(entry)} is not valid UTF-8")
                continue
            if entry.startswith(".") or Path(entry).suffix.lower() not in _IMAGE_SUFFIXES:
                yield Reject("ade20k", STAGE, shown, image_id, "not an image file name (expected .jpg/.jpeg/.png)")
                continue
            if image_id in seen:
                yield Reject("ade20k", STAGE, shown, image_id, f"duplicate image id {image_id} (first kept)")
                continue
            got = read_image_file(root, rel, dataset="ade20k", stage=STAGE, record_id=image_id, max_pixels=max_pixels, max_bytes=max_bytes)
            if isinstance(got, Reject):
                yield got
                continue
            ann_rel = f"annotations/{split}/{image_id}.png"
            try:
                ann_kind = file_kind(safe_join(root, ann_rel))
            except (UnsafePathError, UnusablePathError) as exc:
                what = "escapes root" if isinstance(exc, UnsafePathError) else "is unusable"
                yield Reject("ade20k", STAGE, str(root / ann_rel), image_id, f"annotation path {what}: {exc.why}")
                continue
            if ann_kind not in ("file", "missing"):  # a FIFO or folder under the mask's name: never read it
                what = kind_of_mode(os.stat(root / ann_rel).st_mode) if ann_kind == "other" else ann_kind
                yield Reject("ade20k", STAGE, str(root / ann_rel), image_id, f"annotation path is not a regular file ({what})")
                continue
            annotation_file = ann_rel if ann_kind == "file" else None
            seen.add(image_id)
            yield {
                "dataset": "ade20k",
                "split": split,
                "image_id": image_id,
                **got,
                "annotation_file": annotation_file,
            }
