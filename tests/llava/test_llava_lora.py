"""LoRA wiring: language-model linears only, new token rows + projector trainable, vision frozen."""

import pytest
import torch
from PIL import Image

from training.llava.data import encode_conversation, to_messages
from training.finetune.lora import LoraSettings, language_model_target_regex
from training.llava.lora import apply_lora, param_groups, trainable_summary
from training.finetune.tokens import add_perception_tokens
from training.llava.model import load_llava
from training.llava.synthetic import make_synthetic_records


def build(mode="trainable_token_indices"):
    model, processor = load_llava("tiny")
    token_map = add_perception_tokens(model, processor.tokenizer)
    settings = LoraSettings(r=4, alpha=8, dropout=0.0, new_token_mode=mode, lr=1e-2, projector_lr=1e-4)
    return apply_lora(model, token_map, settings), processor, token_map, settings


def batch(processor, tmp_path):
    rec = make_synthetic_records(1, tmp_path)[0]
    image = Image.open(tmp_path / rec["image"]).convert("RGB")
    enc = encode_conversation(processor, to_messages(rec["conversations"]), image)
    return {k: v[None] for k, v in enc.items()}


def test_lora_targets_language_model_only():
    peft_model, _, _, _ = build()
    lora_modules = {n.rsplit(".lora_A", 1)[0] for n, _ in peft_model.named_parameters() if ".lora_A" in n}
    assert len(lora_modules) == 2 * 7  # 2 layers x (q, k, v, o, gate, up, down)
    assert all("language_model" in n for n in lora_modules)
    for name, param in peft_model.named_parameters():
        if "vision_tower" in name:
            assert not param.requires_grad, name
    # The vision tower has q_proj/k_proj too: the regex must not match them.
    import re

    rx = language_model_target_regex(("q_proj",))
    assert re.fullmatch(rx, "model.language_model.layers.0.self_attn.q_proj")
    assert not re.fullmatch(rx, "model.vision_tower.encoder.layers.0.self_attn.q_proj")


def test_trainable_parts_trainable_token_indices():
    peft_model, _, token_map, _ = build()
    trainable = {n: p for n, p in peft_model.named_parameters() if p.requires_grad}
    deltas = [n for n in trainable if "trainable_tokens_delta" in n]
    assert len(deltas) == 2 and any("embed_tokens" in n for n in deltas) and any("lm_head" in n for n in deltas)
    for n in deltas:
        assert trainable[n].shape == (len(token_map), 64)
    assert any("multi_modal_projector" in n for n in trainable)
    counts = trainable_summary(peft_model)
    assert counts["other"] == 0 and counts["tokens"] == 2 * 466 * 64 and counts["projector"] > 0


def test_trainable_parts_modules_to_save():
    peft_model, processor, _, _ = build("modules_to_save")
    trainable = [n for n, p in peft_model.named_parameters() if p.requires_grad]
    assert any("embed_tokens.modules_to_save" in n for n in trainable)
    assert any("lm_head.modules_to_save" in n for n in trainable)
    assert not any("trainable_tokens" in n for n in trainable)
    assert trainable_summary(peft_model)["tokens"] == 2 * len(processor.tokenizer) * 64


def test_param_groups_give_projector_its_lr():
    peft_model, _, _, settings = build()
    groups = param_groups(peft_model, settings)
    assert [g["lr"] for g in groups] == [1e-2, 1e-4]
    projector_ids = {id(p) for n, p in peft_model.named_parameters() if p.requires_grad and "multi_modal_projector" in n}
    assert {id(p) for p in groups[1]["params"]} == projector_ids
    all_trainable = {id(p) for p in peft_model.parameters() if p.requires_grad}
    assert {id(p) for g in groups for p in g["params"]} == all_trainable


def test_one_step_changes_only_new_token_rows(tmp_path):
    peft_model, processor, token_map, settings = build()
    embed = peft_model.get_input_embeddings()
    all_ids = torch.arange(len(processor.tokenizer))
    before = embed(all_ids).detach().clone()
    vision_before = {n: p.clone() for n, p in peft_model.named_parameters() if "vision_tower" in n}
    optimizer = torch.optim.AdamW(param_groups(peft_model, settings))
    loss = peft_model(**batch(processor, tmp_path)).loss
    loss.backward()
    optimizer.step()
    after = embed(all_ids).detach()
    new = torch.tensor(token_map.id_list())
    old = torch.ones(len(all_ids), dtype=torch.bool)
    old[new] = False
    assert torch.equal(after[old], before[old])
    changed = (after[new] != before[new]).any(-1)
    assert changed.sum() > 0  # the depth tokens seen in the batch moved
    for n, p in peft_model.named_parameters():
        if "vision_tower" in n:
            assert torch.equal(p, vision_before[n])


def test_settings_validation():
    with pytest.raises(ValueError, match="new_token_mode"):
        LoraSettings(new_token_mode="everything")
    with pytest.raises(ValueError):
        LoraSettings(r=0)
    assert LoraSettings().to_dict()["target_modules"] == [
        "q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"
    ]
