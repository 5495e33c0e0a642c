"""The whole graph materialized once on a small demo world; each test checks one stage.

One materialization (module-scoped) keeps the suite fast: sources -> pseudo_depth ->
depth_vqvae -> tokens -> marked_points -> curriculum -> lora_adapter (tiny LLaVA through
Dagster Pipes) -> benchmarks -> eval_predictions -> eval_scores.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import cv2
import dagster as dg
import numpy as np
import pyarrow.parquet as pq
import pytest

from conftest import check_results, materialized_world, small_settings
from evaluation.benchmarks import registry
from perception_tokens.curriculum.llava_json import read_llava_json
from perception_tokens.depth import decode_png
from perception_tokens.masks import rle_to_mask
from perception_tokens.vocab import decode_box, decode_depth, vocabulary_hash
from pipeline_lib import catalog


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("world")
    settings = small_settings(
        workdir,
        vqvae={"epochs": 2, "min_closest_point_agreement": 0.0, "min_codebook_usage": 0.0},
        curriculum={"epochs": 3, "percents": [1.0, 0.5, 0.0], "epoch_size": 20, "marked_fraction": 1.0},
        finetune={"max_steps": 6, "per_device_batch_size": 2, "lr": 0.01, "lora_r": 8, "lora_alpha": 16,
                  "save_steps": 3, "logging_steps": 1, "span_samples": 2},
        evaluation={"demo_scenes": 4, "max_per_subset": 2, "max_new_tokens": 120, "batch_size": 4},
    )
    with materialized_world(workdir, settings, "*") as (defs, instance):
        yield workdir, settings, defs, instance


def test_vqvae_tokens_and_boxes(world):
    workdir, settings, defs, instance = world
    storage = workdir / "storage"

    manifest = pq.read_table(storage / "depth_vqvae.parquet").to_pylist()
    assert len(manifest) == 1
    m = manifest[0]
    metrics = json.loads(m["metrics_json"])
    assert 0.0 <= metrics["closest_point_agreement"] <= 1.0 and metrics["usage"] >= 1
    weights = Path(m["path"]) / m["weights_file"]
    from training.weights_id import tensors_digest

    # the model id hashes the tensors (names, dtypes, shapes, bytes), not the file's bytes
    assert tensors_digest(weights) == m["sha256"] and m["model_id"] == m["sha256"][:16]

    tokens = pq.read_table([str(p) for p in sorted((storage / "depth_tokens").rglob("[!.]*.parquet"))])
    depth_rows = sum(pq.read_metadata(str(p)).num_rows for p in (storage / "pseudo_depth").rglob("[!.]*.parquet"))
    assert tokens.num_rows == depth_rows
    row = tokens.slice(0, 1).to_pylist()[0]
    assert len(row["codes"]) == 100 and all(0 <= c < 128 for c in row["codes"])
    assert decode_depth(row["depth_tokens"]) == row["codes"]
    assert row["vqvae_version"] == m["model_id"]

    boxes = pq.read_table(storage / "box_tokens.parquet")
    n_lvis = pq.read_metadata(str(storage / "lvis_instances.parquet")).num_rows
    n_refs = len(set(pq.read_table(storage / "refcoco_refs.parquet", columns=["ref_id"])["ref_id"].to_pylist()))
    n_rejects = pq.read_metadata(str(storage / "box_tokens_rejects.parquet")).num_rows
    assert boxes.num_rows + n_rejects == n_lvis + n_refs
    b = boxes.slice(0, 1).to_pylist()[0]
    g = decode_box(b["box_tokens"])
    assert (g.x1, g.y1, g.x2, g.y2) == (b["x1"], b["y1"], b["x2"], b["y2"])
    assert 0 <= b["x1"] < b["x2"] <= 335

    results = check_results(instance)
    assert results["depth_tokens_parse"] is True
    assert "vqvae_closest_point_upper_bound" in results  # thresholds set to 0 here; the demo config enforces 95%


def test_curriculum_from_demo_graph(world):
    workdir, settings, defs, instance = world
    storage = workdir / "storage"

    # marked points: answer = the letter with the largest depth at its point, on the 336 grid
    marked = pq.read_table(storage / "marked_points.parquet").to_pylist()
    depth = {r["image_id"]: r["depth_png"] for r in pq.read_table([str(p) for p in (storage / "pseudo_depth").rglob("[!.]*.parquet")]).to_pylist()}
    assert marked
    for m in marked[:10]:
        d = cv2.resize(decode_png(depth[m["image_id"]]), (336, 336), interpolation=cv2.INTER_LINEAR)
        values = [int(d[y, x]) for x, y in zip(m["xs"], m["ys"])]
        assert m["letters"][int(np.argmax(values))] == m["answer"]
        assert 2 <= m["n_points"] <= 5 and m["labels_inside"]
        img = cv2.imdecode(np.frombuffer(m["marked_png"], np.uint8), cv2.IMREAD_COLOR)
        assert img.shape == (336, 336, 3)

    # schedule: 3 epochs of 20 samples, atomic share 20 / 10 / 0
    cur = pq.read_table(storage / "curriculum.parquet").to_pylist()
    assert [r["position"] for r in cur] == list(range(60))
    per_epoch = Counter((r["epoch"], r["kind"] == "atomic") for r in cur)
    assert per_epoch[(0, True)] == 20 and per_epoch[(1, True)] == 10 and per_epoch[(2, True)] == 0
    assert {r["task"] for r in cur if r["epoch"] == 2} <= {"depth_cot", "depth_direct", "count_cot", "count_direct", "ground_depth"}

    # lineage ids lead back to sources
    sample = next(r for r in cur if r["task"] == "depth_atomic")
    assert sample["dataset"] in {"ade20k", "lvis", "refcoco"} and sample["depth_token_version"]

    # the LLaVA JSON round-trips and its images resolve
    meta = instance.get_latest_materialization_event(dg.AssetKey("curriculum")).asset_materialization.metadata
    path = Path(meta["llava_json"].value)
    records = read_llava_json(path)
    assert len(records) == 60
    assert records[0]["conversations"][0]["value"].startswith("<image>\n")
    assert json.loads(cur[0]["conversations"]) == records[0]["conversations"]
    for rec in records:
        assert (path.parent / "images" / rec["image"]).is_file()

    # every check on these stages ran and passed
    results = check_results(instance)
    for check in ("curriculum_tokens_parse", "curriculum_images_resolve", "curriculum_mix_matches_schedule", "marked_points_consistent"):
        assert results[check] is True, (check, results)


def test_lora_adapter_through_pipes(world):
    workdir, settings, defs, instance = world

    row = pq.read_table(workdir / "storage" / "lora_adapter.parquet").to_pylist()[0]
    adapter = Path(row["path"])
    assert (adapter / row["weights_file"]).is_file()
    assert (adapter / "token_map.json").is_file() and (adapter / "adapter_config.json").is_file()
    metrics = json.loads(row["metrics_json"])
    assert metrics["steps"] == 6
    assert metrics["final_loss"] < metrics["first_loss"]
    assert json.loads(row["inputs_json"])["vocabulary_hash"] == vocabulary_hash()
    assert (adapter.parent / "checkpoints").is_dir()  # save_steps=3: checkpoints to resume from

    # the trainer's per-step losses came back through Pipes into the run's logs
    event = instance.get_latest_materialization_event(dg.AssetKey("lora_adapter"))
    messages = [e.user_message for e in instance.all_logs(event.run_id)]
    assert any("step" in m and "loss" in m for m in messages), messages[-20:]
    assert "loss_curve" in event.asset_materialization.metadata
    assert "lora_adapter_learned" in check_results(instance)


def test_evaluation_history_and_scores(world):
    workdir, settings, defs, instance = world
    storage = workdir / "storage"

    hb = pq.read_table(storage / "benchmark_hardblink.parquet").to_pylist()
    assert {r["subset"] for r in hb} == {"3points", "4points", "5points"}
    assert all(r["gold"] in r["valid_letters"] for r in hb)

    res = pq.read_table(storage / "benchmark_refcoco_res.parquet").to_pylist()
    assert {r["subset"] for r in res} == set(registry.get("refcoco_res").subsets)
    assert all(r["answer_type"] == "mask" and rle_to_mask(json.loads(r["gold"])).any() for r in res)

    zoom = pq.read_table(storage / "benchmark_zoom.parquet").to_pylist()  # VPT's zoom questions, with their boxes
    assert {r["subset"] for r in zoom} == {"letter", "digit"} and all(len(r["gt_box"]) == 4 for r in zoom)

    preds = pq.read_table(storage / "eval_predictions.parquet").to_pylist()
    assert "RefCOCO-RES" not in {p["benchmark"] for p in preds}  # masks come from the segmentation head
    assert all(p["gt_box"] for p in preds if p["benchmark"] == "Zoom")
    assert all(p["n_actions"] is None and p["actions"] is None for p in preds)  # a LLaVA adapter has no VPT tokens
    runs = {(p["mode"], p["ablation"]) for p in preds}
    assert runs == {("direct", "none"), ("cot", "normal"), ("cot", "oracle"), ("cot", "random")}
    oracle = [p for p in preds if p["ablation"] == "oracle" and p["benchmark"] == "HardBLINK"]
    assert oracle and all(p["error"] is None for p in oracle)
    # the oracle answer starts with the teacher's 100-code span, which therefore parses
    assert all(p["depth_spans"] and p["depth_spans_valid"][0] for p in oracle)
    for p in preds:  # correct is exactly pred == gold, so every score can be re-derived
        assert p["correct"] == (p["pred"] is not None and p["pred"] == p["gold"])

    scores = pq.read_table(storage / "eval_scores.parquet").to_pylist()
    row = next(s for s in scores if s["benchmark"] == "HardBLINK" and s["subset"] == "3points" and s["ablation"] == "normal")
    mine = [p for p in preds if p["benchmark"] == "HardBLINK" and p["subset"] == "3points" and p["ablation"] == "normal"]
    assert row["n"] == len(mine) and row["n_correct"] == sum(p["correct"] for p in mine)
    assert abs(row["chance_pct"] - 100 / 3) < 1e-6 and row["paper_aurora_pct"] == 66.9

    # a second evaluation appends to the history; DuckDB orders it by run time
    again = dg.materialize(list(defs.assets), selection=["eval_predictions", "eval_scores"], instance=instance, resources=defs.resources)
    assert again.success
    _, rows = catalog.query(settings.catalog_path, "select count(distinct eval_run_id) from eval_scores")
    assert rows == [(2,)]
    _, hist = catalog.query(settings.catalog_path, "select run_started_at from eval_scores order by run_started_at")
    assert len(hist) == 2 * len(scores)


def test_cli_score_eval_report_export(world, tmp_path, monkeypatch):
    import yaml

    from pipelines import cli

    workdir, settings, defs, instance = world
    # the CLI reads its config file, as a user's shell would: the world's settings, written out
    config = tmp_path / "world.yaml"
    config.write_text(yaml.safe_dump(settings.model_dump(mode="json")))
    monkeypatch.setenv("PTOK_CONFIG", str(config))
    monkeypatch.setenv("PTOK_WORKDIR", str(workdir))
    monkeypatch.setenv("DAGSTER_HOME", str(workdir / "dagster_home"))
    hb_root = settings.demo_root / "benchmarks" / "hardblink"
    gold = {json.loads(l)["question_id"]: json.loads(l)["text"] for l in (hb_root / "answers" / "blink_3pointscenter_answers.jsonl").read_text().splitlines()}
    qids = sorted(gold)
    answers = tmp_path / "answers.jsonl"
    # first half answered right in the forms models write, the rest wrong, plus one stray line
    wrong = {"(A)": "(B)", "(B)": "(C)", "(C)": "(A)"}
    lines = [{"question_id": q, "text": f"The answer is {gold[q]}." if i < len(qids) // 2 else wrong[gold[q]], "model_id": "x"}
             for i, q in enumerate(qids)]
    lines.append({"question_id": 999, "text": "(A)"})
    answers.write_text("\n".join(json.dumps(l) for l in lines) + "\n")
    # HardBLINK ids repeat across subsets: without --subset the CLI refuses and says why
    assert cli.main(["score", "--benchmark", "hardblink", "--root", str(hb_root), "--answers", str(answers)]) == 2
    assert cli.main(["score", "--benchmark", "hardblink", "--root", str(hb_root), "--answers", str(answers), "--subset", "3points"]) == 0
    _, rows = catalog.query(settings.catalog_path, "select subset, n, n_correct, ci_low_pct < 50 and 50 < ci_high_pct "
                            "from eval_scores where model_kind = 'answers_file'")
    assert rows == [("3points", len(qids), len(qids) // 2, True)]

    # all right this time; ptok compare pairs the two runs question by question
    all_right = tmp_path / "all_right.jsonl"
    all_right.write_text("".join(json.dumps({"question_id": q, "text": gold[q]}) + "\n" for q in qids))
    assert cli.main(["score", "--benchmark", "hardblink", "--root", str(hb_root), "--answers", str(all_right), "--subset", "3points",
                     "--compat", "lmms-eval==0.7.2", "vlmevalkit==2026-01-01"]) == 0
    _, extra = catalog.query(settings.catalog_path, "select extra_json from eval_predictions where model_id = 'answers:all_right.jsonl'")
    compat = [json.loads(e[0])["compat"] for e in extra]
    assert len(compat) == len(qids) and all(set(c) == {"ptok", "lmms-eval==0.7.2", "vlmevalkit==c3371551"} for c in compat)
    assert all(v["correct"] for c in compat for v in c.values())
    assert {(v["peer"], v["version"]) for v in compat[0].values()} == {("ptok", None), ("lmms-eval", "0.7.2"), ("vlmevalkit", "c3371551")}
    # a version no rule models is refused before anything is written
    assert cli.main(["score", "--benchmark", "hardblink", "--root", str(hb_root), "--answers", str(all_right), "--subset", "3points",
                     "--compat", "lmms-eval==0.6"]) == 2
    _, runs = catalog.query(settings.catalog_path, "select eval_run_id from eval_scores where model_kind = 'answers_file' order by model_id")  # all_right, then answers
    from pipelines.cli_eval import run_compare

    (cmp,), _, _ = run_compare(settings, runs[1][0], runs[0][0])
    assert (cmp["subset"], cmp["n_paired"], cmp["only_a"], cmp["only_b"]) == ("3points", len(qids), 0, len(qids) - len(qids) // 2)
    assert cli.main(["compare", runs[1][0], runs[0][0]]) == 0

    assert cli.main(["eval", "--benchmark", "hardblink", "--root", str(hb_root), "--model", "tiny"]) == 0
    _, rows = catalog.query(settings.catalog_path, "select distinct model_id, mode from eval_predictions where model_kind = 'base'")
    assert {r[0] for r in rows} == {"tiny"} and {r[1] for r in rows} == {"direct", "cot"}

    report = tmp_path / "report.html"
    assert cli.main(["report", "--out", str(report)]) == 0
    text = report.read_text()
    assert "Latest evaluation" in text and "data:image/png;base64" in text and "depth_vqvae" in text

    assert cli.main(["export-llava", str(tmp_path / "llava")]) == 0
    records = read_llava_json(tmp_path / "llava" / "curriculum.json")
    assert all((tmp_path / "llava" / "images" / r["image"]).is_file() for r in records)
