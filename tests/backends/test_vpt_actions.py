"""VPT's generation loop with actions on the tiny Qwen2.5-VL (arXiv 2502.17425 Sec. 3): a forced region
triggers exactly one crop with the expected pixel box and generation goes on after it, the action
bound stops a model that keeps writing regions, the control token inserts the re-encoder's output,
and teacher forcing builds the same ids and embeddings as generation did."""

import numpy as np
import pytest
import torch
from PIL import Image

from evaluation.vpt_actions import ActionSettings, generate_with_actions
from perception_tokens import regions
from perception_tokens.token_kinds import vpt_tokens
from perception_tokens.vocab import vocabulary_hash
from training.backends.qwen2_5_vl.model import add_vpt_tokens, load_qwen2_5_vl
from training.finetune.config import FinetuneConfig
from training.vpt.projector import ReEncoder, load_dinov2, tiny_dinov2
from training.vpt.sequence import (Inserter, encode_image, labels, model_inputs, start_sequence, teacher_forced,
                                   training_batch)

pytestmark = pytest.mark.usefixtures("single_torch_thread")
GRID = 8


@pytest.fixture(scope="module")
def qwen():
    model, processor = load_qwen2_5_vl("tiny")
    token_map = add_vpt_tokens(model, processor, FinetuneConfig(), GRID)
    assert list(token_map.ids) == vpt_tokens(GRID)
    assert token_map.vocabulary_hash == vocabulary_hash(vpt_tokens(GRID))  # the adapter's identity: its own tokens
    assert len(processor.tokenizer) <= model.get_input_embeddings().num_embeddings  # Qwen's padded rows hold them
    torch.manual_seed(0)
    dino, dino_processor = tiny_dinov2()
    reencoder = ReEncoder(dino, dino_processor, model.config.text_config.hidden_size, heads=4).eval()
    return model.eval(), processor, reencoder


def image(width, height, seed):
    return Image.fromarray(np.random.default_rng(seed).integers(0, 255, (height, width, 3), dtype=np.uint8))


def prompt(processor, question="What is written on the small sign?"):
    messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": question}]}]
    return processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)


class Force:
    """Force ``script`` (token ids) ``times`` times, anywhere it is not already under way; never end.
    Reads the written tokens only: inserted spans (``<|vision_start|>...<|vision_end|>``) are skipped."""

    def __init__(self, tokenizer, script, times):
        self.script = [tokenizer.convert_tokens_to_ids(t) for t in script]
        self.times, self.eos = times, tokenizer.eos_token_id
        self.start, self.end = tokenizer.convert_tokens_to_ids(["<|vision_start|>", "<|vision_end|>"])

    def __call__(self, ids, scores):
        row, inside = [], False
        for t in ids[0].tolist():
            inside = (inside or t == self.start) and t != self.end
            if not inside and t != self.end:
                row.append(t)
        scores = scores.clone()
        scores[0, self.eos] = torch.finfo(scores.dtype).min
        done = sum(row[i:i + len(self.script)] == self.script for i in range(len(row)))
        if done >= self.times:
            return scores
        k = max(k for k in range(len(self.script)) if k == 0 or row[-k:] == self.script[:k])
        scores[0, self.script[k]] = 1e4
        return scores


def region_script(a, b, c, d):
    return [regions.REGION_START, regions.x_token(a), regions.y_token(b), regions.x_token(c), regions.y_token(d),
            regions.REGION_END]


def test_a_forced_region_triggers_one_crop_with_its_pixel_box_and_generation_goes_on(qwen):
    model, processor, _ = qwen
    images = [image(96, 64, 1), image(64, 128, 2)]  # cells 12x8 px and 8x16 px
    force = Force(processor.tokenizer, region_script(1, 2, 3, 4), times=1)
    out = generate_with_actions(model, processor, [(prompt(processor), im) for im in images],
                                ActionSettings(max_new_tokens=10), logits_processors=[force])
    assert [o["n_actions"] for o in out] == [1, 1]
    assert out[0]["actions"][0]["box_px"] == [12, 16, 48, 40]
    assert out[1]["actions"][0]["box_px"] == [8, 32, 32, 80]
    for o, im in zip(out, images):
        assert o["actions"][0]["cells"] == [1, 2, 3, 4]
        assert len(o["answer_ids"]) == 10 and o["answer_ids"].count(processor.tokenizer.convert_tokens_to_ids(
            regions.REGION_START)) == 1  # 4 more tokens written after the region and its crop
        seq = o["sequence"]
        crop = encode_image(processor, im.crop(tuple(o["actions"][0]["box_px"])))
        assert len(seq.images) == 2 and torch.equal(seq.images[1].pixel_values, crop.pixel_values)
        n = crop.n_tokens(model.config.vision_config.spatial_merge_size)
        image_pad = model.config.image_token_id
        after_region = seq.prompt_length + 6
        assert seq.ids[after_region + 1: after_region + 1 + n] == [image_pad] * n  # the crop right after the region
        assert len(seq.ids) == seq.prompt_length + 10 + n + 2


def test_the_action_bound_stops_a_model_that_keeps_writing_regions(qwen):
    model, processor, _ = qwen
    force = Force(processor.tokenizer, region_script(0, 0, 7, 7), times=100)
    out = generate_with_actions(model, processor, [(prompt(processor), image(80, 80, 3))],
                                ActionSettings(max_new_tokens=24, max_actions=2), logits_processors=[force])[0]
    start = processor.tokenizer.convert_tokens_to_ids(regions.REGION_START)
    assert out["n_actions"] == 2 and out["answer_ids"].count(start) == 2
    assert [a["box_px"] for a in out["actions"]] == [[0, 0, 80, 80]] * 2
    # the same model with actions disabled writes no region at all
    off = generate_with_actions(model, processor, [(prompt(processor), image(80, 80, 3))],
                                ActionSettings(max_new_tokens=8, actions=False), logits_processors=[force])[0]
    assert off["n_actions"] == 0 and start not in off["answer_ids"]


def test_teacher_forcing_builds_the_sequence_and_embeddings_generation_built(qwen):
    model, processor, reencoder = qwen
    im = image(96, 64, 4)
    script = region_script(2, 1, 5, 6) + [regions.REENCODE_CONTROL]
    force = Force(processor.tokenizer, script, times=1)
    out = generate_with_actions(model, processor, [(prompt(processor), im)], ActionSettings(max_new_tokens=10),
                                reencoder=reencoder, logits_processors=[force])[0]
    assert [a["kind"] for a in out["actions"]] == ["region", "reencode"]
    assert out["actions"][1]["n_embeddings"] == 4  # the tiny DINOv2's 2x2 patches
    generated = out["sequence"]
    inserter = Inserter(model, processor, reencoder)
    with torch.no_grad():
        forced = teacher_forced(inserter, start_sequence(processor, prompt(processor), im), out["answer_ids"])
        assert forced.ids == generated.ids
        assert forced.actions == generated.actions
        pad = processor.tokenizer.pad_token_id
        a, b = model_inputs(model, [generated], pad), model_inputs(model, [forced], pad)
    assert torch.allclose(a["inputs_embeds"], b["inputs_embeds"], atol=1e-5)
    assert torch.equal(a["position_ids"], b["position_ids"])
    # labels: the answer tokens but the control token; nothing inserted, nothing of the prompt
    target = labels(inserter, forced)
    kept = [t for t in target.tolist() if t != -100]
    control = processor.tokenizer.convert_tokens_to_ids(regions.REENCODE_CONTROL)
    assert kept == [t for t in out["answer_ids"] if t != control]


def test_the_reencoder_output_depends_on_the_control_state(qwen):
    _, _, reencoder = qwen
    im = image(40, 40, 5)
    with torch.no_grad():
        h = torch.randn(64)
        one, two = reencoder(im, h.reshape(1, -1)), reencoder(im, (h + 1).reshape(1, -1))
    assert one.shape == (4, 64) and not torch.allclose(one, two)


def test_without_a_reencoder_the_control_token_is_never_written(qwen):
    model, processor, _ = qwen
    force = Force(processor.tokenizer, [regions.REENCODE_CONTROL], times=100)
    out = generate_with_actions(model, processor, [(prompt(processor), image(48, 48, 6))],
                                ActionSettings(max_new_tokens=4), logits_processors=[force])[0]
    control = processor.tokenizer.convert_tokens_to_ids(regions.REENCODE_CONTROL)
    assert len(out["answer_ids"]) == 4 and control not in out["answer_ids"] and out["n_actions"] == 0


def test_the_same_loop_runs_on_qwen2_vl_vpts_base_model():
    from training.backends.qwen2_vl.model import load_qwen2_vl

    model, processor = load_qwen2_vl("tiny")
    assert type(model).__name__ == "Qwen2VLForConditionalGeneration"
    processor.tokenizer.add_tokens(vpt_tokens(4), special_tokens=False)
    force = Force(processor.tokenizer, region_script(1, 0, 3, 1), times=1)
    out = generate_with_actions(model.eval(), processor, [(prompt(processor), image(64, 48, 7))],
                                ActionSettings(max_new_tokens=8), logits_processors=[force])[0]
    assert out["actions"] == [{"kind": "region", "cells": [1, 0, 3, 1], "grid": 4, "box_px": [16, 0, 64, 24],
                               "answer_position": 6}]
    assert len(out["answer_ids"]) == 8


def test_a_teacher_forced_loss_trains_the_projector_and_the_language_model(qwen):
    model, processor, reencoder = qwen
    answer = processor.tokenizer.convert_tokens_to_ids(region_script(0, 0, 3, 3) + [regions.REENCODE_CONTROL]) + \
        processor.tokenizer.encode("a red sign")
    inserter = Inserter(model, processor, reencoder)
    rows = [teacher_forced(inserter, start_sequence(processor, prompt(processor), image(w, 64, 8)), answer)
            for w in (64, 96)]  # two widths: two lengths in one left-padded batch
    batch = training_batch(inserter, rows)
    assert batch["labels"].shape == batch["attention_mask"].shape
    loss = model(**batch).loss
    assert torch.isfinite(loss)
    model.zero_grad()
    reencoder.zero_grad()
    loss.backward()
    assert reencoder.projector.query.weight.grad.abs().sum() > 0  # through the inserted embeddings
    assert model.model.language_model.layers[0].mlp.up_proj.weight.grad.abs().sum() > 0
    model.zero_grad()
    reencoder.zero_grad()


def test_generation_runs_the_vision_tower_once_per_image(qwen):
    model, processor, _ = qwen
    calls = []
    hook = model.model.visual.register_forward_hook(
        lambda module, args, kwargs, out: calls.append(len(kwargs["grid_thw"])), with_kwargs=True)
    try:
        force = Force(processor.tokenizer, region_script(0, 0, 1, 1), times=1)
        out = generate_with_actions(model, processor, [(prompt(processor), image(64, 64, 9))],
                                    ActionSettings(max_new_tokens=9), logits_processors=[force])[0]
    finally:
        hook.remove()
    assert out["n_actions"] == 1 and len(out["answer_ids"]) == 9
    assert calls == [1, 1]  # the original at the first step, the crop at the step after the region


def test_bfloat16_model_and_reencoder_run_both_actions():
    model, processor = load_qwen2_5_vl("tiny", dtype=torch.bfloat16)
    add_vpt_tokens(model, processor, FinetuneConfig(), 4)
    dino, dino_processor = tiny_dinov2()
    reencoder = ReEncoder(dino, dino_processor, 64).to(torch.bfloat16).eval()
    force = Force(processor.tokenizer, region_script(0, 1, 2, 3) + [regions.REENCODE_CONTROL], times=1)
    out = generate_with_actions(model.eval(), processor, [(prompt(processor), image(64, 64, 10))],
                                ActionSettings(max_new_tokens=9), reencoder=reencoder, logits_processors=[force])[0]
    assert [a["kind"] for a in out["actions"]] == ["region", "reencode"] and len(out["answer_ids"]) == 9
    assert out["sequence"].reencoded[0][1].dtype == torch.bfloat16


def test_dinov2_reloads_by_from_pretrained(tmp_path):
    dino, dino_processor = tiny_dinov2()
    dino.save_pretrained(tmp_path)
    dino_processor.save_pretrained(tmp_path)
    again, again_processor = load_dinov2(str(tmp_path))
    pixels = again_processor(images=[image(40, 30, 11)], return_tensors="pt")["pixel_values"]
    assert pixels.shape == (1, 3, 28, 28)
    with torch.no_grad():
        assert torch.equal(dino(pixel_values=pixels).last_hidden_state, again(pixel_values=pixels).last_hidden_state)


def test_a_peft_wrapped_adapter_runs_the_loop_like_its_base_model(qwen):
    """An evaluated VPT adapter is a PeftModel; its Qwen-VL (vision tower, M-RoPE index) sits under the
    wrapper. Before: AttributeError ('...ForConditionalGeneration' has no 'get_rope_index') in the graph's eval."""
    from peft import LoraConfig, get_peft_model

    model, processor, _ = qwen
    wrapped = get_peft_model(model, LoraConfig(r=2, target_modules=["q_proj"], lora_dropout=0.0))
    try:
        force = Force(processor.tokenizer, region_script(0, 0, 3, 3), times=1)
        run = lambda m: generate_with_actions(m, processor, [(prompt(processor), image(64, 64, 5))],  # noqa: E731
                                              ActionSettings(max_new_tokens=8), logits_processors=[force])[0]
        plain, peft_out = run(model), run(wrapped)  # LoRA's B starts at zero: the same function
        assert peft_out["actions"] == plain["actions"] and peft_out["actions"][0]["box_px"] == [0, 0, 32, 32]
        assert peft_out["answer_ids"] == plain["answer_ids"]
    finally:
        wrapped.unload()  # the module-scoped model leaves unwrapped
