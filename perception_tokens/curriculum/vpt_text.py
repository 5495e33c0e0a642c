"""VPT's question and answer wording, in one place (VPT, arXiv 2502.17425).

The paper builds its training data from existing VQA sets (Sec. 4.1: DocVQA, TextVQA, CUB-200, ...)
whose answers it prefixes with the perception tokens; it prints no template for this project's
sources. Every string below is this project's choice (docs/FIDELITY.md, "VPT"): questions whose
answer needs a closer look at one object (a referred one from RefCOCO, a small one from LVIS), and
plain questions without a perception token, mixed so the model learns when to trigger. The
curriculum imports from here; an evaluation asking the same questions should too.
"""

from __future__ import annotations

# Region selection: the answer first names the object's region on the k x k grid
# (<REGION_START><REGION_X_a><REGION_Y_b><REGION_X_c><REGION_Y_d><REGION_END>), the crop of that region
# is inserted, then the answer follows.
REGION_REFERRED_QUESTION = 'Look closely at "{expression}". What kind of object is it?'
REGION_SMALL_QUESTION = "There is a small object in the picture. Is it a {first} or a {second}?"
# Re-encoding: the answer starts with <REENCODE_CONTROL> (its hidden state keys the DINOv2 projector).
REENCODE_QUESTION = 'What kind of object is "{expression}"?'
# Plain: no perception token.
PLAIN_QUESTION = "Is there a {category} in the picture? Answer yes or no."
PLAIN_YES = "Yes."

# The text after the perception tokens (one space after them).
OBJECT_ANSWER = "It is a {category}."
ANSWER_SEPARATOR = " "
