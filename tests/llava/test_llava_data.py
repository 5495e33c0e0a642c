"""Conversation encoding: assistant-only labels, processor-identical ids, order kept, bad input named."""

import copy
import json

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader

from perception_tokens.vocab import encode_depth
from training.llava.data import (
    IGNORE_INDEX,
    ConversationDataset,
    LlavaCollator,
    RecordError,
    curriculum_sampler,
    encode_conversation,
    generation_prompt,
    load_records,
    render,
    render_with_targets,
    to_messages,
)
from training.finetune.tokens import add_perception_tokens
from training.llava.model import load_llava

QUESTION = "What is the depth map for the image?"
ANSWER = encode_depth([(37 * i) % 128 for i in range(100)])


@pytest.fixture(scope="module")
def processor():
    model, proc = load_llava("tiny")
    add_perception_tokens(model, proc.tokenizer)
    return proc


@pytest.fixture()
def image():
    return Image.fromarray(np.random.default_rng(0).integers(0, 256, (56, 56, 3), dtype=np.uint8))


def record(i, answer=ANSWER, image="img.png"):
    return {
        "id": f"r{i}",
        "image": image,
        "conversations": [{"from": "human", "value": "<image>\n" + QUESTION}, {"from": "gpt", "value": answer}],
    }


def test_render_is_llava15_format(processor):
    text, targets = render_with_targets(processor, to_messages(record(0, answer="Two.")["conversations"]))
    assert text == f"USER: <image>\n{QUESTION} ASSISTANT: Two.</s>"
    assert [text[s:e] for s, e in targets] == [" Two.</s>"]
    assert generation_prompt(processor, QUESTION) == f"USER: <image>\n{QUESTION} ASSISTANT:"


def test_fallback_without_chat_template_renders_the_same(processor):
    bare = copy.copy(processor)
    bare.chat_template = None
    messages = to_messages(record(0)["conversations"])
    assert render(bare, messages) == render(processor, messages)
    assert render_with_targets(bare, messages) == render_with_targets(processor, messages)


def test_labels_mask_exactly_the_prompt(processor, image):
    messages = to_messages(record(0)["conversations"])
    enc = encode_conversation(processor, messages, image)
    ids, labels = enc["input_ids"], enc["labels"]
    full_text, _ = render_with_targets(processor, messages)
    reference = processor(images=[image], text=full_text, return_tensors="pt")
    assert torch.equal(reference["input_ids"][0], ids)  # same ids as the processor itself
    assert torch.allclose(reference["pixel_values"][0], enc["pixel_values"])
    prompt_ids = processor(images=[image], text=generation_prompt(processor, QUESTION))["input_ids"][0]
    n_prompt = len(prompt_ids)
    assert ids[:n_prompt].tolist() == list(prompt_ids)
    assert (labels[:n_prompt] == IGNORE_INDEX).all()
    assert torch.equal(labels[n_prompt:], ids[n_prompt:])  # the whole answer + eos is learned
    assert processor.tokenizer.decode(labels[n_prompt:]) == " " + ANSWER + "</s>"
    image_positions = ids == processor.image_token_id
    assert int(image_positions.sum()) == 16 and (labels[image_positions] == IGNORE_INDEX).all()
    assert len(labels) - n_prompt == 1 + 102 + 1  # space, span, eos


def test_multi_turn_masks_every_user_turn(processor, image):
    conv = [
        {"from": "human", "value": "<image>\nHow many cups?"},
        {"from": "gpt", "value": "Two."},
        {"from": "human", "value": "And plates?"},
        {"from": "gpt", "value": "Three."},
    ]
    enc = encode_conversation(processor, to_messages(conv), image)
    learned = enc["labels"][enc["labels"] != IGNORE_INDEX]
    assert processor.tokenizer.decode(learned) == " Two.</s> Three.</s>"
    assert "And plates" not in processor.tokenizer.decode(learned)


def test_collator_pads_and_masks(processor, image):
    a = encode_conversation(processor, to_messages(record(0, answer="Two.")["conversations"]), image)
    b = encode_conversation(processor, to_messages(record(1)["conversations"]), image)
    batch = LlavaCollator(pad_token_id=processor.tokenizer.pad_token_id)([a, b])
    n_a, n_b = len(a["input_ids"]), len(b["input_ids"])
    assert batch["input_ids"].shape == (2, max(n_a, n_b)) and n_a < n_b
    assert (batch["input_ids"][0, n_a:] == processor.tokenizer.pad_token_id).all()
    assert (batch["labels"][0, n_a:] == IGNORE_INDEX).all()
    assert batch["attention_mask"][0].sum() == n_a and batch["attention_mask"][1].sum() == n_b
    assert batch["pixel_values"].shape == (2, 3, 56, 56)
    padded = LlavaCollator(processor.tokenizer.pad_token_id, pad_to_multiple_of=64)([a])
    assert padded["input_ids"].shape[1] % 64 == 0


def test_dataset_from_json_file_keeps_order(processor, tmp_path):
    rng = np.random.default_rng(1)
    records = []
    for i in range(7):
        Image.fromarray(rng.integers(0, 256, (40, 60, 3), dtype=np.uint8)).save(tmp_path / f"im{i}.png")
        # Answers of different lengths, so each record is recognisable from its encoding.
        records.append(record(i, answer="A" + " yes" * i, image=f"im{i}.png"))
    path = tmp_path / "records.json"
    path.write_text(json.dumps(records))
    ds = ConversationDataset(path, tmp_path, processor)
    assert len(ds) == 7
    sampler = curriculum_sampler(ds)
    assert list(sampler) == list(range(7)) and list(sampler) == list(range(7))
    loader = DataLoader(ds, batch_size=3, sampler=sampler, collate_fn=LlavaCollator(processor.tokenizer.pad_token_id))
    answers = []
    for batch in loader:
        for labels in batch["labels"]:
            answers.append(processor.tokenizer.decode(labels[labels != IGNORE_INDEX]))
    assert answers == [" A" + " yes" * i + "</s>" for i in range(7)]


def test_bad_inputs_are_named(processor, tmp_path):
    with pytest.raises(RecordError, match="records.json"):
        (tmp_path / "records.json").write_text("[{")
        load_records(tmp_path / "records.json")
    with pytest.raises(RecordError, match="record 1.*missing 'conversations'"):
        ConversationDataset([record(0), {"id": "x", "image": "a.png"}], tmp_path, processor)
    with pytest.raises(RecordError, match="no assistant"):
        bad = record(0)
        bad["conversations"] = bad["conversations"][:1]
        ConversationDataset([bad], tmp_path, processor)
    with pytest.raises(RecordError, match="exactly one <image>"):
        ConversationDataset([record(0, answer="<image> again")], tmp_path, processor)
    escaping = ConversationDataset([record(0, image="../outside.png")], tmp_path, processor)
    with pytest.raises(RecordError, match="escapes"):
        escaping[0]
    missing = ConversationDataset([record(0, image="nope.png")], tmp_path, processor)
    with pytest.raises(RecordError, match=r"record 0 \(r0\).*nope.png"):
        missing[0]
    (tmp_path / "broken.png").write_bytes(b"not a png")
    with pytest.raises(RecordError, match="broken.png"):
        ConversationDataset([record(0, image="broken.png")], tmp_path, processor)[0]


def test_max_length_is_enforced(processor, image, tmp_path):
    image.save(tmp_path / "img.png")
    ds = ConversationDataset([record(0)], tmp_path, processor, max_length=50)
    with pytest.raises(RecordError, match="longer than max_length=50"):
        ds[0]
