"""The ``aurora`` curriculum style writes what Aurora's notebooks write, byte for byte.

Expected values were derived by following the notebooks cell by cell on the fixtures below
(documented per test); record ids are the one field left out, because the notebooks use
``uuid.uuid4()`` (random, not reproducible) while the pipeline writes deterministic ids.
"""

import io
import json
import random

import numpy as np
import pytest
from PIL import Image

from perception_tokens import aurora_marks as A
from perception_tokens.curriculum import aurora_reference
from perception_tokens.markers import PointSamplingError
from perception_tokens.vocab import encode_depth


def _png(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG")
    return buf.getvalue()


def _depth_fixtures() -> list[np.ndarray]:
    """Three 112x84 depth PNGs: a left-to-right ramp, a top-to-bottom falling ramp, two steps."""
    yy, xx = np.mgrid[0:84, 0:112]
    maps = [xx * 255 // 111, 255 - yy * 255 // 83, np.where(xx < 56, 40, 200) + (yy > 42) * 30]
    return [A.depth_array(_png(m.astype(np.uint8))) for m in maps]


def test_marked_points_follow_add_marks_cells_2_and_4():
    """add_marks_ade.ipynb with ``random.seed(3)`` before cell 2 on the three fixture maps.

    Cell 2, image 1: choice([2,3,4,5]) -> 3; randint pairs are drawn until three points lie
    >= 20 px and >= 20 depth apart; sorted by depth (PIL-resized 'L' values as float64):
    (6,240) 3.0, (189,242) 143.0, (278,66) 212.0. Images 2 and 3 continue the same stream.
    Cell 4 then shuffles ['A','B','C'] (image 1) -> A,B,C; ['A','B','C','D'] -> A,C,B,D;
    ['A','B','C'] -> C,B,A. The answer is the letter of the last (largest) depth. These are
    the point_label_mappings.json / depth_qa_pairs.json the notebook writes for this input.
    """
    marks = A.mark_images(_depth_fixtures(), random.Random(3))
    assert [m.mapping() for m in marks] == [
        {"A": {"coordinate": [6, 240], "depth": 3.0}, "B": {"coordinate": [189, 242], "depth": 143.0},
         "C": {"coordinate": [278, 66], "depth": 212.0}},
        {"A": {"coordinate": [276, 281], "depth": 40.0}, "C": {"coordinate": [98, 240], "depth": 72.0},
         "B": {"coordinate": [243, 203], "depth": 101.0}, "D": {"coordinate": [282, 119], "depth": 165.0}},
        {"C": {"coordinate": [118, 77], "depth": 40.0}, "B": {"coordinate": [137, 242], "depth": 70.0},
         "A": {"coordinate": [267, 199], "depth": 230.0}},
    ]
    assert [m.answer for m in marks] == ["C", "D", "A"]
    for m in marks:  # the notebook's own check (cell 5): depths ascending, answer = argmax
        assert list(m.depths) == sorted(m.depths)
        assert all(0 <= x <= 300 and 0 <= y <= 300 for x, y in m.coordinates)


def test_flat_depth_map_has_no_valid_points():
    """A map that is 0 everywhere: cell 2 rejects every draw (depth 0), the image is skipped."""
    with pytest.raises(PointSamplingError):
        A.sample_points(np.zeros((336, 336)), random.Random(0), max_attempts=3, max_point_attempts=50)


# Expected crop of cell 4's add_point('B', draw, 100, 100, 12) on green, rows y=70..105, x=96..111.
# Box: text origin (100, 75); rectangle [100-1, 75-1, 100+textlength+1, 75+12+1] filled black
# -> x 99..107, y 74..88 (textlength('B') = 6 with PIL's default font). Circle: ellipse
# [96, 96, 104, 104], outline red, width 2. '?' = the letter's antialiased white/grey pixels.
EXPECTED_CROP = """\
................
................
................
................
...KKKKKKKKK....
...KKKKKKKKK....
...KKKKKKKKK....
...KK?????KK....
...KK?KK??KK....
...KK?KK??KK....
...KK?KK??KK....
...KK?????KK....
...KK?KK??KK....
...KK?KK??KK....
...KK?????KK....
...KKKKKKKKK....
...KKKKKKKKK....
...KKKKKKKKK....
...KKKKKKKKK....
................
................
................
................
................
................
................
...RRR..........
.RRRRRRR........
.RR...RR........
RR.....RR.......
RR.....RR.......
RR.....RR.......
.RR...RR........
.RRRRRRR........
...RRR..........
................"""


def test_marker_pixels_match_the_reference_crop():
    img = Image.new("RGB", (336, 336), (0, 128, 0))
    out = np.array(A.draw_marks(img, A.AuroraMarks(("B",), ((100, 100),), (5.0,))))
    crop = out[70:106, 96:112].astype(int)
    colours = {".": (0, 128, 0), "R": (255, 0, 0), "K": (0, 0, 0)}
    letter = []
    for y, row in enumerate(EXPECTED_CROP.splitlines()):
        for x, ch in enumerate(row):
            if ch == "?":
                letter.append(crop[y, x])
            else:
                assert tuple(crop[y, x]) == colours[ch], (y + 70, x + 96, ch, crop[y, x])
    letter = np.array(letter)
    assert (letter[:, 0] == letter[:, 1]).all() and (letter[:, 1] == letter[:, 2]).all()  # white on black: greys only
    assert (letter[:, 0] >= 240).sum() >= 10  # the letter's strokes are white
    # nothing else in the image changed
    rest = out.copy()
    rest[70:106, 96:112] = (0, 128, 0)
    assert (rest == (0, 128, 0)).all()


def test_depth_records_and_schedule_follow_create_depth_annealing_data():
    """create_depth_annealing_data.ipynb cells 2-3 on the marks above.

    Cell 2, per marked image: a direct record "(X)" then a CoT record whose answer lists
    "Point L is located at (x = X y = Y)," for L = A, B, C... (alphabetical), turns the last
    "," into ".", and appends the depth sentence. Cell 3 with random.seed(0), 12 atomic
    records a0..a11 and total_length = 10 (the notebook's 20000 scaled down): epoch e takes
    random.sample(atomic, int(10 * percent_e)) then the 6 reasoning records
    (10 - int(10 * p)) // 6 times: epochs 0-5 are atomic only (10, 9, 8, 7, 6, 5 samples),
    epochs 6-9 add one pass of d1 c1 d2 c2 d3 c3 after 4, 3, 2, 1 atomic samples; 79 in all.
    """
    marks = A.mark_images(_depth_fixtures(), random.Random(3))
    tokens = encode_depth(list(range(100)))
    q, a = aurora_reference.depth_cot_qa(marks[0], tokens)
    assert q == ("Multiple points are circled on the image, labeled by letters beside each circle. Which point is the "
                 "closest to the camera?\nTo answer this question, let's think through it step by step, and we know the "
                 "image is 336 x 336. First, what are the coordinates of points in the image? Second, what is the depth "
                 "map for the image? Which point has a higher pixel value on the depth map? Remember, higher values "
                 "indicate that the point is closer to the camera.")
    assert a == ("Point A is located at (x = 6 y = 240),Point B is located at (x = 189 y = 242),Point C is located at "
                 f"(x = 278 y = 66).The depth map for the image is {tokens}. Since point C has a higher pixel value on "
                 "the depth map, the answer is that point C is closer to the camera.")
    assert aurora_reference.depth_cot_qa(marks[1], tokens)[1].startswith(
        "Point A is located at (x = 276 y = 281),Point B is located at (x = 243 y = 203),"
        "Point C is located at (x = 98 y = 240),Point D is located at (x = 282 y = 119).The depth map")
    assert aurora_reference.depth_direct_qa(marks[2]) == (aurora_reference.DEPTH_QUESTION, "(A)")
    assert a.count("<DEPTH") == 102  # the notebook's assert

    atomic = [f"a{i}" for i in range(12)]
    reasoning = [f"{k}{i}" for i in (1, 2, 3) for k in ("d", "c")]
    schedule = aurora_reference.sequential_epochs(atomic, reasoning, total_length=10)
    assert [s for _, s in schedule] == [
        "a6", "a11", "a0", "a4", "a7", "a3", "a2", "a10", "a5", "a8", "a3", "a8", "a2", "a4", "a9", "a6", "a0", "a10",
        "a7", "a8", "a9", "a2", "a4", "a1", "a5", "a0", "a10", "a7", "a8", "a1", "a5", "a6", "a2", "a4", "a10", "a3",
        "a8", "a7", "a9", "a6", "a8", "a4", "a0", "a11", "a9", "a1", "a6", "a0", "a7", "d1", "c1", "d2", "c2", "d3",
        "c3", "a5", "a3", "a11", "d1", "c1", "d2", "c2", "d3", "c3", "a11", "a1", "d1", "c1", "d2", "c2", "d3", "c3",
        "a3", "d1", "c1", "d2", "c2", "d3", "c3"]
    assert [e for e, _ in schedule][:10] == [0] * 10 and [e for e, _ in schedule][-7:] == [9] * 7
    with pytest.raises(ValueError, match="atomic pool"):
        aurora_reference.sequential_epochs(atomic[:5], reasoning, total_length=10)


def _lvis_fixture():
    """Eight LVIS images (ids 11-18), categories 1 teddy_bear, 2 cup, 3 bus_(vehicle); one
    annotation per listed category in file order, ids from 100 upwards, boxes on the 336 grid
    ((3a) % 300, (5a) % 300, +20, +15) for annotation id a. Image 18's cup is not exhaustive."""
    spec = {11: [2, 1, 2], 12: [], 13: [3, 3, 1, 1], 14: [1] * 16, 15: [2], 16: [], 17: [1, 3, 3, 1], 18: [2, 2]}
    neg = {11: [3], 12: [1, 3], 13: [2], 14: [], 15: [1], 16: [2, 1], 17: [], 18: [1]}
    images, aid = [], 100
    for iid, cats in spec.items():
        anns = []
        for c in cats:
            anns.append((aid, c, ((aid * 3) % 300, (aid * 5) % 300, (aid * 3) % 300 + 20, (aid * 5) % 300 + 15)))
            aid += 1
        images.append(aurora_reference.CountImage(iid, f"{iid:012d}.jpg", tuple(anns), tuple(neg[iid]), (2,) if iid == 18 else ()))
    names = {1: "teddy_bear", 2: "cup", 3: "bus_(vehicle)"}
    plurals = {"teddy bear": "teddy bears", "cup": "cups", "bus (vehicle)": "buses"}
    return images, aurora_reference.plural_table(names, plurals, lambda n: n + "s")


def _records(pairs):
    return [aurora_reference.llava_record("-", f"coco/train2017/{c.file_name}", q, a) for c, q, a in pairs]


def test_counting_records_follow_create_bbox_annealing_data():
    """create_bbox_annealing_data.ipynb cells 2 and 4-7 on the LVIS fixture.

    Cell 2: image 18 loses its only (not exhaustive) category -> treated as having no
    annotations. Cell 4 (random.seed(0), shuffle of the 8 images, train_ids 11-15, 18):
    order 15, 12, 13, 11, 18 (14 has 16 teddy bears > 15: skipped). 15: one cup. 12:
    negative, random.sample([1, 3], 1) -> bus. 13: bus and teddy bear tie at 2 -> bus
    (first in annotation order). 11: two cups (annotations 100 and 102, in order). 18:
    negative -> teddy bears. Each kept image then draws random.choice over the 5 questions.
    Cell 5 (seed 0 again, cot_ids 16, 17): 16 negative -> sample([2, 1]) = teddy bear;
    17: teddy bear and bus tie at 2 -> teddy bear, annotations 124 and 127. Cell 7 with
    total_length = 4: epochs take 4,3,3,2,2,2,1,1,0,0 sampled atomic records; epochs 8-9
    add the 4 CoT-cell records (direct, CoT per image) once each; 26 records.
    """
    images, plural_of = _lvis_fixture()
    atomic, skipped = aurora_reference.select_count_images(images, [11, 12, 13, 14, 15, 18], plural_of, random.Random(0), atomic=True)
    assert skipped == {"more than 15 instances": 1}
    bbox = _records((c, q, aurora_reference.count_atomic_answer(c)) for c, q in atomic)
    expected_atomic = [
        ("000000000015.jpg", "Return the bounding boxes of cups.",
         "Here are the bounding boxes for the cups:\nBounding box 1: (<PIXEL_69>,<PIXEL_15>,<PIXEL_89>,<PIXEL_30>)"),
        ("000000000012.jpg", "Return the bounding boxes of buses.", "There are no buses in the image."),
        ("000000000013.jpg", "Find instances of buses in the image and return their bounding boxes.",
         "Here are the bounding boxes for the buses:\nBounding box 1: (<PIXEL_9>,<PIXEL_215>,<PIXEL_29>,<PIXEL_230>)\n"
         "Bounding box 2: (<PIXEL_12>,<PIXEL_220>,<PIXEL_32>,<PIXEL_235>)"),
        ("000000000011.jpg", "Please locate all of the cups in this image.",
         "Here are the bounding boxes for the cups:\nBounding box 1: (<PIXEL_0>,<PIXEL_200>,<PIXEL_20>,<PIXEL_215>)\n"
         "Bounding box 2: (<PIXEL_6>,<PIXEL_210>,<PIXEL_26>,<PIXEL_225>)"),
        ("000000000018.jpg", "Please locate all of the teddy bears in this image.", "There are no teddy bears in the image."),
    ]
    assert bbox == [aurora_reference.llava_record("-", f"coco/train2017/{f}", q, a) for f, q, a in expected_atomic]

    cot_choices, _ = aurora_reference.select_count_images(images, [16, 17], plural_of, random.Random(0), atomic=False)
    cot = _records([x for c, _ in cot_choices for x in ((c, *aurora_reference.count_direct_qa(c)), (c, *aurora_reference.count_cot_qa(c)))])
    cot_q = ("How many teddy bears are in the image?.\n To solve this, let\u2019s carefully analyze the image. First, "
             "identify the bounding boxes associated with the teddy bears. After that, count how many distinct bounding "
             "boxes correspond to teddy bears.")
    assert [(r["image"], r["conversations"][0]["value"], r["conversations"][1]["value"]) for r in cot] == [
        ("coco/train2017/000000000016.jpg", "<image>\nHow many teddy bears are in the image?", "0"),
        ("coco/train2017/000000000016.jpg", "<image>\n" + cot_q,
         "There are no teddy bears in the image. We conclude there are 0 teddy bears."),
        ("coco/train2017/000000000017.jpg", "<image>\nHow many teddy bears are in the image?", "2"),
        ("coco/train2017/000000000017.jpg", "<image>\n" + cot_q,
         "Based on the analysis, here are the bounding boxes for the teddy bears:\n"
         "Bounding box 1: (<PIXEL_72>,<PIXEL_20>,<PIXEL_92>,<PIXEL_35>)\n"
         "Bounding box 2: (<PIXEL_81>,<PIXEL_35>,<PIXEL_101>,<PIXEL_50>)\n"
         "Since there are 2 distinct bounding boxes and masks, we conclude there are 2 teddy bears."),
    ]
    assert cot_choices[1][0].annotation_ids == (124, 127)

    order = [s for _, s in aurora_reference.sequential_epochs([f"b{i}" for i in range(5)], [f"c{i}" for i in range(4)], total_length=4)]
    assert order == ["b3", "b4", "b0", "b1", "b4", "b3", "b1", "b2", "b3", "b1", "b4", "b1", "b4", "b1", "b2", "b1",
                     "b0", "b4", "c0", "c1", "c2", "c3", "c0", "c1", "c2", "c3"]
    # the notebooks' json.dump(indent=2) escapes non-ASCII: the CoT question's apostrophe is \u2019
    assert "let\\u2019s" in json.dumps(cot[1], indent=2)


def test_count_cap_per_value_and_negatives_without_categories():
    """max_per_count=1: the second image with the same count is skipped; a negative image
    with no neg_category_ids is skipped with a reason (the notebook's random.sample([], 1) raises)."""
    imgs = [aurora_reference.CountImage(i, f"{i}.jpg", ((i * 10, 1, (0, 0, 5, 5)),), (), ()) for i in (1, 2)]
    imgs.append(aurora_reference.CountImage(3, "3.jpg", (), (), ()))
    out, skipped = aurora_reference.select_count_images(imgs, [1, 2, 3], lambda c: "cats", random.Random(0), atomic=False, max_per_count=1)
    assert len(out) == 1 and out[0][0].num == 1
    assert skipped == {"count 1 already has 1 images": 1, "negative image without neg_category_ids": 1}
