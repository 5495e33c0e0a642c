"""VPT's mask modeling (arXiv 2502.17425 Sec. 3.2) on the tiny Qwen2-VL: after the control token a masked
sample's answer sees only the control token, the projector's inserted embeddings and the answer itself.

The logits test uses a ONE-layer decoder and holds the projector's output fixed: with more layers the
control token's own hidden state carries the question to the answer, which is the point of the
bottleneck, so only the direct paths can be switched off and seen."""

import numpy as np
import pytest
import torch
from PIL import Image

from perception_tokens import regions
from training.backends.qwen2_vl.model import add_tokens, build_tiny_processor, tiny_qwen2_vl_config
from training.finetune.config import FinetuneConfig
from training.vpt.masking import attention_mask_4d, control_index, is_masked
from training.vpt.projector import ReEncoder, tiny_dinov2
from training.vpt.sequence import Inserter, model_inputs, start_sequence, teacher_forced

pytestmark = pytest.mark.usefixtures("single_torch_thread")
CONFIG = FinetuneConfig(family="qwen2_vl", vpt={"enabled": True, "grid": 4})


def test_the_4d_mask_blocks_only_what_precedes_the_control_token_after_it():
    # row 0: 5 tokens, control at index 2 (masked); row 1: 4 tokens, left-padded by 1, plain causal
    mask = attention_mask_4d([5, 4], 5, [2, None], dtype=torch.float32)[:, 0] == 0
    causal = torch.ones(5, 5, dtype=torch.bool).tril()
    assert mask[0, :3].equal(causal[:3])  # up to the control token: ordinary causal attention
    assert mask[0, 3].tolist() == [False, False, True, True, False]
    assert mask[0, 4].tolist() == [False, False, True, True, True]
    assert mask[1, 1:, 0].sum() == 0 and mask[1, 1:, 1:].equal(causal[1:, 1:])  # padding is never a key
    assert mask[1, 0, 0]  # the padded query keeps itself: no all-blocked row


def test_the_masked_draw_is_seeded_per_sample_and_near_its_fraction():
    ids = [f"vpt_reencode:refcoco:{i}" for i in range(2000)]
    draws = [is_masked(i, 0, 0.5) for i in ids]
    assert draws == [is_masked(i, 0, 0.5) for i in ids]  # the same on every call, in any order
    assert 0.45 < sum(draws) / len(draws) < 0.55
    assert draws != [is_masked(i, 1, 0.5) for i in ids]  # the seed changes which ones
    assert not any(is_masked(i, 0, 0.0) for i in ids) and all(is_masked(i, 0, 1.0) for i in ids)


@pytest.fixture(scope="module")
def one_layer():
    processor = build_tiny_processor()
    torch.manual_seed(0)
    from transformers import Qwen2VLForConditionalGeneration

    model = Qwen2VLForConditionalGeneration(tiny_qwen2_vl_config(processor, text_layers=1)).eval()
    add_tokens(model, processor, CONFIG)
    dino, dino_processor = tiny_dinov2()
    reencoder = ReEncoder(dino, dino_processor, model.config.text_config.hidden_size).eval()
    return model, processor, Inserter(model, processor, reencoder)


def teacher_forced_for(inserter, processor, question, image):
    messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": question}]}]
    prompt = processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    answer = processor.tokenizer(regions.REENCODE_CONTROL + " a small red bird", add_special_tokens=False)["input_ids"]
    with torch.no_grad():
        return teacher_forced(inserter, start_sequence(processor, prompt, image), answer)


@pytest.mark.parametrize("masked", [True, False])
def test_masked_answer_logits_do_not_see_the_question_and_unmasked_ones_do(one_layer, masked):
    model, processor, inserter = one_layer
    image = Image.fromarray(np.random.default_rng(3).integers(0, 255, (56, 56, 3), dtype=np.uint8))
    first = teacher_forced_for(inserter, processor, "What is the bird?", image)
    second = teacher_forced_for(inserter, processor, "What is the sign?", image)
    assert len(first.ids) == len(second.ids) and first.ids != second.ids  # only question tokens differ
    second.reencoded = [(start, first.reencoded[0][1]) for start, _ in second.reencoded]  # projector output held fixed
    control = control_index(first.ids, inserter.control, first.prompt_length)
    assert control == control_index(second.ids, inserter.control, second.prompt_length)
    logits = []
    for seq in (first, second):
        batch = model_inputs(model, [seq], processor.tokenizer.pad_token_id)
        if masked:
            batch["attention_mask"] = attention_mask_4d([len(seq.ids)], len(seq.ids), [control], dtype=torch.float32)
        with torch.no_grad():
            logits.append(model(**batch).logits[0, control + 1:])
    if masked:
        torch.testing.assert_close(logits[0], logits[1], rtol=0, atol=1e-5)
    else:
        assert (logits[0] - logits[1]).abs().max() > 1e-3
