"""An extremely elongated image is rejected with a reason, not turned into a marked-point
question (issue 21.2). Before the fix a 20000x1 image was squeezed into 336x336 and marked."""

import io

import numpy as np
import pytest
from PIL import Image

from perception_tokens.curriculum.marking import MarkingOptions, mark_image
from perception_tokens.depth import encode_png


def _png(width: int, height: int) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.full((height, width, 3), 90, np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


# a left-to-right depth ramp: points at clearly different depths exist
DEPTH = encode_png(np.tile((np.arange(96) * 255 // 95).astype(np.uint8), (72, 1)))


@pytest.mark.parametrize("style", ["project", "aurora"])
def test_a_20000x1_image_is_rejected_with_its_aspect_ratio(style):
    opts = MarkingOptions(seed=0, min_points=2, max_points=3, variants=("beside",), style=style)
    image = {"image_id": "strip", "split": "train", "image_bytes": _png(20000, 1)}
    assert mark_image("ade20k", image, DEPTH, opts) == (
        "aspect ratio 20000.0:1 (20000x1) is beyond curriculum.marked_max_aspect_ratio 4: "
        "squeezed into a square, its points and labels would be meaningless")
    # the row's own width/height are used when the table has them
    tall = {"image_id": "tall", "split": "train", "width": 10, "height": 50, "image_bytes": _png(10, 50)}
    assert mark_image("ade20k", tall, DEPTH, opts).startswith("aspect ratio 5.0:1 (10x50) is beyond")


@pytest.mark.parametrize("style", ["project", "aurora"])
def test_ordinary_shapes_are_marked_and_the_limit_can_be_lifted(style):
    opts = MarkingOptions(seed=0, min_points=2, max_points=3, variants=("beside",), style=style)
    wide = {"image_id": "wide", "split": "train", "image_bytes": _png(160, 48)}  # 3.3:1, under the limit
    row = mark_image("ade20k", wide, DEPTH, opts)
    assert isinstance(row, dict) and row["n_points"] in (2, 3)
    lifted = MarkingOptions(seed=0, min_points=2, max_points=3, variants=("beside",), style=style, max_aspect_ratio=None)
    strip = {"image_id": "strip", "split": "train", "image_bytes": _png(2000, 1)}
    assert isinstance(mark_image("ade20k", strip, DEPTH, lifted), dict)


def test_the_aurora_profile_marks_every_image_as_the_reference_does():
    from pipeline_lib.settings import settings_from_dict

    assert settings_from_dict({}).curriculum.marked_max_aspect_ratio == 4.0
    aurora = settings_from_dict({"profile": "aurora", "depth": {"preset": "custom", "teacher": "ground_truth"}})
    assert aurora.curriculum.marked_max_aspect_ratio is None
