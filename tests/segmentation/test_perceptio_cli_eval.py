"""``ptok eval`` on refcoco_res: a Perceptio adapter (a tiny LLaVA fine-tuned with the segmentation head) is
evaluated (masks as RLE in eval_predictions, cIoU / gIoU rows per split in eval_scores); an adapter without a
head, or a base model, is refused before any model is loaded, with the reason."""

import json

import pyarrow.parquet as pq
import pytest
from seg_records import square_records

from evaluation.benchmarks.refcoco_res_demo import write_demo_refcoco_res
from perception_tokens import token_kinds
from perception_tokens.masks import rle_to_mask
from training.backends import get_backend
from training.finetune.config import FinetuneConfig
from training.finetune.lora import LoraSettings
from training.segmentation.settings import SegmentationSettings

pytestmark = pytest.mark.usefixtures("single_torch_thread")


@pytest.fixture(scope="module", autouse=True)
def builtin_vocabulary_after():
    yield
    token_kinds.disable("seg")  # a Perceptio run enables [SEG] process-wide


def adapter(root, segmentation: bool):
    """A tiny LLaVA adapter after one step (the machinery, not a trained model)."""
    records = square_records(root)
    if not segmentation:
        records = [{k: v for k, v in r.items() if k != "mask_rle"} for r in records]
    config = FinetuneConfig(checkpoint="tiny", max_steps=1, per_device_batch_size=4, warmup_ratio=0.0, logging_steps=1,
                            save_steps=1000, lora=LoraSettings(r=8, alpha=16),
                            segmentation=SegmentationSettings(enabled=segmentation))
    return get_backend("llava").run_finetune(config, records, root / "images", root / "run", log=lambda _m: None).adapter_dir


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("perceptio_cli")
    res = write_demo_refcoco_res(root / "refcoco_res", 6, seed=1000, image_size=(64, 48))
    with_head = adapter(root / "with", True)
    token_kinds.disable("seg")
    return {"root": root, "res": res, "with_head": with_head, "without_head": adapter(root / "without", False)}


@pytest.fixture()
def storage(tmp_path, monkeypatch):
    root = tmp_path / "storage"
    root.mkdir()
    config = tmp_path / "c.yaml"
    config.write_text(f"storage:\n  root: {root}\nevaluation:\n  max_per_subset: 2\n  max_new_tokens: 6\n  batch_size: 4\n"
                      "  runs: [[cot, normal], [direct, none]]\n")
    monkeypatch.setenv("PTOK_CONFIG", str(config))
    monkeypatch.setenv("PTOK_WORKDIR", str(tmp_path))
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster_home"))
    return root


def ptok_eval(world, adapter_dir):
    from pipelines import cli

    res = world["res"]
    return cli.main(["eval", "--benchmark", "refcoco_res", "--root", str(res), "--images", str(res / "coco" / "train2014"),
                     "--adapter", str(adapter_dir)])


def test_ptok_eval_answers_refcoco_res_with_a_perceptio_adapter(world, storage):
    assert ptok_eval(world, world["with_head"]) == 0
    preds = pq.read_table(storage / "eval_predictions.parquet").to_pylist()
    assert preds and {p["benchmark"] for p in preds} == {"RefCOCO-RES"}
    assert {p["ablation"] for p in preds} == {"normal"}  # no perception tokens in 'none': no mask to ask for
    for p in preds:
        gold = json.loads(p["gold"])
        assert p["pred_mask"]["size"] == gold["size"] and rle_to_mask(p["pred_mask"]).shape == tuple(gold["size"])
        assert p["error"] is None and ("Segment the object that this phrase refers to" in p["prompt_text"])
        # a mask from the [SEG] state, or (no [SEG] generated) an empty one, counted unparsed
        assert (p["pred"] == "[SEG]") == ("[SEG]" in p["raw_output"])
        assert p["pred"] == "[SEG]" or not rle_to_mask(p["pred_mask"]).any()
    scores = pq.read_table(storage / "eval_scores.parquet").to_pylist()
    assert {s["subset"] for s in scores} == {p["subset"] for p in preds}
    for s in scores:
        subset = [p for p in preds if p["subset"] == s["subset"]]
        assert s["n"] == len(subset) and s["n_unparsed"] == sum(p["pred"] is None for p in subset)
        assert 0.0 <= s["ciou_ci_low_pct"] <= s["ciou_pct"] <= s["ciou_ci_high_pct"] <= 100.0
        assert 0.0 <= s["giou_ci_low_pct"] <= s["giou_pct"] <= s["giou_ci_high_pct"] <= 100.0


def test_ptok_eval_refuses_refcoco_res_without_a_segmentation_head(world, storage, capsys):
    from pipeline_lib.settings import settings_from_dict
    from pipelines.cli_eval import run_eval

    assert ptok_eval(world, world["without_head"]) == 2
    said = " ".join(capsys.readouterr().out.split())  # the CLI's error line, wrapped to the terminal
    assert "error: refcoco_res: the answers are masks, given by the segmentation head saved beside a Perceptio adapter" in said
    assert f"{world['without_head']} has none" in said
    assert not (storage / "eval_predictions.parquet").exists()
    with pytest.raises(ValueError, match="tiny has none, so it cannot be evaluated on refcoco_res"):
        run_eval(settings_from_dict({}), "refcoco_res", world["res"], "tiny", None)
