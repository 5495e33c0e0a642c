"""Answer parsing: final committed answer only, None rather than a guess."""

import pytest

from evaluation.parsing import clean_text, parse_answer, parse_count, parse_option

AB, ABC, ABCDE = list("AB"), list("ABC"), list("ABCDE")
DEPTH = "<DEPTH_START>" + "<DEPTH_7>" * 100 + "<DEPTH_END>"

OPTION_CASES = [
    ("B", AB, "B"),
    ("(B)", AB, "B"),
    ("B.", AB, "B"),
    ("B)", AB, "B"),
    ("A", AB, "A"),
    ("The answer is (B).", AB, "B"),
    ("The answer is A.", AB, "A"),
    ("Answer: D", ABCDE, "D"),
    ("point B is closer", AB, "B"),
    ("Point E is the closest to the camera.", ABCDE, "E"),
    ("(A) A is closer", AB, "A"),
    ("A is closer than B.", AB, "A"),
    ("The answer is B, since A is farther away.", AB, "B"),
    # chain of thought ending with the conclusion: the final commitment wins
    ("Point A is located at (<PIXEL_12>,<PIXEL_40>), Point B is located at (<PIXEL_200>,<PIXEL_7>). "
     f"The depth map for the image is {DEPTH}. Since point B has the highest pixel value on the depth map, "
     "point B is the closest to the camera, so the answer is (B).", AB, "B"),
    ("Let me think. Point A looks near, but C is the closest. Answer: C", ABC, "C"),
    ("First I thought (A). The answer is (C).", ABC, "C"),
    # free-form sentences (issue 11): a point named as closer / closest, clauses in between
    ("Point A, which is circled on the dome of the building, appears to be closer to the camera than point B.", AB, "A"),
    ("Based on the perspective, point A appears closer.", AB, "A"),
    ("Point B seems to be nearer to the camera compared to point A.", AB, "B"),
    ("After analyzing, I conclude that point C is closest.", ABC, "C"),
    ("The nearest point is probably A.", AB, "A"),
    ("Point A is closer than point B, and point B is closer than point C, so A is the closest.", ABC, "A"),
    ("The answer is B because point A is farther from the camera than point B.", AB, "B"),
    ("**Answer: B**", AB, "B"),
    # refused: two options asserted, negated, hedged, refused, merely mentioned
    ("Point A looks closer at first, but point B is actually closer.", AB, None),
    ("Point A might be closer, or maybe B.", AB, None),
    ("A and B are closer than C.", ABC, None),
    ("The answer is not A.", AB, None),
    ("Not A.", AB, None),
    ("I cannot determine which of points A and B is closer.", AB, None),
    ("Point A is circled in red on the left side of the image.", AB, None),
    ("Which point is closer to the camera, A or B?", AB, None),
    # unparsed: ambiguous, absent, outside the valid letters, the article "A"
    ("A or B", AB, None),
    ("The answer is A or B.", AB, None),
    ("A point is closer to the camera.", AB, None),
    ("The answer is (F).", ABC, None),
    ("Point B is farther than point A.", AB, None),
    ("I think it is B, because A is farther.", AB, None),
    ("Neither A nor B is closer.", AB, None),
    ("I don't know.", AB, None),
    ("", AB, None),
    (None, AB, None),
    (DEPTH, AB, None),
]


@pytest.mark.parametrize("text,valid,expected", OPTION_CASES)
def test_parse_option(text, valid, expected):
    assert parse_option(text, valid) == expected


def test_parse_option_maps_choice_text_and_numeric_choices():
    assert parse_option("2", list("ABCD"), ["1", "2", "3", "4"]) == "B"
    assert parse_option("There are 3 cups.", list("ABCD"), ["1", "2", "3", "4"]) == "C"
    assert parse_option("the lamp", AB, ["lamp", "chair"]) == "A"
    assert parse_option("the sofa", AB, ["lamp", "chair"]) is None
    # the option's text as the subject of a sentence (CV-Bench depth)
    assert parse_option("The chair (highlighted by a blue box) appears to be closer to the camera than the lamp.", AB, ["lamp", "chair"]) == "B"
    assert parse_option("The lamp is farther away than the chair.", AB, ["lamp", "chair"]) is None


COUNT_CASES = [
    ("3", 3),
    ("three", 3),
    ("Twelve.", 12),
    ("There are 3 cars.", 3),
    ("There is 1 chair.", 1),
    ("There are no cars in the image.", 0),
    ("I count 2 dogs and 3 cats. So there are 5 animals.", 5),
    ("There are 3 cars, one of them red.", 3),
    ("(<PIXEL_1>,<PIXEL_2>,<PIXEL_30>,<PIXEL_40>)\n(<PIXEL_5>,<PIXEL_6>,<PIXEL_70>,<PIXEL_80>)\nThere are 2 chairs.", 2),
    ("The answer is 4", 4),
    ("There are 3 or 4.", None),
    ("2 or 3", None),
    ("The answer is 2.5", None),
    ("I have no idea", None),
    ("(<PIXEL_1>,<PIXEL_2>,<PIXEL_30>,<PIXEL_40>)", None),
    ("", None),
]


@pytest.mark.parametrize("text,expected", COUNT_CASES)
def test_parse_count(text, expected):
    assert parse_count(text) == expected


def test_clean_text_removes_perception_tokens_only():
    assert clean_text(f"x {DEPTH} y (<PIXEL_1>,<PIXEL_2>) z</s>").split() == ["x", "y", "z"]


def test_parse_answer_dispatches_on_answer_type():
    assert parse_answer("There are 4 cups.", {"answer_type": "number"}) == "4"
    assert parse_answer("(B)", {"answer_type": "letter", "valid_letters": AB, "choices": None}) == "B"
