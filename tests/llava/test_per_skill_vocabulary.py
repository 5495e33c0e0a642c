"""One skill's tokens per run, with Aurora's ids on a LLaVA-1.5-sized (32000-token) vocabulary."""

import pytest
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import PreTrainedTokenizerFast

from perception_tokens.vocab import DEPTH_END, DEPTH_START, pixel_token, skill_tokens, skills_in_text
from training.llava.model import TokenMap, add_perception_tokens, load_llava


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
