"""The refcoco_res benchmark: rows of the RES evaluation splits with their GT masks, from the
refer layout, through the registry."""

from __future__ import annotations

import json
import pickle
import shutil

import numpy as np
import pytest

from evaluation.benchmarks import registry
from evaluation.benchmarks.refcoco_res import BENCHMARK, EVAL_SPLITS, SUBSETS
from evaluation.benchmarks.refcoco_res_demo import write_demo_refcoco_res
from evaluation.segmentation_metrics import overlay_examples, segmentation_scores
from perception_tokens.datasets.refcoco import read_refer_dataset
from perception_tokens.masks import rle_to_mask
from perception_tokens.rejects import split_rows


@pytest.fixture(scope="module")
def res_root(tmp_path_factory):
    return write_demo_refcoco_res(tmp_path_factory.mktemp("res") / "refcoco_res", 24, seed=1000, image_size=(96, 72))


def _read(root, subset=None, images=None):
    return split_rows(registry.read_subsets("refcoco_res", root, subset, images or root / "coco" / "train2014"))


def test_rows_are_the_sentences_of_the_evaluation_splits_with_their_masks(res_root):
    rows, rejects = _read(res_root)
    assert rejects == []
    assert {r["subset"] for r in rows} == set(SUBSETS)
    for dataset, folder, refs_name in (("refcoco", "refcoco", "refs(unc).p"), ("refcoco+", "refcoco+", "refs(unc).p"),
                                       ("refcocog", "refcocog", "refs(umd).p")):
        refs = pickle.loads((res_root / folder / refs_name).read_bytes())  # trusted: our own demo file
        expected = sorted(str(s["sent_id"]) for r in refs if r["split"] in EVAL_SPLITS[dataset] for s in r["sentences"])
        assert sorted(r["question_id"] for r in rows if r["source"] == dataset) == expected
    coco = read_refer_dataset(res_root / "refcocog", "refcocog").coco
    refs = {str(s["sent_id"]): r for r in pickle.loads((res_root / "refcocog" / "refs(umd).p").read_bytes())
            for s in r["sentences"]}
    for r in rows:
        assert r["benchmark"] == BENCHMARK and r["answer_type"] == "mask" and r["image_bytes"][:3] == b"\xff\xd8\xff"
        if r["source"] == "refcocog":
            ann = coco.anns[refs[r["question_id"]]["ann_id"]]
            assert np.array_equal(rle_to_mask(json.loads(r["gold"])), coco.annToMask(ann).astype(bool))
    # the ground truth as prediction scores 100 on every split
    for r in rows:
        r["pred_mask"] = json.loads(r["gold"])
    assert {(s["subset"], s["ciou"], s["giou"]) for s in segmentation_scores(rows)} == {(s, 100.0, 100.0) for s in SUBSETS}


def test_one_subset_and_the_datasets_present(res_root, tmp_path):
    rows, _ = _read(res_root, "refcocog_test")
    assert rows and {r["subset"] for r in rows} == {"refcocog_test"}
    partial = tmp_path / "partial"
    shutil.copytree(res_root / "refcocog", partial / "refcocog")
    assert registry.get("refcoco_res").present_subsets(partial) == ["refcocog_val", "refcocog_test"]
    rows, _ = _read(partial, images=res_root / "coco" / "train2014")
    assert {r["subset"] for r in rows} == {"refcocog_val", "refcocog_test"}
    with pytest.raises(FileNotFoundError, match="refcoco refs file not found"):
        _read(partial, "refcoco_val", images=res_root / "coco" / "train2014")
    with pytest.raises(ValueError, match="no subset 'refcocog_testA'"):
        _read(partial, "refcocog_testA")


def test_a_missing_image_rejects_its_sentences(res_root, tmp_path):
    images = tmp_path / "train2014"
    shutil.copytree(res_root / "coco" / "train2014", images)
    rows, _ = _read(res_root, "refcocog_val")
    gone = rows[0]["image_file"]
    (images / gone).unlink()
    kept, rejects = _read(res_root, "refcocog_val", images=images)
    lost = [r for r in rows if r["image_file"] == gone]
    assert len(rejects) == len(lost) and len(kept) == len(rows) - len(lost)
    assert all(j.dataset == BENCHMARK and j.reason == f"missing image {gone!r}" for j in rejects)


def test_ptok_score_and_eval_refuse_a_mask_benchmark_with_the_reason(res_root, tmp_path):
    from pipeline_lib.settings import settings_from_dict
    from pipelines.cli_eval import run_eval
    from pipelines.cli_score import run_score

    answers = tmp_path / "answers.jsonl"
    answers.write_text('{"question_id": "0", "text": "A"}\n')
    with pytest.raises(ValueError, match="refcoco_res: the answers are masks, not text"):
        run_score(settings_from_dict({}), "refcoco_res", res_root, answers, images=res_root / "coco" / "train2014")
    # ptok eval answers it only with a Perceptio adapter (tests/segmentation/test_perceptio_cli_eval.py)
    with pytest.raises(ValueError, match="refcoco_res: the answers are masks, given by the segmentation head saved beside a Perceptio adapter"):
        run_eval(settings_from_dict({}), "refcoco_res", res_root, "tiny", None, images=res_root / "coco" / "train2014")


def test_overlay_examples_of_benchmark_rows(res_root):
    rows, _ = _read(res_root, "refcocog_val")
    for r in rows:
        r["pred_mask"] = json.loads(r["gold"])
    examples = overlay_examples(rows, n=2)
    first = sorted(rows, key=lambda r: r["question_id"])[0]
    assert [c for c, _ in examples][0] == f"refcocog_val {first['question_id']}: {first['question']} (IoU 100%)"
    assert len(examples) == 2 and all(png[:8] == b"\x89PNG\r\n\x1a\n" for _, png in examples)
