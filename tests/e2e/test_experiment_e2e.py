"""The paper's comparison as one graph on a small demo world: base / finetuned_llava / no_cot / aurora.

One materialization (module-scoped) of configs/demo-experiment.yaml's variants at the small world's
size; the comparison table is checked against the variants' own prediction tables, and adding a
variant afterwards materializes only that variant's assets (and the comparison).
"""

from __future__ import annotations

import copy
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml

from conftest import materialized_world, small_settings
from evaluation.stats import mcnemar_exact, wilson_ci

# one materialization of 4 variants (3 fine-tunes, 5 evaluation passes) on a shared 2-core machine
pytestmark = pytest.mark.timeout(3600)

CONFIG = Path(__file__).resolve().parents[2] / "configs" / "demo-experiment.yaml"
VARIANTS = yaml.safe_load(CONFIG.read_text())["experiment"]["variants"]
SMALL_BUDGET = dict(
    vqvae={"epochs": 2, "min_closest_point_agreement": 0.0, "min_codebook_usage": 0.0},
    curriculum={"tasks": ["depth_atomic", "depth_cot", "depth_direct"], "epochs": 3, "percents": [1.0, 0.5, 0.0],
                "epoch_size": 12, "marked_fraction": 1.0},
    finetune={"max_steps": 4, "per_device_batch_size": 2, "lr": 0.01, "lora_r": 8, "lora_alpha": 16,
              "save_steps": 4, "logging_steps": 1, "span_samples": 0},
    evaluation={"demo_scenes": 4, "max_per_subset": 1, "max_new_tokens": 120, "batch_size": 4,
                "runs": [["direct", "none"], ["cot", "normal"]]},
)


def _settings(workdir, variants):
    return small_settings(workdir, **copy.deepcopy(SMALL_BUDGET), experiment={"variants": copy.deepcopy(variants)})


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("experiment")
    settings = _settings(workdir, VARIANTS)
    with materialized_world(workdir, settings, "*") as (defs, instance):
        yield workdir, settings, defs, instance


def test_the_config_lists_the_papers_four_variants():
    assert list(VARIANTS) == ["base", "finetuned_llava", "no_cot", "aurora"]


def test_comparison_table_shape_and_values(world):
    workdir, settings, defs, instance = world
    storage = workdir / "storage"
    table = pq.read_table(storage / "paper_comparison.parquet").to_pylist()
    preds = {v: pq.read_table(storage / f"eval_predictions__{v}.parquet").to_pylist() for v in VARIANTS}
    headline = {"base": ("direct", "none"), "finetuned_llava": ("direct", "none"), "no_cot": ("direct", "none"),
                "aurora": ("cot", "normal")}
    subsets = sorted({(p["benchmark"], p["subset"]) for v, rows in preds.items() for p in rows
                      if (p["mode"], p["ablation"]) == headline[v]})
    assert ("BLINK", "Relative_Depth") in subsets and ("HardBLINK", "3points") in subsets
    # one row per benchmark x subset x variant, variants in the config's order
    assert [(r["benchmark"], r["subset"], r["variant"]) for r in table] == [(*s, v) for s in subsets for v in VARIANTS]
    for v, rows in preds.items():
        assert {p["variant"] for p in rows} == {v}  # each variant's rows carry its name
        assert {p["model_kind"] for p in rows} == {"base" if v == "base" else "adapter"}
    outcome = {v: {(p["benchmark"], p["subset"], p["question_id"]): bool(p["correct"]) for p in rows
                   if (p["mode"], p["ablation"]) == headline[v] and not p["error"]} for v, rows in preds.items()}
    paper = {("BLINK", "Relative_Depth"): {"base": 54.0, "finetuned_llava": 68.5, "aurora": 64.5},
             ("HardBLINK", "5points"): {"base": 29.0, "finetuned_llava": 41.1, "aurora": 54.8}}
    for r in table:
        mine = {q[2]: c for q, c in outcome[r["variant"]].items() if q[:2] == (r["benchmark"], r["subset"])}
        k = sum(mine.values())
        assert (r["mode"], r["ablation"]) == headline[r["variant"]]
        assert (r["n"], r["n_correct"]) == (len(mine), k) and r["n"] == 1  # max_per_subset
        assert r["accuracy_pct"] == pytest.approx(100.0 * k / len(mine))
        assert (r["ci_low_pct"], r["ci_high_pct"]) == pytest.approx(wilson_ci(k, len(mine)))
        expected_paper = paper.get((r["benchmark"], r["subset"]), {}).get(r["variant"])
        if expected_paper is not None:
            assert r["paper_pct"] == expected_paper
        assert r["paper_method"] == {"base": "LLaVA 1.5 13B", "finetuned_llava": "Fine-tuned LLaVA", "no_cot": None,
                                     "aurora": "LLaVA-Aurora"}[r["variant"]]
        for ref in ("base", "aurora"):
            if ref == r["variant"]:
                assert r[f"vs_{ref}_p_value"] is None
                continue
            other = {q[2]: c for q, c in outcome[ref].items() if q[:2] == (r["benchmark"], r["subset"])}
            both = sorted(set(mine) & set(other))
            test = mcnemar_exact([mine[q] for q in both], [other[q] for q in both])
            assert (r[f"vs_{ref}_n_paired"], r[f"vs_{ref}_only_variant"], r[f"vs_{ref}_only_other"]) == (
                test["n"], test["only_a"], test["only_b"])
            assert r[f"vs_{ref}_p_value"] == pytest.approx(test["p_value"])


def test_each_variant_trained_on_its_own_curriculum(world):
    workdir, *_ = world
    storage = workdir / "storage"
    tasks = {v: set(pq.read_table(storage / f"curriculum__{v}.parquet", columns=["task"])["task"].to_pylist())
             for v in ("finetuned_llava", "no_cot", "aurora")}
    assert tasks == {"finetuned_llava": {"depth_direct"}, "no_cot": {"depth_atomic", "depth_direct"},
                     "aurora": {"depth_atomic", "depth_cot", "depth_direct"}}
    assert not (storage / "curriculum__base.parquet").exists() and not (storage / "lora_adapter__base.parquet").exists()
    adapters = {v: pq.read_table(storage / f"lora_adapter__{v}.parquet").to_pylist()[0]["path"] for v in tasks}
    assert len(set(adapters.values())) == 3  # three separate runs


def test_depth_decoded_from_the_models_own_tokens(world):
    from evaluation.benchmarks.demo import demo_points_name
    from evaluation.decoded_depth import closest_on_map, vqvae_decoder
    from perception_tokens.safe_json import load_json_file
    from perception_tokens.vocab import decode_depth
    from training.vqvae import load_vqvae

    workdir, settings, *_ = world
    storage = workdir / "storage"
    rows = pq.read_table(storage / "decoded_depth.parquet").to_pylist()
    cot = [p for p in pq.read_table(storage / "eval_predictions__aurora.parquet").to_pylist()
           if p["mode"] == "cot" and not p["error"] and (p["benchmark"] == "HardBLINK" or p["subset"] == "Relative_Depth")]
    # one row per relative-depth CoT answer of the one CoT variant, none dropped
    assert sorted((r["benchmark"], r["subset"], r["question_id"]) for r in rows) == sorted(
        (p["benchmark"], p["subset"], p["question_id"]) for p in cot) and {r["variant"] for r in rows} == {"aurora"}
    decode = vqvae_decoder(load_vqvae(pq.read_table(storage / "depth_vqvae.parquet").to_pylist()[0]["path"]))
    by_q = {(p["benchmark"], p["subset"], p["question_id"]): p for p in cot}
    print(f"decoded_depth: {len(rows)} answers, {sum(r['mse'] is not None for r in rows)} with a valid span")
    for r in rows:
        p = by_q[(r["benchmark"], r["subset"], r["question_id"])]
        spans = [s for s, ok in zip(p["depth_spans"], p["depth_spans_valid"]) if ok]
        if not spans:
            assert r["problem"] == "no valid depth span in the answer" and r["mse"] is None
            continue
        # the demo teacher and the demo's marker positions are known: both measures are there
        assert r["problem"] is None and 0.0 <= r["mse"] <= 1.0 and r["abs_rel"] >= 0.0
        points = load_json_file(workdir / "demo" / "benchmarks" / "depth" / demo_points_name(r["benchmark"], r["subset"], r["question_id"]))
        assert r["decoded_answer"] == closest_on_map(decode(decode_depth(spans[0])), points)
        assert r["decoded_correct"] == (r["decoded_answer"] == r["gold"])


def test_adding_a_variant_materializes_only_that_variant(world, monkeypatch):
    from pipelines.definitions import build_definitions
    from pipelines.runner import materialize_graph

    workdir, settings, defs, instance = world
    monkeypatch.setenv("PTOK_WORKDIR", str(workdir))
    more = {**VARIANTS, "cot_only": {"curriculum": {"tasks": ["depth_cot"], "percents": [0.0] * 3}, "headline": ["cot", "normal"],
                                     "evaluation": {"runs": [["cot", "normal"]]}}}
    report = materialize_graph(build_definitions(_settings(workdir, more)), instance, "*", log=lambda m: None)
    assert not report.failed, report.failed
    materialized = {s.asset for s in report.steps if s.status == "materialized"}
    assert materialized == {"curriculum__cot_only", "lora_adapter__cot_only", "eval_predictions__cot_only",
                            "eval_scores__cot_only", "paper_comparison", "decoded_depth"}
    assert any(s.status == "skipped (fresh)" and s.asset == "eval_predictions__aurora" for s in report.steps)
    table = pq.read_table(workdir / "storage" / "paper_comparison.parquet").to_pylist()
    assert [r["variant"] for r in table[:5]] == list(more)
