"""Qwen2.5-VL backend pieces on the tiny model of the real architecture: tokenizer, template, labels,
dynamic resolution, new-token rows in padded/tied matrices, LoRA targets, registry."""

import pytest
import torch
from PIL import Image
from transformers import Qwen2_5_VLForConditionalGeneration

from perception_tokens.vocab import DEPTH_END, DEPTH_START, all_tokens, encode_depth
from training.backends import adapter_family, families, get_backend, resolve_family
from training.backends.qwen2_5_vl.data import QwenCollator, assistant_label_mask, encode_conversation
from training.backends.qwen2_5_vl.lora import apply_lora, heads_tied, param_groups
from training.backends.qwen2_5_vl.model import (
    IM_END,
    IMAGE_PAD,
    QWEN_PERCEPTION_TOKENS,
    build_tiny_processor,
    load_processor,
    load_qwen2_5_vl,
)
from training.backends.qwen2_5_vl.model import add_tokens
from training.llava.data import IGNORE_INDEX, to_messages
from training.finetune.config import FinetuneConfig
from training.finetune.lora import LoraSettings


pytestmark = pytest.mark.usefixtures("single_torch_thread")


def conversation(answer):
    return to_messages([{"from": "human", "value": "<image>\nWhat is the depth map for the image?"},
                        {"from": "gpt", "value": answer}])


def test_tiny_model_is_the_real_class_with_qwen_tokens_and_padded_vocab():
    model, processor = load_qwen2_5_vl("tiny")
    tok = processor.tokenizer
    assert type(model) is Qwen2_5_VLForConditionalGeneration
    assert tok.eos_token == IM_END and tok.bos_token is None and tok.pad_token == "<|endoftext|>"
    assert model.config.image_token_id == tok.convert_tokens_to_ids(IMAGE_PAD)
    # Qwen pads its embedding matrix beyond the tokenizer, as the real checkpoints do.
    assert model.get_input_embeddings().weight.shape[0] == 640 > len(tok)
    assert heads_tied(model)
    assert not heads_tied(load_qwen2_5_vl("tiny-untied")[0])
    text = processor.apply_chat_template(conversation("2"), tokenize=False)
    assert text == ("<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n"
                    "<|vision_start|><|image_pad|><|vision_end|>What is the depth map for the image?<|im_end|>\n"
                    "<|im_start|>assistant\n2<|im_end|>\n")


def test_labels_cover_only_the_answer_and_its_im_end():
    model, processor = load_qwen2_5_vl("tiny")
    add_tokens(model, processor, FinetuneConfig())
    span = encode_depth(list(range(100)))
    enc = encode_conversation(processor, conversation(span), Image.new("RGB", (336, 336)))
    labels = enc["labels"]
    targets = labels[labels != IGNORE_INDEX].tolist()
    assert processor.tokenizer.decode(targets, skip_special_tokens=False) == span + IM_END
    assert len(targets) == 102 + 1  # START + 100 codes + END, then <|im_end|>; not the "\n" after it
    # the image expands to grid_t * grid_h * grid_w / merge^2 placeholders: 336 px -> 112 px (tiny max_pixels) -> 8x8 patches -> 16
    assert enc["image_grid_thw"].tolist() == [[1, 8, 8]]
    assert int((enc["input_ids"] == model.config.image_token_id).sum()) == 16 == int(enc["mm_token_type_ids"].sum())


def test_label_mask_raises_on_an_unclosed_assistant_turn():
    _, processor = load_qwen2_5_vl("tiny")
    ids = processor.tokenizer("<|im_start|>assistant\nhello", add_special_tokens=False)["input_ids"]
    with pytest.raises(ValueError, match="no closing"):
        assistant_label_mask(ids, processor.tokenizer)


def test_dynamic_resolution_and_collator_pack_images_of_different_sizes():
    _, processor = load_qwen2_5_vl("tiny")
    wide = encode_conversation(processor, conversation("1"), Image.new("RGB", (400, 200)))
    square = encode_conversation(processor, conversation("1"), Image.new("RGB", (60, 60)))
    assert wide["image_grid_thw"].tolist() == [[1, 4, 10]]  # aspect kept: 56 x 140 px within 112*112 pixels
    assert square["image_grid_thw"].tolist() == [[1, 4, 4]]
    batch = QwenCollator(pad_token_id=processor.tokenizer.pad_token_id)([wide, square])
    assert batch["pixel_values"].shape[0] == 40 + 16
    assert batch["image_grid_thw"].tolist() == [[1, 4, 10], [1, 4, 4]]
    short = len(square["input_ids"])
    assert batch["input_ids"].shape[1] == len(wide["input_ids"]) > short
    assert (batch["labels"][1, short:] == IGNORE_INDEX).all() and (batch["attention_mask"][1, short:] == 0).all()


@pytest.mark.parametrize("preset", ["tiny", "tiny-untied"])
def test_new_rows_inside_padding_are_initialised_and_heads_follow(preset):
    model, processor = load_qwen2_5_vl(preset)
    embed = model.get_input_embeddings().weight
    n_tokens = len(processor.tokenizer)
    with torch.no_grad():
        embed[n_tokens:] = 1e3  # arbitrary leftovers in the padded rows
        if not heads_tied(model):
            model.get_output_embeddings().weight[n_tokens:] = -1e3
    token_map = add_tokens(model, processor, FinetuneConfig())
    ids = token_map.id_list()
    assert ids[0] == n_tokens and min(ids) < 640 < max(ids)  # the first ids land on padded rows
    assert ids == processor.tokenizer.convert_tokens_to_ids(QWEN_PERCEPTION_TOKENS)  # depth only: boxes are plain text
    for layer in (model.get_input_embeddings(), model.get_output_embeddings()):
        w = layer.weight.detach()
        known_mean = w[:n_tokens].mean(0)
        assert w[ids].abs().max() < 10
        assert torch.allclose(w[ids].mean(0), known_mean, atol=0.1)
    assert heads_tied(model) == (preset == "tiny")


@pytest.mark.parametrize("preset", ["tiny", "tiny-untied"])
def test_lora_freezes_the_vit_trains_merger_at_its_own_lr_and_new_rows(preset):
    model, processor = load_qwen2_5_vl(preset)
    token_map = add_tokens(model, processor, FinetuneConfig())
    peft_model = apply_lora(model, token_map, LoraSettings(r=4, alpha=8, lr=1e-2, projector_lr=1e-3))
    trainable = [n for n, p in peft_model.named_parameters() if p.requires_grad]
    assert not [n for n in trainable if ".visual." in n and ".merger." not in n]
    assert any(".merger." in n for n in trainable)
    assert any("language_model" in n and "lora_A" in n for n in trainable)
    assert not any("visual" in n and "lora_" in n for n in trainable)  # the ViT's gate/up/down_proj are not targets
    groups = {g["name"]: g for g in param_groups(peft_model, LoraSettings(lr=1e-2, projector_lr=1e-3))}
    assert groups["projector"]["lr"] == 1e-3 and groups["lora_and_tokens"]["lr"] == 1e-2
    token_params = [n for n in trainable if "trainable_tokens" in n]
    assert any("embed_tokens" in n for n in token_params)
    assert any("lm_head" in n for n in token_params) == (preset == "tiny-untied")
    head = peft_model.base_model.model.lm_head
    embed = peft_model.base_model.model.get_input_embeddings()
    assert type(head).__name__ == type(embed).__name__ == "TrainableTokensWrapper"
    # tied: the head's row adapter *is* the embedding's (one set of new rows); untied: its own
    assert (head.token_adapter.tied_adapter is embed.token_adapter) == (preset == "tiny")

    # One step on a perception-token target moves its output logit: the head sees the row update (tied or not).
    enc = encode_conversation(processor, conversation(encode_depth([5] * 100)), Image.new("RGB", (112, 112)))
    batch = QwenCollator(processor.tokenizer.pad_token_id)([enc])
    d5 = token_map["<DEPTH_5>"]
    opt = torch.optim.AdamW(param_groups(peft_model, LoraSettings(lr=5e-2, projector_lr=1e-3)))
    before = peft_model(**batch).logits[0, -5, d5].item()
    peft_model(**batch).loss.backward()
    opt.step()
    after = peft_model(**batch).logits[0, -5, d5].item()
    assert after > before


def test_random_3b_preset_has_the_released_shapes_and_tokens_fit_its_padded_rows():
    model, processor = load_qwen2_5_vl("random-3b", device="meta")
    assert model.get_input_embeddings().weight.shape == (151936, 2048) and heads_tied(model)
    assert model.config.vision_config.out_hidden_size == 2048 and model.config.vision_config.depth == 32
    n_before = len(processor.tokenizer)
    processor.tokenizer.add_tokens(all_tokens())
    assert len(processor.tokenizer) == n_before + len(all_tokens()) < 151936  # no resize needed: padded rows


def test_registry_lists_families_and_detects_them(tmp_path):
    assert {"llava", "qwen2_5_vl"} <= set(families())
    assert get_backend("qwen2_5_vl").family == "qwen2_5_vl"
    with pytest.raises(ValueError, match="unknown model family 'gemma'"):
        get_backend("gemma")
    assert resolve_family(None, "tiny") == "llava" and resolve_family("qwen2_5_vl", "tiny") == "qwen2_5_vl"
    model, processor = load_qwen2_5_vl("tiny")
    model.save_pretrained(tmp_path / "ckpt")
    assert resolve_family(None, str(tmp_path / "ckpt")) == "qwen2_5_vl"
    (tmp_path / "adapter").mkdir()
    (tmp_path / "adapter" / "finetune_config.json").write_text("{}")
    assert adapter_family(tmp_path / "adapter") == "llava"  # adapters from before the registry
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "config.json").write_text('{"model_type": "mamba"}')
    with pytest.raises(ValueError, match="'mamba' has no backend"):
        resolve_family(None, str(tmp_path / "bad"))


def test_saved_processor_reloads_with_template_and_pixel_budget(tmp_path):
    _, processor = load_qwen2_5_vl("tiny")
    processor.save_pretrained(tmp_path)
    again = load_processor(str(tmp_path))
    assert again.chat_template == processor.chat_template
    assert again.image_processor.size["longest_edge"] == 112 * 112
    assert again.tokenizer.get_vocab() == processor.tokenizer.get_vocab()


def test_settings_reject_an_unknown_family():
    from pipeline_lib.settings import FinetuneSettings

    assert FinetuneSettings(family="qwen2_5_vl").family == "qwen2_5_vl"
    with pytest.raises(ValueError, match="not one of"):
        FinetuneSettings(family="gemma")
