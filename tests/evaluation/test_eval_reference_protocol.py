"""profile aurora evaluates as the paper and the reference do: BLINK 2-point depth and CV-Bench
counting asked without their answer choices, no box constraint on the counting model, and the
reference's numerics (fp16, LoRA merged, one question at a time: LLaVA builder.py:42,90,142-144,
eval/model_vqa.py:42-67). The project profile keeps the benchmarks' prompts and batched decoding."""

import numpy as np
import pytest
import torch

from evaluation.generate import GenerationSettings, build_question, generate_predictions
from evaluation.parsing import parse_answer
from evaluation.run import generation_settings, reference_numerics
from perception_tokens.images import encode_png
from pipeline_lib.settings import settings_from_dict

AURORA_ON_DEMO = {"profile": "aurora", "depth": {"preset": "custom", "teacher": "ground_truth"}, "vqvae": {"preset": "tiny"}}
BLINK_Q = "Which point is closer to the camera?"
CV_Q = "How many pictures are in the image?"


def _row(benchmark, subset, question, choices, gold="A"):
    letters = [chr(65 + i) for i in range(len(choices))]
    prompt = question + " Select from the following choices.\n" + "\n".join(f"({l}) {c}" for l, c in zip(letters, choices))
    rgb = np.random.default_rng(0).integers(0, 255, (40, 48, 3), dtype=np.uint8)
    return {"benchmark": benchmark, "subset": subset, "question_id": "1", "question": question, "prompt": prompt,
            "choices": choices, "valid_letters": letters, "gold": gold, "answer_type": "letter", "image_bytes": encode_png(rgb),
            "image_file": "1.png"}


def test_paper_prompts_drop_the_choices_for_blink_depth_and_cvbench_count_only():
    depth = _row("BLINK", "Relative_Depth", BLINK_Q, ["A", "B"])
    count = _row("CV-Bench", "Count", CV_Q, ["3", "2", "0", "1"], gold="B")
    relation = _row("CV-Bench", "Relation", "Is the lamp left of the bed?", ["left", "right"])
    assert build_question(depth, "direct", prompts="paper") == (BLINK_Q, "direct")
    assert build_question(count, "direct", prompts="paper") == (CV_Q, "direct")
    assert build_question(relation, "direct", prompts="paper")[0] == relation["prompt"]  # its choices are the task
    assert build_question(depth, "direct")[0] == depth["prompt"]  # project: the benchmark's prompt
    assert "(A) A" in depth["prompt"] and "(A) 3" in count["prompt"]
    # without choices the model answers a number or a point letter; parsing maps it onto the gold letter
    assert parse_answer("2", count) == "B" and parse_answer("(A)", depth) == "A"


def test_aurora_settings_select_the_reference_protocol_and_project_keeps_its_own():
    aurora = generation_settings(settings_from_dict(AURORA_ON_DEMO).evaluation, "adapter")
    assert (aurora.prompts, aurora.constrain_boxes, aurora.numerics, aurora.batch_size) == ("paper", False, "reference", 1)
    project = generation_settings(settings_from_dict({}).evaluation, "adapter")
    assert (project.prompts, project.constrain_boxes, project.numerics, project.batch_size) == ("benchmark", True, "project", 8)
    with pytest.raises(ValueError, match="batch_size 1"):
        GenerationSettings(numerics="reference", batch_size=8)


def test_reference_numerics_merge_the_lora_and_run_in_fp16():
    from peft import LoraConfig, get_peft_model

    from training.finetune.tokens import add_perception_tokens
    from training.llava.model import load_llava

    model, processor = load_llava("tiny")
    add_perception_tokens(model, processor.tokenizer)
    lora = get_peft_model(model, LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], init_lora_weights=False))
    lora.eval()
    x = torch.randint(3, 100, (1, 6))
    with torch.no_grad():
        expected = lora(input_ids=x).logits.float()
    merged = reference_numerics(lora)
    assert not any("lora_" in n for n, _ in merged.named_parameters())  # merged into the base weights
    assert {p.dtype for p in merged.parameters()} == {torch.float16}
    with torch.no_grad():
        got = merged(input_ids=x).logits.float()
    assert torch.allclose(got, expected, atol=0.05, rtol=0.05)  # the same model, at fp16 precision
    settings = GenerationSettings(mode="direct", ablation="none", constrained=True, constrain_boxes=False, numerics="reference",
                                  batch_size=1, max_new_tokens=4)
    (out,) = generate_predictions(merged, processor, [_row("CV-Bench", "Count", CV_Q, ["3", "2"])], settings, progress=False)
    assert out["error"] is None and out["gen_numerics"] == "reference"
