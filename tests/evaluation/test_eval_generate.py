"""Generation on a tiny LLaVA (same classes as LLaVA-1.5): prompts, constraints, ablations, padding."""

import re

import numpy as np
import pytest

from evaluation.generate import (
    GenerationSettings,
    build_prompt,
    build_question,
    counted_plural,
    generate_predictions,
    random_depth_span,
)
from perception_tokens.curriculum.templates import COUNT_COT_INSTRUCTION, DEPTH_COT_INSTRUCTION
from perception_tokens.images import encode_png
from evaluation.perception_bias import PerceptionTokenBias
from perception_tokens.vocab import DEPTH_START, decode_depth, encode_depth

llava = pytest.importorskip("training.llava.model", reason="training/llava/model.py (load_llava) not available")
tokens = pytest.importorskip("training.finetune.tokens", reason="training/finetune/tokens.py not available")

HB_Q = "Multiple points are circled on the image, labeled by letters beside each circle. Which point is the closest to the camera?"


def row(qid, benchmark="HardBLINK", subset="3points", prompt=HB_Q, answer_type="letter", value=0, **extra):
    rgb = np.random.default_rng(value).integers(0, 255, (40, 48, 3), dtype=np.uint8)
    return {"benchmark": benchmark, "subset": subset, "question_id": str(qid), "question": prompt, "prompt": prompt,
            "choices": None, "valid_letters": list("ABC") if answer_type == "letter" else [], "gold": "A",
            "image_bytes": encode_png(rgb), "image_file": f"{qid}.png", "answer_type": answer_type, **extra}


@pytest.fixture(scope="module")
def tiny():
    model, processor = llava.load_llava("tiny")
    tokens.add_perception_tokens(model, processor.tokenizer)
    model.eval()
    return model, processor


def stray_perception_tokens(text: str) -> int:
    """Perception tokens outside a valid depth span or a complete point/box group."""
    for span in re.findall(r"<DEPTH_START>.*?<DEPTH_END>", text):
        decode_depth(span)
        text = text.replace(span, " ", 1)
    text = re.sub(r"\((?:<PIXEL_\d+>,){1,3}<PIXEL_\d+>\)", " ", text)
    text = re.sub(r"\((?:<PIXEL_\d+>,?)+$", " ", text)  # cut by the length limit
    return len(re.findall(r"<(?:DEPTH|PIXEL)_", text))


def test_questions_and_prompt_format(tiny):
    _, processor = tiny
    q, used = build_question(row(0), "cot")
    assert used == "cot" and q == HB_Q + "\n" + DEPTH_COT_INSTRUCTION
    count = row(1, "SEED-Count", "count", "How many teddy bears are in the image?", "number")
    q, used = build_question(count, "cot")
    assert q.endswith(COUNT_COT_INSTRUCTION.format(plural="teddy bears"))
    assert build_question(row(2, "BLINK", "Art_Style"), "cot")[1] == "direct"
    assert build_question(row(0), "direct") == (HB_Q, "direct")
    assert counted_plural("What is this?") == "objects"
    assert build_prompt(processor, "Q?") == "USER: <image>\nQ? ASSISTANT:"


def test_constrained_generation_gives_one_well_formed_depth_map(tiny):
    model, processor = tiny
    rows = [row(0), row(1, "BLINK", "Relative_Depth", "Which point is closer?\n(A) A\n(B) B", valid_letters=["A", "B"], value=1)]
    push = [PerceptionTokenBias(processor.tokenizer)]
    settings = GenerationSettings(mode="cot", max_new_tokens=106, batch_size=2)
    out = generate_predictions(model, processor, rows, settings, extra_logits_processors=push, progress=False)
    for o in out:
        assert o["generated_text"].startswith(DEPTH_START)
        assert o["depth_spans_valid"] == [True]
        assert stray_perception_tokens(o["raw_output"]) == 0
        assert o["latency_s"] > 0 and o["n_new_tokens"] <= 106 and o["mode_used"] == "cot"
        assert "image_bytes" not in o
    free = generate_predictions(model, processor, rows[:1], GenerationSettings(mode="cot", max_new_tokens=40, constrained=False),
                                extra_logits_processors=push, progress=False)
    assert all(stray_perception_tokens(o["raw_output"]) > 0 for o in free)


def test_left_padding_gives_the_same_answer_as_alone(tiny):
    model, processor = tiny
    short, long = row(0), row(1, "BLINK", "Relative_Depth", "Which point is closer to the camera? " * 3, value=1)
    settings = GenerationSettings(mode="direct", max_new_tokens=8, batch_size=2, constrained=False)
    together = generate_predictions(model, processor, [short, long], settings, progress=False)
    alone = generate_predictions(model, processor, [short], settings, progress=False)
    assert together[0]["generated_text"] == alone[0]["generated_text"]
    assert processor.tokenizer.padding_side == "right"  # restored


def test_ablations(tiny):
    model, processor = tiny
    oracle_codes = [7] * 100
    rows = [row(0, oracle_depth=oracle_codes), row(1), row(2, "SEED-Count", "count", "How many cups are in the image?", "number")]
    push = [PerceptionTokenBias(processor.tokenizer)]

    def run(ablation):
        s = GenerationSettings(ablation=ablation, max_new_tokens=4, batch_size=3)
        return generate_predictions(model, processor, rows, s, extra_logits_processors=push, progress=False)

    oracle = run("oracle")
    assert oracle[0]["answer_prefix"] == f"The depth map for the image is {encode_depth(oracle_codes)}."
    assert oracle[0]["raw_output"].startswith(oracle[0]["answer_prefix"])
    assert DEPTH_START not in oracle[0]["generated_text"]  # one depth map per answer, prefix included
    assert oracle[0]["depth_spans"] == [encode_depth(oracle_codes)]
    assert oracle[1]["error"] == "no oracle depth tokens for this row" and oracle[1]["raw_output"] is None
    assert "relative-depth rows only" in oracle[2]["error"]

    rand = run("random")
    assert rand[0]["answer_prefix"] == f"The depth map for the image is {random_depth_span(0, rows[0])}."
    assert rand[0]["answer_prefix"] != rand[1]["answer_prefix"]
    assert random_depth_span(0, rows[0]) == random_depth_span(0, rows[0]) != random_depth_span(1, rows[0])

    broken = dict(rows[1], image_bytes=b"\x89PNG\r\n\x1a\n truncated")
    out = generate_predictions(model, processor, [broken, rows[1]], GenerationSettings(max_new_tokens=2), progress=False)
    assert out[0]["error"].startswith("image does not decode") and out[1]["error"] is None

    none = run("none")
    assert all(o["mode_used"] == "direct" and o["answer_prefix"] == "" for o in none)
    assert DEPTH_COT_INSTRUCTION not in none[0]["prompt_text"]
    normal = run("normal")
    assert DEPTH_COT_INSTRUCTION in normal[0]["prompt_text"] and normal[0]["generated_text"].startswith(DEPTH_START)
