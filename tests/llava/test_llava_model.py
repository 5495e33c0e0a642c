"""Tiny LLaVA builds offline; perception tokens get ids from the tokenizer and fresh rows."""

import json

import numpy as np
import pytest
import torch
from PIL import Image

from perception_tokens.vocab import DEPTH_END, DEPTH_START, all_tokens, encode_depth, vocabulary_hash
from training.finetune.tokens import TOKEN_MAP_FILE, TokenMap, add_perception_tokens
from training.llava.model import IMAGE_TOKEN, llava_7b_shaped_config, llava_13b_shaped_config, load_llava

SENTINEL = 1000.0


@pytest.fixture()
def tiny():
    return load_llava("tiny")


def test_tiny_builds_offline_and_deterministically():
    m1, p1 = load_llava("tiny", seed=3)
    m2, _ = load_llava("tiny", seed=3)
    m3, _ = load_llava("tiny", seed=4)
    s1, s2, s3 = m1.state_dict(), m2.state_dict(), m3.state_dict()
    assert all(torch.equal(s1[k], s2[k]) for k in s1)
    assert not torch.equal(s1["lm_head.weight"], s3["lm_head.weight"])
    assert type(m1).__name__ == "LlavaForConditionalGeneration"
    assert m1.config.image_token_id == p1.tokenizer.convert_tokens_to_ids(IMAGE_TOKEN)
    assert m1.get_input_embeddings().weight.shape[0] == len(p1.tokenizer)


def test_tiny_forward_from_processor_output(tiny):
    model, processor = tiny
    image = Image.fromarray(np.full((56, 56, 3), 128, np.uint8))
    inputs = processor(images=[image], text="USER: <image>\nWhat is the depth map for the image? ASSISTANT:", return_tensors="pt")
    n_image = int((inputs["input_ids"] == model.config.image_token_id).sum())
    assert n_image == 16  # (56 / 14)^2 patches, CLS dropped
    out = model(**inputs)
    assert out.logits.shape == (1, inputs["input_ids"].shape[1], len(processor.tokenizer))


def test_add_tokens_ids_from_tokenizer_and_decodable(tiny):
    model, processor = tiny
    tok = processor.tokenizer
    old_len = len(tok)
    token_map = add_perception_tokens(model, tok)
    assert len(token_map) == len(all_tokens()) == 466
    for t in all_tokens():
        assert token_map[t] == tok.convert_tokens_to_ids(t)
    assert sorted(token_map.ids.values()) == list(range(old_len, old_len + 466))
    assert model.get_input_embeddings().weight.shape[0] == len(tok) == old_len + 466
    assert model.get_output_embeddings().weight.shape[0] == len(tok)
    span = encode_depth([(5 * i) % 128 for i in range(100)])
    ids = tok(span, add_special_tokens=False)["input_ids"]
    assert len(ids) == 102 and ids[0] == token_map[DEPTH_START] and ids[-1] == token_map[DEPTH_END]
    # Not special: decoding with skip_special_tokens keeps them.
    assert tok.decode(ids, skip_special_tokens=True) == span
    # Idempotent: a second call reuses the ids and does not grow the matrix.
    again = add_perception_tokens(model, tok)
    assert again.ids == token_map.ids and model.get_input_embeddings().weight.shape[0] == len(tok)


def _row_stats(weight, n_known):
    known = weight[:n_known].float()
    return known.mean(0), known.std(0)


def test_new_rows_are_mean_plus_small_seeded_noise(tiny):
    model, processor = tiny
    n_known = len(processor.tokenizer)
    before_in = model.get_input_embeddings().weight[:n_known].clone()
    before_out = model.get_output_embeddings().weight[:n_known].clone()
    token_map = add_perception_tokens(model, processor.tokenizer, seed=7, noise_scale=0.3)
    new = torch.tensor(token_map.id_list())
    for layer, before in ((model.get_input_embeddings(), before_in), (model.get_output_embeddings(), before_out)):
        w = layer.weight.detach()
        assert torch.equal(w[:n_known], before), "existing rows must not change"
        mean, std = _row_stats(w, n_known)
        dev = (w[new] - mean) / std  # should be N(0, 0.3^2) per element
        assert dev.abs().max() < 0.3 * 6
        assert 0.25 < dev.std().item() < 0.35
        assert abs(dev.mean().item()) < 0.03
        assert len({tuple(r.tolist()) for r in w[new][:20]}) == 20  # rows differ
    # Same seed, same rows.
    model2, processor2 = load_llava("tiny")
    add_perception_tokens(model2, processor2.tokenizer, seed=7, noise_scale=0.3)
    assert torch.equal(model2.get_input_embeddings().weight, model.get_input_embeddings().weight)


@pytest.mark.parametrize("padding_rows", [40, 600])
def test_ids_landing_on_existing_padding_rows_are_reinitialised(tiny, padding_rows):
    """The matrix already has rows past the tokenizer (like llava-1.5-hf's 32064 for 32002)."""
    model, processor = tiny
    n_known = len(processor.tokenizer)
    model.resize_token_embeddings(n_known + padding_rows, mean_resizing=False)
    with torch.no_grad():
        for layer in (model.get_input_embeddings(), model.get_output_embeddings()):
            layer.weight[n_known:] = SENTINEL
    token_map = add_perception_tokens(model, processor.tokenizer)
    new = torch.tensor(token_map.id_list())
    assert int(new.min()) == n_known  # the first new ids are on old padding rows
    rows = model.get_input_embeddings().weight.shape[0]
    assert rows == max(n_known + 466, n_known + padding_rows)  # grown, never shrunk
    for layer in (model.get_input_embeddings(), model.get_output_embeddings()):
        w = layer.weight.detach()
        mean, std = _row_stats(w, n_known)
        assert not (w[new] == SENTINEL).any()
        assert ((w[new] - mean).abs() <= 6 * 0.3 * std).all()
        if padding_rows > 466:  # padding rows no token uses are left alone
            assert (w[n_known + 466 :] == SENTINEL).all()


def test_pad_to_multiple_of_fills_extra_rows_with_mean(tiny):
    model, processor = tiny
    n_known = len(processor.tokenizer)
    add_perception_tokens(model, processor.tokenizer, pad_to_multiple_of=64)
    w = model.get_input_embeddings().weight.detach()
    assert w.shape[0] % 64 == 0 and w.shape[0] >= len(processor.tokenizer)
    extra = w[len(processor.tokenizer) :]
    assert len(extra) > 0
    assert torch.allclose(extra, w[:n_known].mean(0).expand_as(extra))


def test_partial_vocabulary_is_refused(tiny):
    model, processor = tiny
    processor.tokenizer.add_tokens(all_tokens()[:3])
    with pytest.raises(ValueError, match="partial"):
        add_perception_tokens(model, processor.tokenizer)


def test_token_map_json_round_trip_and_hash_check(tiny, tmp_path):
    model, processor = tiny
    token_map = add_perception_tokens(model, processor.tokenizer)
    path = token_map.save(tmp_path)
    assert path.name == TOKEN_MAP_FILE
    payload = json.loads(path.read_text())
    assert payload["vocabulary_hash"] == vocabulary_hash()
    assert payload["tokens"]["<DEPTH_7>"] == processor.tokenizer.convert_tokens_to_ids("<DEPTH_7>")
    assert TokenMap.load(tmp_path).ids == token_map.ids
    payload["vocabulary_hash"] = "0" * 16
    path.write_text(json.dumps(payload))
    with pytest.raises(ValueError, match="vocabulary"):
        TokenMap.load(tmp_path)
    path.write_text("{not json")
    with pytest.raises(ValueError, match=TOKEN_MAP_FILE):
        TokenMap.load(path)


def test_llava_shaped_configs():
    c7, c13 = llava_7b_shaped_config(), llava_13b_shaped_config()
    assert (c7.text_config.hidden_size, c7.text_config.num_hidden_layers) == (4096, 32)
    assert (c13.text_config.hidden_size, c13.text_config.num_hidden_layers) == (5120, 40)
    for c in (c7, c13):
        assert c.vision_config.image_size == 336 and c.vision_config.patch_size == 14
        assert c.image_seq_length == 576 and c.text_config.vocab_size == 32064
        assert c.tie_word_embeddings is False


def test_random_7b_preset_has_llava15_shapes_on_meta():
    model, processor = load_llava("random-7b", dtype=torch.bfloat16, device="meta")
    n_params = sum(p.numel() for p in model.parameters())
    assert 7.0e9 < n_params < 7.1e9
    assert model.config.image_token_id == processor.tokenizer.convert_tokens_to_ids(IMAGE_TOKEN)
    assert model.get_input_embeddings().weight.shape == (32064, 4096)
    assert processor.image_processor.crop_size["height"] == 336
