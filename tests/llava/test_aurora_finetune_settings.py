"""Aurora's fine-tune and evaluation settings: conversation templates, 336 nearest squash,
profile defaults, counting CoT instruction."""


import numpy as np
import pytest
import torch
from PIL import Image

from assets.versioning import code_version
from evaluation.generate import build_prompt, build_question
from perception_tokens.llava_conversation import chat_template, render_prompt
from pipeline_lib.settings import settings_from_dict
from training.llava.data import ConversationDataset, render_with_targets, to_messages
from training.llava.model import load_llava


@pytest.fixture(scope="module")
def processor():
    _, proc = load_llava("tiny")
    return proc


def test_templates_are_the_reference_conversations():
    """conversation.py, SeparatorStyle.TWO: ``system + sep`` then ``role + ": " + message + seps[i % 2]``
    per turn with sep=" ", sep2="</s>"; a None message renders ``role + ":"``. vicuna_v1 (training,
    --version v1) and llava_v1 (model_vqa.py --conv-mode) differ only in "user" vs "human"."""
    q = "<image>\nWhich point is the closest to the camera?"
    assert render_prompt("vicuna_v1", q[8:], "(A)") == (
        "A chat between a curious user and an artificial intelligence assistant. The assistant gives helpful, detailed, "
        "and polite answers to the user's questions. USER: " + q + " ASSISTANT: (A)</s>")
    assert render_prompt("llava_v1", q[8:]) == (
        "A chat between a curious human and an artificial intelligence assistant. The assistant gives helpful, detailed, "
        "and polite answers to the human's questions. USER: " + q + " ASSISTANT:")
    with pytest.raises(ValueError, match="unknown conversation template"):
        render_prompt("mpt", "q")


def test_chat_template_renders_training_text_and_targets(processor):
    proc = processor
    saved = proc.chat_template
    try:
        proc.chat_template = chat_template("vicuna_v1", proc.image_token)
        msgs = to_messages([{"from": "human", "value": "<image>\nHow many cups are in the image?"},
                            {"from": "gpt", "value": "2"}])
        text, targets = render_with_targets(proc, msgs)
        eos = proc.tokenizer.eos_token
        assert text == render_prompt("vicuna_v1", "How many cups are in the image?", "2").replace("</s>", eos)
        assert [text[s:e] for s, e in targets] == [" 2" + eos]  # only the answer (and eos) is learned
        assert build_prompt(proc, "Q?") == render_prompt("vicuna_v1", "Q?")  # "adapter": the saved template
    finally:
        proc.chat_template = saved
    assert build_prompt(proc, "Q?", "llava_v1") == render_prompt("llava_v1", "Q?")


def test_images_are_squashed_to_336_nearest_before_the_processor(processor, tmp_path):
    """train.py:721: ``image.resize((336, 336), resample=NEAREST)`` before ``processor.preprocess``;
    a wide image keeps its edges (no centre crop) -- a red column at the far right survives."""
    rgb = np.zeros((120, 480, 3), np.uint8)
    rgb[:, -8:] = (255, 0, 0)
    Image.fromarray(rgb).save(tmp_path / "wide.png")
    rec = [{"id": "r", "image": "wide.png", "conversations": [{"from": "human", "value": "<image>\nQ"}, {"from": "gpt", "value": "A"}]}]
    squashed = ConversationDataset(rec, tmp_path, processor, image_size=336)[0]["pixel_values"]
    expected = processor.image_processor(images=[Image.fromarray(rgb).resize((336, 336), Image.NEAREST)],
                                         return_tensors="pt")["pixel_values"][0]
    assert torch.equal(squashed, expected)
    cropped = ConversationDataset(rec, tmp_path, processor)[0]["pixel_values"]
    assert squashed[0, :, -1].mean() > cropped[0, :, -1].mean()  # red survives at the right edge only when squashed


def test_counting_cot_instruction_aurora():
    """create_bbox_annealing_data.ipynb cell 5's CoT question = question + ".\\n To solve this, ..."."""
    row = {"benchmark": "BLINK", "subset": "Counting", "prompt": "How many cups are in the image?",
           "question": "How many cups are in the image?"}
    q, mode = build_question(row, "cot", "aurora")
    assert mode == "cot" and q == (
        "How many cups are in the image?.\n To solve this, let\u2019s carefully analyze the image. First, identify the "
        "bounding boxes associated with the cups. After that, count how many distinct bounding boxes correspond to cups.")
    assert build_question(row, "cot")[0].startswith("How many cups are in the image?\n")


def test_aurora_profile_defaults_and_overrides():
    s = settings_from_dict({"profile": "aurora", "finetune": {"lora_r": 8},
                            "depth": {"checkpoint": "depth_anything_vits14.pth"}})  # the aurora teacher needs its weights file
    assert (s.finetune.conversation, s.finetune.image_resize, s.finetune.new_token_mode) == (
        "vicuna_v1", "squash336_nearest", "modules_to_save")
    assert (s.evaluation.max_new_tokens, s.evaluation.conversation, s.evaluation.count_cot_instruction) == (1024, "llava_v1", "aurora")
    assert s.finetune.lora_r == 8
    p = settings_from_dict({})
    assert (p.finetune.conversation, p.finetune.image_resize, p.evaluation.max_new_tokens, p.curriculum.style) == (
        "plain", "processor", 160, "project")
    assert code_version("1", s.curriculum) != code_version("1", p.curriculum)  # switching profile marks the stage stale
    with pytest.raises(ValueError, match="profile"):
        settings_from_dict({"profile": "paper"})
