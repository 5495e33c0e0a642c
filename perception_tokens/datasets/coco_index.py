"""Build a ``pycocotools.coco.COCO`` index from an already validated document."""

from __future__ import annotations

import contextlib
import io

from pycocotools.coco import COCO

__all__ = ["build_coco_index"]


def build_coco_index(dataset: dict) -> COCO:
    """A COCO object over ``dataset`` (dict with images/annotations/categories).

    We load the JSON ourselves (for precise error messages and de-duplication) and hand
    the result to pycocotools, whose ``createIndex`` prints progress: silenced here.
    """
    coco = COCO()
    coco.dataset = dataset
    with contextlib.redirect_stdout(io.StringIO()):
        coco.createIndex()
    return coco
