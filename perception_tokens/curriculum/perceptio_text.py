"""Perceptio's instruction and answer wording, in one place (Perceptio, arXiv 2603.18795).

The paper fixes the order of the output (sec. 3.2: the segmentation block ``[SEG]``, then the
depth block ``<DEPTH_START> ... <DEPTH_END>``, then the text answer) and says each RefCOCO/+/g
expression becomes one instruction-output sample with the mask, the image's depth tokens and a
"concise, attribute-focused one-sentence object description" (sec. 3.5, dataset curation), and
that inference uses "lightweight prompt templates with special tokens" (sec. 3.2). It does not
print the templates: every string below is this project's choice (docs/FIDELITY.md, "Perceptio").

The curriculum (training data) and the evaluation (prompts at test time) both import from here,
so the model is asked at test time exactly as it was taught.
"""

from __future__ import annotations

from perception_tokens.token_kinds import SEG_TOKEN
from perception_tokens.vocab import DEPTH_END, DEPTH_START, TokenParseError, decode_depth

# A referring-expression sample: the question names the phrase; the answer is the perception
# prefix and then the one-sentence description.
REFER_QUESTION = (
    "Segment the object that this phrase refers to: \"{expression}\". "
    "Then give the depth map of the image and describe the object in one sentence."
)
# The paper's description comes from a captioner it does not name; without one, the sentence is
# built from the expression itself (the demo world's expressions are attribute phrases).
DESCRIPTION_FROM_EXPRESSION = "It is the {expression}."

# Asked after any other question (HardBLINK, BLINK ...) so the model emits its perception first.
PERCEPTION_INSTRUCTION = "First segment the relevant object and give the depth map of the image, then answer."


def refer_question(expression: str) -> str:
    return REFER_QUESTION.format(expression=expression.strip())


def perception_prefix(depth_span: str) -> str:
    """``[SEG] <DEPTH_START>...<DEPTH_END>``: what precedes every Perceptio answer."""
    return f"{SEG_TOKEN} {depth_span}"


def refer_answer(depth_span: str, description: str) -> str:
    return f"{perception_prefix(depth_span)} {description.strip()}"


def description_from_expression(expression: str) -> str:
    return DESCRIPTION_FROM_EXPRESSION.format(expression=expression.strip().rstrip("."))


def with_perception_instruction(question: str) -> str:
    return f"{question.rstrip()}\n{PERCEPTION_INSTRUCTION}"


def well_ordered_answer(text: str) -> bool:
    """True iff ``text`` is ``[SEG]``, then exactly one valid depth span, then a non-empty answer with no
    perception token in it: the order Perceptio trains and the curriculum's checks and the fine-tune's
    probe measure (sec. 3.2, eq. 1)."""
    rest = text.strip()
    if not rest.startswith(SEG_TOKEN):
        return False
    rest = rest[len(SEG_TOKEN):].lstrip()
    end = rest.find(DEPTH_END)
    if not rest.startswith(DEPTH_START) or end < 0:
        return False
    try:
        decode_depth(rest[: end + len(DEPTH_END)])
    except TokenParseError:
        return False
    answer = rest[end + len(DEPTH_END):].strip()
    return bool(answer) and not any(t in answer for t in (SEG_TOKEN, DEPTH_START, DEPTH_END, "<DEPTH_"))
