"""English plurals for category names in counting prompts ("How many buses ...").

A small table of irregular and invariant nouns plus the usual suffix rules; no
network, no NLP package. LVIS names ("ball_(toy)", "teddy_bear") are cleaned first.
Multiword names pluralise their head noun: the last word ("teddy bear" -> "teddy
bears"), or the word before "of" ("bottle of wine" -> "bottles of wine").
"""

from __future__ import annotations

import re

IRREGULAR = {
    "person": "people",
    "man": "men",
    "woman": "women",
    "child": "children",
    "mouse": "mice",
    "goose": "geese",
    "foot": "feet",
    "tooth": "teeth",
    "ox": "oxen",
    "louse": "lice",
    "die": "dice",
    "knife": "knives",
    "wife": "wives",
    "life": "lives",
    "leaf": "leaves",
    "loaf": "loaves",
    "half": "halves",
    "shelf": "shelves",
    "wolf": "wolves",
    "calf": "calves",
    "thief": "thieves",
    "elf": "elves",
    "scarf": "scarves",
    "hoof": "hooves",
    "cactus": "cacti",
    "fungus": "fungi",
    "potato": "potatoes",
    "tomato": "tomatoes",
    "hero": "heroes",
    "mango": "mangoes",
    "volcano": "volcanoes",
    "torpedo": "torpedoes",
    "domino": "dominoes",
    "echo": "echoes",
    "quiz": "quizzes",
    "stomach": "stomachs",
    "monarch": "monarchs",
    "matriarch": "matriarchs",
}

# Same form in singular and plural, or names that are already plural.
INVARIANT = {
    "sheep", "deer", "fish", "moose", "bison", "salmon", "trout", "shrimp", "squid",
    "aircraft", "spacecraft", "series", "species", "cattle", "police", "offspring",
    "scissors", "glasses", "sunglasses", "eyeglasses", "goggles", "binoculars", "pliers",
    "tongs", "tweezers", "pants", "trousers", "shorts", "jeans", "pajamas", "clothes",
    "headphones", "earphones", "earmuffs", "suspenders", "overalls", "chopsticks",
    "broccoli", "lettuce", "cauliflower", "asparagus", "spinach", "corn", "rice",
    "popcorn", "equipment", "furniture", "luggage", "underwear", "swimwear", "footwear",
    "headwear", "beef", "pork", "bread", "cheese", "sushi", "hummus", "tofu", "jewelry",
}

# Words ending in "man" that do not take "men".
_MAN_EXCEPTIONS = {"human", "shaman", "talisman", "caiman", "german", "ottoman", "walkman", "doberman"}

_VOWELS = set("aeiou")


def clean_category_name(name: str) -> str:
    """LVIS/COCO category name -> plain words: "ball_(toy)" -> "ball", "teddy_bear" -> "teddy bear".

    Drops parenthesised qualifiers, turns underscores into spaces, collapses whitespace.
    Raises ValueError when nothing is left.
    """
    text = re.sub(r"\([^)]*\)", " ", name)
    text = text.replace("_", " ")
    text = " ".join(text.split())
    if not text:
        raise ValueError(f"category name {name!r} is empty after cleaning")
    return text


def _pluralize_word(word: str) -> str:
    lower = word.lower()
    if lower in INVARIANT:
        return word
    if lower in IRREGULAR:
        plural = IRREGULAR[lower]
        return plural.capitalize() if word[:1].isupper() else plural
    # Compounds ending in an irregular noun: "fireman", "snowman", "salesperson", "grandchild".
    for singular, plural in (("woman", "women"), ("man", "men"), ("person", "people"), ("child", "children")):
        if lower.endswith(singular) and len(lower) > len(singular):
            if singular == "man" and lower in _MAN_EXCEPTIONS:
                break
            return word[: -len(singular)] + plural
    if lower.endswith(("s", "x", "z", "ch", "sh")):
        return word + "es"
    if lower.endswith("y") and len(lower) > 1 and lower[-2] not in _VOWELS:
        return word[:-1] + "ies"
    return word + "s"


def pluralize(noun: str) -> str:
    """Plural of a (cleaned or raw LVIS) noun phrase: "bus" -> "buses", "teddy bear" -> "teddy bears"."""
    phrase = clean_category_name(noun)
    words = phrase.split(" ")
    if "of" in words[1:]:
        head = words.index("of", 1) - 1  # "bottle of wine": pluralise "bottle"
    else:
        head = len(words) - 1
    words[head] = _pluralize_word(words[head])
    return " ".join(words)
