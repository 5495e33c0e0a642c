"""Aurora-style marked images are stored as add_marks_ade.ipynb cell 4 saves them: JPEG at
PIL's default quality, under a .jpg name in the LLaVA export; the project's stay PNG."""

from __future__ import annotations

import io
import random

import numpy as np
from PIL import Image

from perception_tokens import aurora_marks as A
from perception_tokens.curriculum.marking import MarkingOptions, aurora_marked_row, image_seed, mark_image
from perception_tokens.curriculum.pools import marked_image_file


def _encoded(array: np.ndarray, fmt: str) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format=fmt)
    return buf.getvalue()


def _image_and_depth():
    yy, xx = np.mgrid[0:84, 0:112]
    depth = _encoded((xx * 255 // 111).astype(np.uint8), "PNG")  # left-to-right ramp: points exist
    rgb = np.stack([xx * 2 % 256, yy * 3 % 256, (xx + yy) % 256], axis=-1).astype(np.uint8)
    return {"image_id": "ADE_train_00000001", "split": "training", "image_bytes": _encoded(rgb, "JPEG")}, depth


def test_aurora_marked_image_is_the_notebooks_jpeg():
    image, depth = _image_and_depth()
    row = aurora_marked_row("ade20k", image, depth, seed=0)
    # the same steps by hand: the notebook's marks on its resized image, saved as JPEG (quality 75)
    marks = A.mark_images([A.depth_array(depth)], random.Random(image_seed(0, image["image_id"])))[0]
    expected = io.BytesIO()
    A.draw_marks(A.resize_like_notebook(image["image_bytes"], "RGB"), marks).save(expected, format="JPEG", quality=75)
    assert row["marked_png"] == expected.getvalue() and row["marked_png"][:3] == b"\xff\xd8\xff"
    assert row["variant"] == "aurora" and row["answer"] == marks.answer


def test_export_names_follow_the_stored_format():
    assert marked_image_file("ade20k:ADE_train_00000001:aurora3") == "marked/ade20k_ADE_train_00000001_aurora3.jpg"
    assert marked_image_file("ade20k:ADE_train_00000001:beside3") == "marked/ade20k_ADE_train_00000001_beside3.png"
    image, depth = _image_and_depth()
    project = mark_image("ade20k", image, depth, MarkingOptions(seed=0, min_points=2, max_points=3, variants=("beside",)))
    assert project["marked_png"][:8] == b"\x89PNG\r\n\x1a\n"
