"""Category tables that tie the demo scene categories to the real datasets' label spaces.

Ids, names and synsets are the real ones (LVIS v1 category ids, COCO-2014/2017 ids,
ADE20K SceneParsing-150 indices as in ``objectInfo150.txt``, 1-based with 0 = other),
so code written against the demo data runs unchanged on the real files.
"""

from __future__ import annotations

from dataclasses import dataclass

from .scenes import CATEGORIES

__all__ = [
    "CategoryInfo",
    "SCENE_CATEGORY_INFO",
    "LVIS_EXTRA_CATEGORIES",
    "ADE_OTHER",
    "ADE_WALL",
    "ADE_FLOOR",
    "ADE_CEILING",
    "COCO_LICENSES",
]


@dataclass(frozen=True)
class CategoryInfo:
    scene_name: str  # name used by perception_tokens.demo.scenes
    lvis_id: int
    lvis_name: str
    synset: str
    synonyms: tuple[str, ...]
    definition: str
    frequency: str  # LVIS frequency bucket of the real dataset: 'f' / 'c' / 'r'
    coco_id: int
    coco_name: str
    coco_supercategory: str
    ade_index: int  # ADE20K-150 class index (1-based)
    words: tuple[str, ...]  # nouns used in referring expressions


SCENE_CATEGORY_INFO: dict[str, CategoryInfo] = {
    c.scene_name: c
    for c in (
        CategoryInfo("ball", 41, "ball", "ball.n.06", ("ball",),
                     "a spherical object used as a plaything", "f",
                     37, "sports ball", "sports", 120, ("ball",)),
        CategoryInfo("bottle", 133, "bottle", "bottle.n.01", ("bottle",),
                     "a glass or plastic vessel used for storing drinks or other liquids", "f",
                     44, "bottle", "kitchen", 99, ("bottle",)),
        CategoryInfo("cup", 344, "cup", "cup.n.01", ("cup",),
                     "a small open container usually used for drinking; usually has a handle", "f",
                     47, "cup", "kitchen", 148, ("cup", "mug")),
        CategoryInfo("chair", 232, "chair", "chair.n.01", ("chair",),
                     "a seat for one person, with a support for the back", "f",
                     62, "chair", "furniture", 20, ("chair", "seat")),
        CategoryInfo("book", 127, "book", "book.n.01", ("book",),
                     "a written work or composition that has been published", "f",
                     84, "book", "indoor", 68, ("book",)),
        CategoryInfo("teddy_bear", 1071, "teddy_bear", "teddy.n.01", ("teddy_bear", "teddy", "teddy_bear_toy"),
                     "plaything consisting of a child's toy bear (usually plush and stuffed with soft materials)",
                     "f", 88, "teddy bear", "indoor", 109, ("teddy bear", "bear", "teddy")),
    )
}
assert tuple(SCENE_CATEGORY_INFO) == CATEGORIES, "catalog must cover exactly the scene categories"

# LVIS categories that never appear in the demo scenes: used as verified-negative labels.
LVIS_EXTRA_CATEGORIES: tuple[dict, ...] = (
    {"id": 3, "name": "airplane", "synset": "airplane.n.01", "synonyms": ["airplane", "aeroplane"],
     "def": "an aircraft that has a fixed wing and is powered by propellers or jets", "frequency": "f"},
    {"id": 45, "name": "banana", "synset": "banana.n.02", "synonyms": ["banana"],
     "def": "elongated crescent-shaped yellow fruit with soft sweet flesh", "frequency": "f"},
    {"id": 94, "name": "bicycle", "synset": "bicycle.n.01", "synonyms": ["bicycle"],
     "def": "a wheeled vehicle that has two wheels and is moved by foot pedals", "frequency": "f"},
    {"id": 225, "name": "cat", "synset": "cat.n.01", "synonyms": ["cat"],
     "def": "a domestic house cat", "frequency": "f"},
    {"id": 496, "name": "giraffe", "synset": "giraffe.n.01", "synonyms": ["giraffe"],
     "def": "tall animal having a spotted coat and small horns and very long neck and legs", "frequency": "f"},
    {"id": 664, "name": "mammoth", "synset": "mammoth.n.01", "synonyms": ["mammoth"],
     "def": "any of numerous extinct elephants widely distributed in the Pleistocene", "frequency": "r"},
)

ADE_OTHER = 0
ADE_WALL = 1
ADE_FLOOR = 4
ADE_CEILING = 6

# A subset of COCO's real license table (ids as in the COCO json files).
COCO_LICENSES: tuple[dict, ...] = (
    {"url": "http://creativecommons.org/licenses/by-nc-sa/2.0/", "id": 1,
     "name": "Attribution-NonCommercial-ShareAlike License"},
    {"url": "http://creativecommons.org/licenses/by/2.0/", "id": 4, "name": "Attribution License"},
    {"url": "http://creativecommons.org/licenses/by-sa/2.0/", "id": 5, "name": "Attribution-ShareAlike License"},
)
