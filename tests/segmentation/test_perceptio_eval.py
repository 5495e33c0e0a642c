"""Perceptio's evaluation on the tiny LLaVA and the tiny Qwen2.5-VL with a tiny SAM2 head: masks from the
generated [SEG]'s state written as RLE at the ground truth's size, a decoder set to predict the whole image
giving a known IoU, a generation without [SEG] kept as IoU 0, cIoU / gIoU per split, and text benchmarks
asked with Perceptio's instruction and parsed after its perception prefix."""

import json

import numpy as np
import pytest
import torch
from transformers import LogitsProcessor

from evaluation.generate import GenerationSettings, generate_predictions
from evaluation.perceptio import answer_after_perception, is_perceptio_adapter
from evaluation.run import evaluate, mask_score_rows, new_identity, score_rows
from evaluation.segmentation_masks import SegMaskPredictor
from perception_tokens import token_kinds
from perception_tokens.curriculum.perceptio_text import PERCEPTION_INSTRUCTION, refer_question
from perception_tokens.images import encode_png
from perception_tokens.masks import mask_to_rle, rle_to_mask
from perception_tokens.vocab import DEPTH_END, DEPTH_START, encode_depth

pytestmark = pytest.mark.usefixtures("single_torch_thread")
FAMILIES = ("llava", "qwen2_5_vl")
SEG = "[SEG]"


@pytest.fixture(scope="module", autouse=True)
def seg_kind():
    token_kinds.enable("seg")
    yield
    token_kinds.disable("seg")  # later test modules expect the builtin vocabulary


@pytest.fixture(scope="module", params=FAMILIES)
def tiny(request):
    """A tiny model of the family with the perception tokens and [SEG] (as a Perceptio run adds them)."""
    from training.backends import get_backend
    from training.finetune.config import FinetuneConfig
    from training.segmentation.settings import SegmentationSettings

    backend = get_backend(request.param)
    model, processor = backend.load("tiny")
    backend.add_tokens(model, processor, FinetuneConfig(checkpoint="tiny", segmentation=SegmentationSettings(enabled=True)))
    return request.param, model.eval(), processor


def head_for(model, whole_image: bool | None = None):
    """A tiny SAM2 head; ``whole_image`` True / False sets its mask decoder to predict every pixel / none:
    the high-resolution features and the last upscaling are constant (0, then bias 3 -> GELU(3) > 0 in every
    channel) and each hypernetwork's output is the constant +1 / -1, so each logit is +-(channels x GELU(3))."""
    from training.segmentation.head import SegmentationHead

    head = SegmentationHead.build("tiny", model.config.get_text_config().hidden_size).eval()
    if whole_image is not None:
        decoder = head.sam2.mask_decoder
        with torch.no_grad():
            for conv in (decoder.conv_s0, decoder.conv_s1, decoder.upscale_conv2):
                conv.weight.zero_()
                conv.bias.zero_()
            decoder.upscale_conv2.bias.fill_(3.0)
            for mlp in decoder.output_hypernetworks_mlps:
                mlp.proj_out.weight.zero_()
                mlp.proj_out.bias.fill_(1.0 if whole_image else -1.0)
    return head


class ForceTokens(LogitsProcessor):
    """Forces ``ids`` as the first generated tokens (then leaves the model free), or bans ``banned`` throughout."""

    def __init__(self, ids=(), banned=None):
        self.ids, self.banned, self.start = list(ids), banned, None

    def __call__(self, input_ids, scores):
        scores = scores.clone()
        if self.banned is not None:
            scores[:, self.banned] = -1e9
        self.start = input_ids.shape[1] if self.start is None else self.start
        step = input_ids.shape[1] - self.start
        if step < len(self.ids):
            scores[:] = -1e9
            scores[:, self.ids[step]] = 0.0
        return scores


def box(h, w, y0, y1, x0, x1):
    m = np.zeros((h, w), bool)
    m[y0:y1, x0:x1] = True
    return m


def mask_row(qid, gold, subset="refcoco_val", expression="the red square", image_seed=None):
    h, w = gold.shape
    rgb = np.random.default_rng(int(qid) if image_seed is None else image_seed).integers(0, 255, (h, w, 3), dtype=np.uint8)
    return {"benchmark": "RefCOCO-RES", "subset": subset, "question_id": str(qid), "question": expression,
            "prompt": f"Please segment the object this sentence refers to: {expression}", "choices": None,
            "valid_letters": [], "gold": json.dumps(mask_to_rle(gold)), "image_bytes": encode_png(rgb),
            "image_file": f"{qid}.png", "answer_type": "mask"}


def seg_id(processor):
    return processor.tokenizer.convert_tokens_to_ids(SEG)


def run_masks(model, processor, head, rows, processors, batch_size=2):
    settings = GenerationSettings(mode="cot", ablation="normal", max_new_tokens=6, batch_size=batch_size, perceptio=True)
    return generate_predictions(model, processor, rows, settings, extra_logits_processors=processors, progress=False,
                                batch_hook=SegMaskPredictor(model, head, processor.tokenizer))


def test_pred_mask_is_rle_at_the_ground_truths_size_from_the_generated_seg(tiny):
    family, model, processor = tiny
    rows = [mask_row(1, box(30, 40, 5, 15, 5, 20)), mask_row(2, box(24, 20, 0, 10, 0, 10), expression="the left one")]
    preds = run_masks(model, processor, head_for(model), rows, [ForceTokens([seg_id(processor)])])
    assert [p["question_id"] for p in preds] == ["1", "2"]
    for p, shape in zip(preds, [(30, 40), (24, 20)]):
        assert p["raw_output"].startswith(SEG) and p["pred"] == SEG and p["mode_used"] == "perceptio"
        assert refer_question(p["question"]) in p["prompt_text"]
        decoded = rle_to_mask(p["pred_mask"])
        assert decoded.shape == shape and p["pred_mask"]["size"] == list(shape)
        assert mask_to_rle(decoded) == p["pred_mask"]  # round trip
        assert p["correct"] is False and p["error"] is None


def test_a_decoder_set_to_the_whole_image_gives_the_known_iou(tiny):
    family, model, processor = tiny
    # IoU of the whole image against the ground truth = the ground truth's share of the image
    rows = [mask_row(1, box(30, 40, 0, 15, 0, 40)),  # 600 of 1200 pixels: IoU 0.5
            mask_row(2, box(20, 20, 0, 10, 0, 10), subset="refcoco_testA")]  # 100 of 400: IoU 0.25
    force = [ForceTokens([seg_id(processor)])]
    ident = new_identity("tiny-perceptio", "adapter")
    preds = evaluate(model, processor, rows, ident, runs=[("cot", "normal")], log=lambda _m: None,
                     base_settings=GenerationSettings(max_new_tokens=4, batch_size=2),
                     segmentation_head=head_for(model, whole_image=True), logits_processors=force)
    assert all(rle_to_mask(p["pred_mask"]).all() for p in preds)
    scores = {s["subset"]: s for s in score_rows(preds)}
    assert scores["refcoco_val"]["ciou_pct"] == pytest.approx(50.0)
    assert scores["refcoco_testA"]["giou_pct"] == pytest.approx(25.0)
    together = mask_score_rows([{**p, "subset": "all"} for p in preds])[0]
    assert together["ciou_pct"] == pytest.approx(100 * 700 / 1600)  # summed intersections / summed unions
    assert together["giou_pct"] == pytest.approx(37.5)  # mean of 0.5 and 0.25
    assert together["n"] == 2 and together["n_unparsed"] == 0 and np.isnan(together["accuracy_pct"])
    # the opposite decoder predicts nothing: IoU 0, but the mask still came from a [SEG]
    empty = evaluate(model, processor, rows[:1], ident, runs=[("cot", "normal")], log=lambda _m: None,
                     base_settings=GenerationSettings(max_new_tokens=4), segmentation_head=head_for(model, whole_image=False),
                     logits_processors=force)
    assert not rle_to_mask(empty[0]["pred_mask"]).any() and empty[0]["pred"] == SEG
    assert score_rows(empty)[0]["giou_pct"] == 0.0


def test_no_seg_generated_gives_an_empty_mask_iou_zero_and_a_row(tiny):
    family, model, processor = tiny
    rows = [mask_row(1, box(30, 40, 5, 15, 5, 20)), mask_row(2, box(30, 40, 0, 30, 0, 40))]
    ident = new_identity("tiny-perceptio", "adapter")
    preds = evaluate(model, processor, rows, ident, runs=[("cot", "normal"), ("direct", "none")], log=lambda _m: None,
                     base_settings=GenerationSettings(max_new_tokens=4, batch_size=2),
                     segmentation_head=head_for(model, whole_image=True),
                     logits_processors=[ForceTokens(banned=seg_id(processor))])
    assert len(preds) == 2  # both kept; the 'none' ablation (no perception tokens) does not ask mask rows
    for p in preds:
        assert SEG not in p["raw_output"] and p["pred"] is None and p["error"] is None
        assert p["pred_mask"]["size"] == [30, 40] and not rle_to_mask(p["pred_mask"]).any()
    [score] = score_rows(preds)
    assert (score["n"], score["n_unparsed"], score["ciou_pct"], score["giou_pct"]) == (2, 2, 0.0, 0.0)


class RecordingHead(torch.nn.Module):
    """The head, recording the [SEG] states it is given."""

    def __init__(self, head):
        super().__init__()
        self.inner, self.image_input, self.states = head, head.image_input, []

    def forward(self, sam, hidden):
        self.states.append(hidden.detach().clone())
        return self.inner(sam, hidden)


def test_the_head_reads_each_rows_own_seg_state_in_a_left_padded_batch(tiny):
    """The state given to the head is the last layer's at the generated [SEG] (the prompt and [SEG] read
    teacher-forced, as in training), for each row of a batch whose prompts differ in length."""
    from evaluation.prompts import load_image

    family, model, processor = tiny
    rows = [mask_row(1, box(30, 40, 5, 15, 5, 20), expression="a"),
            mask_row(2, box(30, 40, 5, 15, 5, 20), expression="the long expression of the second object on the right")]
    head = RecordingHead(head_for(model))
    preds = run_masks(model, processor, head, rows, [ForceTokens([seg_id(processor)])], batch_size=2)
    [batched] = head.states
    for k, (row, p) in enumerate(zip(rows, preds)):
        inputs = processor(images=[load_image(row, 336)], text=[p["prompt_text"] + SEG], return_tensors="pt")
        assert inputs["input_ids"][0, -1] == seg_id(processor)
        with torch.no_grad():
            expected = model(**inputs, output_hidden_states=True).hidden_states[-1][0, -1]
        assert torch.allclose(batched[k], expected, atol=1e-4), (family, k)
    assert not torch.allclose(batched[0], batched[1], atol=1e-2)


def test_text_benchmarks_are_asked_perceptios_way_and_parsed_after_the_prefix(tiny):
    family, model, processor = tiny
    tok = processor.tokenizer
    q = "Which point is closer to the camera? (A) point A (B) point B"
    rgb = np.random.default_rng(0).integers(0, 255, (30, 40, 3), dtype=np.uint8)
    row = {"benchmark": "HardBLINK", "subset": "3points", "question_id": "7", "question": q, "prompt": q,
           "choices": None, "valid_letters": ["A", "B"], "gold": "B", "image_bytes": encode_png(rgb),
           "image_file": "7.png", "answer_type": "letter"}
    prefix = f"{SEG}{encode_depth([3] * 100)}"
    answer = tok(" The answer is B.", add_special_tokens=False)["input_ids"]
    forced = tok.convert_tokens_to_ids([SEG, DEPTH_START, *([f"<DEPTH_3>"] * 100), DEPTH_END]) + answer + [tok.eos_token_id]
    settings = GenerationSettings(mode="cot", ablation="normal", max_new_tokens=len(forced) + 2, perceptio=True)
    [p] = generate_predictions(model, processor, [row], settings, extra_logits_processors=[ForceTokens(forced)], progress=False)
    assert p["prompt_text"].count(PERCEPTION_INSTRUCTION) == 1 and p["mode_used"] == "perceptio"
    assert p["raw_output"].replace(" ", "").startswith(prefix.replace(" ", "")) and all(p["depth_spans_valid"])
    assert p["pred"] == "B" and p["correct"] and p["pred_mask"] is None
    # the 'none' ablation asks the plain question
    [plain] = generate_predictions(model, processor, [row], GenerationSettings(ablation="none", max_new_tokens=2, perceptio=True),
                                   progress=False)
    assert PERCEPTION_INSTRUCTION not in plain["prompt_text"] and plain["mode_used"] == "direct"


def test_answer_after_perception():
    span = encode_depth([1] * 100)
    assert answer_after_perception(f"[SEG] {span} It is (A).") == " It is (A)."
    assert answer_after_perception("[SEG] A") == " A"
    assert answer_after_perception("B") == "B"
    assert DEPTH_END in span


def test_mask_scores_per_split_from_hand_masks():
    gold = box(8, 8, 0, 4, 0, 4)  # 16 pixels
    half = box(8, 8, 0, 4, 0, 2)  # 8 of them
    wide = box(8, 8, 0, 4, 0, 8)  # the 16 and 16 more

    def pred(subset, qid, mask, **extra):
        return {"eval_run_id": "r", "run_started_at": "t", "model_id": "m", "model_kind": "adapter", "mode": "cot",
                "ablation": "normal", "benchmark": "RefCOCO-RES", "subset": subset, "question_id": qid,
                "gold": json.dumps(mask_to_rle(gold)), "answer_type": "mask", "error": None,
                "pred": None if mask is None else SEG, "pred_mask": None if mask is None else mask_to_rle(mask), **extra}

    preds = [pred("refcoco_val", "1", gold), pred("refcoco_val", "2", half), pred("refcoco_val", "3", None),
             pred("refcoco+_testA", "4", wide), pred("refcocog_test", "5", gold),
             pred("refcocog_test", "6", None, error="image does not decode")]
    scores = {s["subset"]: s for s in score_rows(preds)}
    val = scores["refcoco_val"]
    assert val["ciou_pct"] == pytest.approx(100 * (16 + 8 + 0) / (16 + 16 + 16))
    assert val["giou_pct"] == pytest.approx(100 * (1 + 0.5 + 0) / 3)
    assert (val["n"], val["n_not_run"], val["n_unparsed"]) == (3, 0, 1)
    assert val["ciou_ci_low_pct"] <= val["ciou_pct"] <= val["ciou_ci_high_pct"]
    assert val["giou_ci_low_pct"] == pytest.approx(0.0) and val["giou_ci_high_pct"] == pytest.approx(100.0)
    assert scores["refcoco+_testA"]["ciou_pct"] == pytest.approx(50.0)
    assert (scores["refcocog_test"]["n"], scores["refcocog_test"]["n_not_run"], scores["refcocog_test"]["ciou_pct"]) == (1, 1, 100.0)
    again = {s["subset"]: s for s in score_rows(preds)}["refcoco_val"]  # fixed seed: the same interval
    assert (again["ciou_ci_low_pct"], again["ciou_ci_high_pct"]) == (val["ciou_ci_low_pct"], val["ciou_ci_high_pct"])


def test_evaluate_refuses_mask_rows_without_a_head():
    with pytest.raises(ValueError, match="RefCOCO-RES: its answers are masks and this model has no segmentation head"):
        evaluate(None, None, [mask_row(1, box(8, 8, 0, 4, 0, 4))], new_identity("m", "adapter"))


def test_a_perceptio_adapter_is_known_by_its_recorded_config(tmp_path):
    from training.finetune.config import FinetuneConfig
    from training.segmentation.settings import SegmentationSettings

    for name, enabled in (("with", True), ("without", False)):
        folder = tmp_path / name
        folder.mkdir()
        config = FinetuneConfig(checkpoint="tiny", segmentation=SegmentationSettings(enabled=enabled))
        (folder / "finetune_config.json").write_text(json.dumps({"config": config.to_dict()}))
    assert is_perceptio_adapter(tmp_path / "with") and not is_perceptio_adapter(tmp_path / "without")
    assert not is_perceptio_adapter(None)
    (tmp_path / "broken").mkdir()
    with pytest.raises(ValueError, match="finetune_config.json: cannot read the fine-tune record"):
        is_perceptio_adapter(tmp_path / "broken")
