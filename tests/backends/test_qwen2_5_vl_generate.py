"""Benchmark generation (evaluation/generate.py) on the tiny Qwen2.5-VL: Qwen prompts, ablation prefixes
placed as in training, and constrained decoding against an adversary that pushes perception tokens."""

import numpy as np
import pytest

from evaluation.generate import GenerationSettings, answer_separator, generate_predictions
from perception_tokens.images import encode_png
from evaluation.perception_bias import PerceptionTokenBias
from perception_tokens.vocab import decode_depth
from training.backends import get_backend
from training.backends.qwen2_5_vl.model import QWEN_PERCEPTION_TOKENS
from training.finetune.config import FinetuneConfig

HB_Q = "Multiple points are circled on the image, labeled by letters beside each circle. Which point is the closest to the camera?"


pytestmark = pytest.mark.usefixtures("single_torch_thread")  # restored after the module


@pytest.fixture(scope="module")
def qwen():
    backend = get_backend("qwen2_5_vl")
    model, processor = backend.load("tiny")
    backend.add_tokens(model, processor, FinetuneConfig())
    return model.eval(), processor


def row(qid, size=(40, 48)):
    rgb = np.random.default_rng(qid).integers(0, 255, (*size, 3), dtype=np.uint8)
    return {"benchmark": "HardBLINK", "subset": "3points", "question_id": str(qid), "question": HB_Q, "prompt": HB_Q,
            "choices": None, "valid_letters": list("ABC"), "gold": "A", "image_bytes": encode_png(rgb),
            "image_file": f"{qid}.png", "answer_type": "letter", "oracle_depth": list(range(100))}


def test_answer_separator_follows_each_template():
    assert answer_separator("USER: <image>\nq ASSISTANT:") == " "
    assert answer_separator("<|im_start|>assistant\n") == ""


def test_oracle_prefix_starts_right_after_the_qwen_assistant_header(qwen):
    model, processor = qwen
    out = generate_predictions(model, processor, [row(1)], GenerationSettings(ablation="oracle", max_new_tokens=4),
                               progress=False)[0]
    assert out["error"] is None
    assert out["prompt_text"].endswith("<|im_start|>assistant\n" + out["answer_prefix"])  # no space, as in training
    assert out["depth_spans_valid"] == [True] and decode_depth(out["depth_spans"][0]) == list(range(100))


def test_constrained_decoding_keeps_qwen_answers_wellformed_under_pressure(qwen):
    model, processor = qwen
    rows = [row(1), row(2, (120, 60)), row(3, (30, 90))]  # different aspect ratios -> different image token counts
    settings = GenerationSettings(mode="cot", max_new_tokens=110, batch_size=3)
    out = generate_predictions(model, processor, rows, settings, progress=False,
                               extra_logits_processors=[PerceptionTokenBias(processor.tokenizer, tokens=QWEN_PERCEPTION_TOKENS)])
    assert [o["error"] for o in out] == [None, None, None]
    for o in out:
        assert o["depth_spans"], o["raw_output"][:120]
        assert all(o["depth_spans_valid"])
        assert decode_depth(o["depth_spans"][0]) is not None
