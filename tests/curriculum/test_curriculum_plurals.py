"""Plurals of category names for counting prompts."""

import pytest

from perception_tokens.curriculum import clean_category_name, pluralize


@pytest.mark.parametrize(
    "noun, plural",
    [
        ("bus", "buses"),
        ("knife", "knives"),
        ("person", "people"),
        ("mouse", "mice"),
        ("sheep", "sheep"),
        ("box", "boxes"),
        ("cherry", "cherries"),
        ("teddy bear", "teddy bears"),
        ("teddy_bear", "teddy bears"),
        ("ball_(toy)", "balls"),
        ("bow_(weapon)", "bows"),
        ("bottle_of_wine", "bottles of wine"),
        ("toy", "toys"),
        ("watch", "watches"),
        ("brush", "brushes"),
        ("snowman", "snowmen"),
        ("human", "humans"),
        ("scissors", "scissors"),
        ("shelf", "shelves"),
        ("roof", "roofs"),
        ("tomato", "tomatoes"),
        ("piano", "pianos"),
        ("child", "children"),
        ("cactus", "cacti"),
        ("broccoli", "broccoli"),
    ],
)
def test_pluralize(noun, plural):
    assert pluralize(noun) == plural


def test_clean_category_name():
    assert clean_category_name("ball_(toy)") == "ball"
    assert clean_category_name("  hair_drier ") == "hair drier"
    assert clean_category_name("cover_(sock)_x") == "cover x"
    with pytest.raises(ValueError, match="empty"):
        clean_category_name("(nothing)")
