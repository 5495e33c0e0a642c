"""VPT's evaluation (arXiv 2502.17425) on a tiny Qwen2-VL built from config: a VPT adapter's questions go
through the action loop with every action logged in eval_predictions' shape, the same model with actions
off is an extra arm that writes no perception token, the first region is scored against the GT box
(IoU / IoGT, bootstrap intervals) in eval_scores' shape, and a model without VPT tokens keeps nulls."""

import numpy as np
import pyarrow as pa
import pytest
import torch

from evaluation.generate import GenerationSettings
from evaluation.region_overlays import region_overlay_examples
from evaluation.run import evaluate, new_identity, score_rows
from evaluation.vpt_eval import strip_vpt_tokens, vpt_runs
from perception_tokens import regions
from perception_tokens.images import decode_rgb, encode_png
from perception_tokens.schemas import EVAL_PREDICTION_SCHEMA, EVAL_SCORE_SCHEMA
from perception_tokens.token_kinds import vpt_tokens
from tests.backends.test_vpt_actions import Force, region_script
from training.backends.qwen2_vl.model import load_qwen2_vl

pytestmark = pytest.mark.usefixtures("single_torch_thread")
WIDTH, HEIGHT = 512, 384  # k = 8: cells of 64 x 48 px
CORNER_CELL = region_script(7, 7, 7, 7)  # the bottom-right cell: crop [448, 336, 512, 384]
GT_BOTTOM_RIGHT = [492.0, 362.0, 506.0, 378.0]  # 14 x 16 px, inside that cell
GT_TOP_LEFT = [6.0, 6.0, 20.0, 22.0]


def zoom_row(qid, gt_box, seed):
    rgb = np.random.default_rng(seed).integers(0, 255, (HEIGHT, WIDTH, 3), dtype=np.uint8)
    return {"benchmark": "Zoom", "subset": "letter", "question_id": qid, "question": "Which letter is on the label?",
            "prompt": "Which letter is on the label?\n(A) K\n(B) R", "choices": ["K", "R"], "valid_letters": ["A", "B"],
            "gold": "A", "image_bytes": encode_png(rgb), "image_file": f"images/{qid}.png", "answer_type": "letter",
            "task": "zoom", "gt_box": gt_box}


@pytest.fixture(scope="module")
def vpt_model():
    model, processor = load_qwen2_vl("tiny")
    processor.tokenizer.add_tokens(vpt_tokens(8), special_tokens=False)
    return model.eval(), processor


@pytest.fixture(scope="module")
def forced_run(vpt_model):
    model, processor = vpt_model
    rows = [zoom_row("q1", GT_BOTTOM_RIGHT, 1), zoom_row("q2", GT_TOP_LEFT, 2)]
    force = Force(processor.tokenizer, CORNER_CELL, times=1)
    preds = evaluate(model, processor, rows, new_identity("vpt-tiny", "adapter"), runs=[("cot", "normal")],
                     base_settings=GenerationSettings(max_new_tokens=8, batch_size=2), logits_processors=[force],
                     log=lambda m: None)
    return rows, preds


def test_a_vpt_adapters_actions_are_logged_with_cells_and_original_pixel_crop_boxes(forced_run):
    rows, preds = forced_run
    on = [p for p in preds if p["ablation"] == "normal"]
    assert [p["question_id"] for p in on] == ["q1", "q2"]
    expected = {"kind": "region", "grid": 8, "x_min": 7, "y_min": 7, "x_max": 7, "y_max": 7, "crop_left": 448,
                "crop_top": 336, "crop_right": 512, "crop_bottom": 384, "n_embeddings": None, "answer_position": 6}
    for p in on:
        assert p["n_actions"] == 1 and p["actions"] == [expected]
        assert p["raw_output"].startswith("".join(CORNER_CELL))  # the model's text keeps its region
        assert "<REGION" not in strip_vpt_tokens(p["raw_output"])
    # IoU / IoGT of the crop box [448, 336, 512, 384] (3072 px) against the GT boxes, by hand
    assert on[0]["region_iou"] == pytest.approx(14 * 16 / (64 * 48)) and on[0]["region_iogt"] == 1.0
    assert on[1]["region_iou"] == 0.0 and on[1]["region_iogt"] == 0.0
    assert on[0]["gt_box"] == GT_BOTTOM_RIGHT
    table = pa.Table.from_pylist(preds, schema=EVAL_PREDICTION_SCHEMA)  # the rows fit the table as they are
    assert table.column("actions")[0].as_py()[0]["crop_left"] == 448


def test_the_actions_off_arm_is_the_same_model_and_writes_no_perception_token(forced_run, vpt_model):
    _, processor = vpt_model
    _, preds = forced_run
    off = [p for p in preds if p["ablation"] == "actions_off"]
    assert [(p["question_id"], p["mode"]) for p in off] == [("q1", "cot"), ("q2", "cot")]  # forced, yet:
    vpt_ids = set(processor.tokenizer.convert_tokens_to_ids(vpt_tokens(8)))
    for p in off:
        assert p["n_actions"] == 0 and p["actions"] == [] and p["region_iou"] is None
        assert not vpt_ids & set(processor.tokenizer(p["raw_output"], add_special_tokens=False)["input_ids"])
        assert "<REGION" not in p["raw_output"] and regions.REENCODE_CONTROL not in p["raw_output"]
        assert p["n_new_tokens"] == 8


def test_region_scores_and_accuracy_with_and_without_actions_sit_side_by_side(forced_run):
    _, preds = forced_run
    scores = {s["ablation"]: s for s in score_rows(preds)}
    assert set(scores) == {"normal", "actions_off"}
    on, off = scores["normal"], scores["actions_off"]
    assert (on["n"], on["mean_actions"], on["n_gt_box"], on["n_region"]) == (2, 1.0, 2, 2)
    iou = 14 * 16 / (64 * 48)
    assert on["region_iou_mean"] == pytest.approx(iou / 2) and on["region_iogt_mean"] == 0.5
    # two questions: the bootstrap means are 0, half and all of the larger value; the 95% interval is its ends
    assert (on["region_iou_ci_low"], on["region_iou_ci_high"]) == pytest.approx((0.0, iou))
    assert (on["region_iogt_ci_low"], on["region_iogt_ci_high"]) == (0.0, 1.0)
    assert (off["mean_actions"], off["n_gt_box"], off["n_region"], off["region_iou_mean"]) == (0.0, 2, 0, None)
    pa.Table.from_pylist(list(scores.values()), schema=EVAL_SCORE_SCHEMA)


def test_a_model_without_vpt_tokens_keeps_nulls_and_runs_no_actions_off_arm():
    model, processor = load_qwen2_vl("tiny")
    preds = evaluate(model.eval(), processor, [zoom_row("q1", GT_BOTTOM_RIGHT, 3)], new_identity("base", "base"),
                     runs=[("cot", "normal"), ("cot", "actions_off")],
                     base_settings=GenerationSettings(max_new_tokens=3, batch_size=1, constrained=False), log=lambda m: None)
    assert [p["ablation"] for p in preds] == ["normal"]
    p = preds[0]
    assert (p["n_actions"], p["actions"], p["region_iou"], p["region_iogt"]) == (None, None, None, None)
    assert p["gt_box"] == GT_BOTTOM_RIGHT  # the benchmark's box is kept for every model
    s = score_rows(preds)[0]
    assert (s["mean_actions"], s["n_gt_box"], s["n_region"], s["region_iou_mean"]) == (None, None, None, None)


def test_vpt_arms_leave_out_depth_token_ablations_and_twin_each_normal_arm():
    logged = []
    runs = vpt_runs([("direct", "none"), ("cot", "normal"), ("cot", "oracle"), ("cot", "random")], logged.append)
    assert runs == [("direct", "none"), ("cot", "normal"), ("cot", "actions_off")]
    assert len(logged) == 2 and all("depth tokens" in m for m in logged)


def test_crop_overlays_show_the_gt_box_the_region_and_the_crop(forced_run):
    rows, preds = forced_run
    pictures = region_overlay_examples([p for p in preds if p["ablation"] == "normal"], rows, n=1)
    assert len(pictures) == 1
    caption, png = pictures[0]
    assert caption == "Zoom letter q1: IoU 0.07, IoGT 1.00"
    panel = decode_rgb(png)[18:]  # below the caption bar
    assert panel.shape == (HEIGHT, WIDTH + 4 + 64 * HEIGHT // 48, 3)  # image, gap, crop scaled to the height
    assert tuple(panel[336, 460]) == (255, 0, 0)  # the region's top edge, red
    assert tuple(panel[362, 495]) == (0, 200, 0)  # the GT box's top edge, green
    crop = decode_rgb(rows[0]["image_bytes"])[336:384, 448:512]
    assert np.array_equal(panel[::8, WIDTH + 4::8], crop)  # the crop, 8x nearest-neighbour


def test_the_evaluation_assets_metadata_has_the_actions_and_the_overlays(forced_run):
    from assets.evaluation import vpt_run_metadata

    rows, preds = forced_run
    meta = vpt_run_metadata(preds, rows)
    assert meta["vpt_actions"].value == 2  # one region per answer of the actions-on arm, none with actions off
    table = meta["region_overlays"].value
    assert table.count('<img alt="Zoom letter q') == 2 and "IoU 0.07, IoGT 1.00" in table
    assert vpt_run_metadata([{**p, "n_actions": None, "actions": None} for p in preds], rows) == {}


def test_an_image_that_does_not_decode_is_that_rows_error_and_the_batch_goes_on(vpt_model):
    from evaluation.vpt_eval import generate_vpt_predictions

    model, processor = vpt_model
    broken = {**zoom_row("bad", GT_TOP_LEFT, 4), "image_bytes": b"\x89PNG\r\n\x1a\nbroken"}
    out = generate_vpt_predictions(model, processor, [broken, zoom_row("ok", GT_TOP_LEFT, 5)],
                                   GenerationSettings(max_new_tokens=2, batch_size=2), progress=False)
    assert out[0]["error"].startswith("image does not decode") and out[0]["n_actions"] is None
    assert out[1]["error"] is None and out[1]["n_actions"] == 0 and out[1]["n_new_tokens"] == 2
