"""curriculum.coordinates: text writes boxes and points as plain integers (the paper's text-coordinates ablation)."""

from __future__ import annotations

import pytest

from perception_tokens.curriculum.aurora_reference import COUNT_BOX_LINE
from perception_tokens.curriculum.sample import ImageRef, Sample
from perception_tokens.curriculum.text_coordinates import text_coordinates, with_text_coordinates
from perception_tokens.vocab import depth_code_token as depth_token


def test_boxes_and_points_become_plain_integers_depth_tokens_stay():
    box = COUNT_BOX_LINE.format(i=1, x1=0, y1=40, x2=99, y2=335)
    assert text_coordinates(box) == "Bounding box 1: (0,40,99,335)\n"
    assert text_coordinates("point A (<PIXEL_5>,<PIXEL_7>) " + depth_token(3)) == "point A (5,7) " + depth_token(3)


@pytest.mark.parametrize("bad", ["(<PIXEL_01>,<PIXEL_2>)", "(<PIXEL_x>,<PIXEL_2>)", "<PIXEL_>"])
def test_a_malformed_pixel_token_is_an_error(bad):
    with pytest.raises(ValueError, match="malformed pixel token"):
        text_coordinates(bad)


def test_a_sample_keeps_everything_but_its_text():
    s = Sample("s1", "count_cot", "cot", ImageRef("lvis", "7", "lvis/7.jpg"), "How many cats?",
               "(<PIXEL_1>,<PIXEL_2>,<PIXEL_30>,<PIXEL_40>)\nThere is 1 cat.", "1", "lvis", "7", (11,))
    t = with_text_coordinates(s)
    assert t.answer == "(1,2,30,40)\nThere is 1 cat." and t.question == s.question
    assert (t.sample_id, t.target, t.annotation_ids, t.image) == (s.sample_id, s.target, s.annotation_ids, s.image)
