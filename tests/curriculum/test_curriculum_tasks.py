"""Task builders: exact wording of every template (full-string equality), skips, lineage."""

import numpy as np
import pytest

from perception_tokens.curriculum import (
    ReferredObject,
    Sample,
    SkipSample,
    build_count,
    build_depth_atomic,
    build_depth_cot,
    build_depth_direct,
    build_ground_atomic,
    build_ground_depth,
    median_depth_in_box,
    validate_answer_tokens,
)
from perception_tokens.curriculum.templates import COUNT_ATOMIC_TEMPLATES
from perception_tokens.markers import MarkedPoint
from perception_tokens.vocab import GridBox

CODES = [7] * 100
DEPTH = "<DEPTH_START>" + "<DEPTH_7>" * 100 + "<DEPTH_END>"
POINTS = [MarkedPoint("B", 40, 200, 180), MarkedPoint("A", 120, 60, 30), MarkedPoint("C", 300, 150, 90)]
ADE = dict(dataset="ade20k", image_id="ADE_train_00000001")
MARKED = dict(ADE, image_file="marked/ADE_train_00000001_3pts.png")

DEPTH_Q = (
    "Multiple points are circled on the image, labeled by letters beside each circle. "
    "Which point is the closest to the camera?"
)
DEPTH_COT_Q = DEPTH_Q + (
    "\nTo answer this question, let's think through it step by step, and we know the image is 336 x 336. "
    "First, what are the coordinates of points in the image? Second, what is the depth map for the image? "
    "Which point has a higher pixel value on the depth map? "
    "Remember, higher values indicate that the point is closer to the camera."
)


def test_depth_atomic_exact():
    s = build_depth_atomic(**ADE, image_file="ade20k/ADE_train_00000001.png", codes=CODES, depth_token_version="vq1")
    assert s.question == "What is the depth map for the image?"
    assert s.answer == DEPTH
    assert (s.task, s.kind, s.depth_token_version) == ("depth_atomic", "atomic", "vq1")
    assert s.image.file_name == "ade20k/ADE_train_00000001.png"
    assert s.sample_id == "depth_atomic:ade20k:ADE_train_00000001"
    # the same codes given as a token string give the same sample
    assert build_depth_atomic(**ADE, image_file="x.png", codes=DEPTH, depth_token_version="vq1").answer == DEPTH


def test_depth_cot_exact():
    s = build_depth_cot(**MARKED, points=POINTS, codes=CODES, depth_token_version="vq1")
    assert s.question == DEPTH_COT_Q
    assert s.answer == (
        "Point A is located at (<PIXEL_120>,<PIXEL_60>), Point B is located at (<PIXEL_40>,<PIXEL_200>), "
        "Point C is located at (<PIXEL_300>,<PIXEL_150>). The depth map for the image is " + DEPTH + ". "
        "Since point B has the highest pixel value on the depth map, point B is the closest to the camera, "
        "so the answer is (B)."
    )
    assert (s.target, s.kind) == ("B", "cot")
    assert validate_answer_tokens(s.answer) == []


def test_depth_cot_bottleneck_exact():
    s = build_depth_cot(**MARKED, points=POINTS, codes=CODES, depth_token_version="vq1", bottleneck=True)
    assert s.question == DEPTH_COT_Q
    assert s.answer == (
        "Point A: (<PIXEL_120>,<PIXEL_60>)\nPoint B: (<PIXEL_40>,<PIXEL_200>)\n"
        "Point C: (<PIXEL_300>,<PIXEL_150>)\n" + DEPTH + "\n(B)"
    )
    assert s.sample_id.endswith(":bottleneck")
    assert validate_answer_tokens(s.answer) == []


def test_depth_direct_exact():
    s = build_depth_direct(**MARKED, points=POINTS)
    assert (s.question, s.answer, s.kind, s.depth_token_version) == (DEPTH_Q, "(B)", "direct", None)


def test_count_atomic_phrasings_and_answer():
    boxes = [[320, 240, 160, 120], [0, 0, 64, 48]]  # image pixels, 640x480 image
    questions = set()
    for seed in range(40):
        s = build_count(
            "atomic", dataset="lvis", image_id="42", image_file="lvis/000000000042.jpg", category_name="bus",
            boxes=boxes, image_size=(640, 480), rng=np.random.default_rng(seed), annotation_ids=[11, 12],
        )
        questions.add(s.question)
        # reading order: top box first; corners scaled by 335/640 and 335/480
        assert s.answer == (
            "(<PIXEL_0>,<PIXEL_0>,<PIXEL_34>,<PIXEL_34>)\n(<PIXEL_168>,<PIXEL_168>,<PIXEL_251>,<PIXEL_251>)"
        )
        assert (s.target, s.annotation_ids) == ("2", (11, 12))
    assert questions == {t.format(plural="buses") for t in COUNT_ATOMIC_TEMPLATES}
    assert len(questions) >= 3
    assert "Find the instances of buses in the image and return their bounding boxes." in questions


def test_count_atomic_negative_exact():
    s = build_count(
        "atomic", dataset="lvis", image_id="42", image_file="lvis/42.jpg", category_name="knife", boxes=[],
        negative=True, rng=np.random.default_rng(0),
    )
    assert s.answer == "There are no knives in the image."
    assert s.target == "0"


def test_count_cot_and_direct_exact():
    boxes = [GridBox(10, 20, 30, 40), GridBox(5, 100, 50, 150), GridBox(200, 20, 220, 60)]
    kw = dict(dataset="lvis", image_id="7", image_file="lvis/7.jpg", category_name="teddy_bear", boxes=boxes)
    cot = build_count("cot", **kw)
    assert cot.question == (
        "How many teddy bears are in the image?\n"
        "To answer this question, let's think through it step by step, and we know the image is 336 x 336. "
        "First, find the bounding box of each of the teddy bears in the image, one box per line. "
        "Then count the boxes."
    )
    assert cot.answer == (
        "(<PIXEL_10>,<PIXEL_20>,<PIXEL_30>,<PIXEL_40>)\n"
        "(<PIXEL_200>,<PIXEL_20>,<PIXEL_220>,<PIXEL_60>)\n"
        "(<PIXEL_5>,<PIXEL_100>,<PIXEL_50>,<PIXEL_150>)\n"
        "There are 3 teddy bears."
    )
    direct = build_count("direct", **kw)
    assert (direct.question, direct.answer, direct.kind) == ("How many teddy bears are in the image?", "3", "direct")
    one = build_count("cot", **dict(kw, boxes=boxes[:1], category_name="person"))
    assert one.answer.endswith("\nThere is 1 person.") and one.question.startswith("How many people are")
    assert cot.sample_id == "count_cot:lvis:7:teddy_bear"


@pytest.mark.parametrize(
    "kwargs, reason",
    [
        (dict(not_exhaustive=True, boxes=[GridBox(1, 1, 9, 9)]), "not exhaustively annotated"),
        (dict(boxes=[GridBox(1, 1, 9 + i, 9) for i in range(16)]), "exceed the maximum count 15"),
        (dict(boxes=[]), "not a verified negative"),
        (dict(boxes=[[10, 10, 0.2, 0.2]], image_size=(640, 480)), "unusable"),
    ],
)
def test_count_skips_with_reason(kwargs, reason):
    for kind in ("cot", "direct"):
        with pytest.raises(SkipSample) as err:
            build_count(kind, dataset="lvis", image_id="1", image_file="lvis/1.jpg", category_name="cup", **kwargs)
        assert reason in err.value.reason


def test_count_fifteen_is_kept():
    boxes = [GridBox(1, 1, 9 + i, 9) for i in range(15)]
    s = build_count("direct", dataset="lvis", image_id="1", image_file="lvis/1.jpg", category_name="cup", boxes=boxes)
    assert s.answer == "15"


def test_count_kind_errors_name_the_problem():
    kw = dict(dataset="lvis", image_id="1", image_file="lvis/1.jpg", category_name="cup", boxes=[GridBox(1, 1, 9, 9)])
    with pytest.raises(ValueError, match="count kind 'atomic' draws its phrasing: pass rng"):
        build_count("atomic", **kw)
    with pytest.raises(ValueError, match="unknown count kind 'many': expected atomic, cot or direct"):
        build_count("many", **kw)


def test_ground_atomic_exact():
    s = build_ground_atomic(
        dataset="refcoco", image_id="581857", image_file="coco/COCO_train2014_000000581857.jpg",
        expression="man on the left.", box=[0, 0, 320, 240], image_size=(640, 480), annotation_id=5, ref_id=77,
    )
    assert s.question == "Where is man on the left?"
    assert s.answer == "(<PIXEL_0>,<PIXEL_0>,<PIXEL_168>,<PIXEL_168>)"
    assert (s.ref_id, s.annotation_ids, s.kind) == (77, (5,), "atomic")


def test_ground_depth_exact_and_skips():
    depth = np.zeros((336, 336), np.uint8)
    depth[0:101, 0:101] = 200
    depth[200:301, 200:301] = 40
    near = ReferredObject("dog on sofa", GridBox(0, 0, 100, 100), median_depth_in_box(depth, GridBox(0, 0, 100, 100)), 1, 10)
    far = ReferredObject("lamp", GridBox(200, 200, 300, 300), median_depth_in_box(depth, GridBox(200, 200, 300, 300)), 2, 20)
    assert (near.depth, far.depth) == (200.0, 40.0)
    kw = dict(dataset="refcoco", image_id="9", image_file="coco/9.jpg", codes=CODES, depth_token_version="vq1")
    s = build_ground_depth(first=far, second=near, **kw)
    assert s.question == "Which is closer to the camera, lamp or dog on sofa?"
    assert s.answer == (
        '"lamp" is located at (<PIXEL_200>,<PIXEL_200>,<PIXEL_300>,<PIXEL_300>), '
        '"dog on sofa" is located at (<PIXEL_0>,<PIXEL_0>,<PIXEL_100>,<PIXEL_100>). '
        "The depth map for the image is " + DEPTH + ". "
        'Since "dog on sofa" has a higher value on the depth map, "dog on sofa" is closer to the camera.'
    )
    assert (s.target, s.kind, s.annotation_ids, s.ref_id) == ("dog on sofa", "cot", (2, 1), 20)
    assert validate_answer_tokens(s.answer) == []
    # with an rng the order is randomised, the answer is not
    firsts = {build_ground_depth(first=far, second=near, rng=np.random.default_rng(i), **kw).question for i in range(20)}
    assert len(firsts) == 2
    with pytest.raises(SkipSample, match="differ by less"):
        build_ground_depth(first=far, second=ReferredObject("cup", GridBox(5, 5, 9, 9), 45.0), **kw)
    with pytest.raises(SkipSample, match="both objects"):
        build_ground_depth(first=far, second=ReferredObject("Lamp", GridBox(5, 5, 9, 9), 200.0), **kw)


def test_sample_row_round_trip_and_validation():
    s = build_depth_cot(**MARKED, points=POINTS, codes=CODES, depth_token_version="vq1")
    row = s.to_row()
    assert row["image_file"] == "marked/ADE_train_00000001_3pts.png" and row["dataset"] == "ade20k"
    assert Sample.from_row(row) == s
    with pytest.raises(ValueError, match="kind"):
        Sample(**{**{k: v for k, v in vars(s).items()}, "kind": "atomic"})
    with pytest.raises(ValueError, match="relative"):
        build_depth_direct(**dict(MARKED, image_file="../escape.png"), points=POINTS)
