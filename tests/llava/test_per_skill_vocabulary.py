"""One skill's tokens per run, with Aurora's ids on a LLaVA-1.5-sized (32000-token) vocabulary."""

import pytest
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import PreTrainedTokenizerFast

from perception_tokens.vocab import DEPTH_END, DEPTH_START, pixel_token, skill_tokens, skills_in_text
from training.finetune.tokens import TokenMap, add_perception_tokens
from training.llava.model import load_llava


def _tokenizer_32000() -> PreTrainedTokenizerFast:
    vocab = {"<unk>": 0, "<s>": 1, "</s>": 2, **{f"w{i}": i for i in range(3, 32000)}}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    return PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<unk>", bos_token="<s>", eos_token="</s>")


def test_depth_skill_gets_aurora_ids(tmp_path):
    """train.py:934 adds ["<DEPTH_START>", "<DEPTH_END>"] + <DEPTH_0..127> to LLaVA-1.5's 32000-token
    tokenizer: ids 32000, 32001, then 32002 + k; no <PIXEL_*> token exists in a depth run."""
    model, _ = load_llava("tiny")
    tok = _tokenizer_32000()
    tm = add_perception_tokens(model, tok, tokens=skill_tokens(["depth"]))
    assert tm[DEPTH_START] == 32000 and tm[DEPTH_END] == 32001
    assert all(tm[f"<DEPTH_{k}>"] == 32002 + k for k in range(128))
    assert len(tm) == 130 and pixel_token(0) not in tok.get_vocab()
    assert model.get_input_embeddings().weight.shape[0] == 32130
    tm.save(tmp_path)
    assert TokenMap.load(tmp_path).ids == tm.ids  # a per-skill map round-trips with its own vocabulary hash
    assert TokenMap.load(tmp_path).vocabulary_hash != TokenMap.of({**tm.ids, pixel_token(0): 1}).vocabulary_hash


def test_count_skill_and_partial_vocabulary():
    model, _ = load_llava("tiny")
    tok = _tokenizer_32000()
    tm = add_perception_tokens(model, tok, tokens=skill_tokens(["pixel"]))
    assert tm[pixel_token(0)] == 32000 and tm[pixel_token(335)] == 32335 and DEPTH_START not in tok.get_vocab()
    with pytest.raises(ValueError, match="partial vocabulary"):  # depth+pixel asked of a pixel-only tokenizer
        add_perception_tokens(model, tok, tokens=skill_tokens(["depth", "pixel"]))


def test_skills_follow_the_answers():
    assert skills_in_text(["<DEPTH_START><DEPTH_1>", "(A)"]) == ["depth"]
    assert skills_in_text(["Bounding box 1: (<PIXEL_1>,<PIXEL_2>,<PIXEL_3>,<PIXEL_4>)", "2"]) == ["pixel"]
    assert skill_tokens(["pixel", "depth"])[:2] == [DEPTH_START, DEPTH_END]  # depth first, as train.py:933-939
    with pytest.raises(ValueError, match="unknown perception skills"):
        skill_tokens(["boxes"])


def test_per_skill_run_adds_only_the_curriculum_skill(tmp_path):
    """vocabulary="per_skill" (aurora): a depth curriculum adds the 130 depth tokens and no pixel
    tokens; with conversation="vicuna_v1" and image_size=336 the adapter folder carries the
    template, reloads with the same ids, and its token map round-trips."""
    import torch

    from perception_tokens.llava_conversation import render_prompt
    from training.llava.data import generation_prompt
    from training.llava.synthetic import make_synthetic_records
    from training.finetune.config import FinetuneConfig
    from training.finetune.lora import LoraSettings
    from training.llava.reload import reload_adapter
    from training.llava.train import run_finetune

    records = make_synthetic_records(4, tmp_path / "images")
    assert any("<DEPTH_START>" in r["conversations"][1]["value"] for r in records)
    config = FinetuneConfig(max_steps=1, per_device_batch_size=2, warmup_ratio=0.0, save_steps=1000, logging_steps=1,
                            vocabulary="per_skill", conversation="vicuna_v1", image_size=336,
                            lora=LoraSettings(r=2, alpha=4, dropout=0.0, new_token_mode="modules_to_save"))
    torch.set_num_threads(1)
    result = run_finetune(config, records, tmp_path / "images", tmp_path / "run", log=lambda _m: None)
    tm = TokenMap.load(result.adapter_dir)
    assert len(tm) == 130 and pixel_token(0) not in tm.ids
    model, proc = reload_adapter(result.adapter_dir)
    assert proc.tokenizer.convert_tokens_to_ids(DEPTH_START) == tm[DEPTH_START]
    assert pixel_token(0) not in proc.tokenizer.get_vocab()
    assert generation_prompt(proc, "Q?") == render_prompt("vicuna_v1", "Q?")  # the template travels with the adapter
