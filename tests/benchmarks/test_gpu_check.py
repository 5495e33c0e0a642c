"""benchmarks/gpu_check.py: the smoke run covers every section, failures and hangs are contained,
and the MFU arithmetic is the stated formula (no timing thresholds: speed is never asserted)."""

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[2]
BENCH_DIR = ROOT / "benchmarks"
sys.path.insert(0, str(BENCH_DIR))

import gpu_check  # noqa: E402
import gpu_check_llm  # noqa: E402
from gpu_check_report import to_markdown  # noqa: E402

THROUGHPUT_KEYS = ("images_per_s", "tokens_per_s", "constrained_tokens_per_s", "unconstrained_tokens_per_s")


def test_smoke_run_reports_every_section(tmp_path):
    out = tmp_path / "gc"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONUTF8": "1"}
    done = subprocess.run([sys.executable, str(BENCH_DIR / "gpu_check.py"), "--smoke", "--out", str(out)],
                          capture_output=True, text=True, env=env, timeout=900)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    report = json.loads(out.with_suffix(".json").read_text())
    assert report["mode"] == "smoke"
    sections = report["sections"]
    assert list(sections) == [s.name for s in gpu_check.SECTIONS]
    for name, section in sections.items():
        assert section["status"] in ("ok", "skipped"), (name, section)
        if section["status"] == "skipped":
            assert section["reason"], name
    skipped = {n for n, s in sections.items() if s["status"] == "skipped"}
    assert skipped == {s.name for s in gpu_check.SECTIONS if s.skip_reason}

    env_info = sections["environment"]["info"]
    assert env_info["torch"] == torch.__version__ and env_info["device_name"]
    for name, section in sections.items():
        if name == "environment" or section["status"] != "ok":
            continue
        assert section["rows"], name
        for row in section["rows"]:
            values = [row[k] for k in THROUGHPUT_KEYS if k in row]
            assert values and all(v > 0 for v in values), (name, row)

    depth = sections["depth_anything"]["rows"]
    assert {r["case"] for r in depth} == {"batch 1", "best batch"} and all(r["input"] == 70 for r in depth)
    best = next(r for r in depth if r["case"] == "best batch")
    assert best["images_per_s"] == max(r["images_per_s"] for r in depth)
    vq = {r["case"]: r for r in sections["vqvae"]["rows"]}
    assert set(vq) == {"train batch 2", "train batch 4", "extract batch 64"} and vq["extract batch 64"]["maps"] == 16
    assert "aurora" in sections["vqvae"]["model"]

    for name in ("lora_llava_7b", "lora_llava_13b", "lora_qwen2_5_vl_3b"):
        (row,) = sections[name]["rows"]
        assert math.isfinite(row["loss_first"]) and math.isfinite(row["loss_last"])
        moved, total = row["lora_b_moved"].split("/")
        assert moved == total and int(total) > 0  # every LoRA B matrix trained
        assert row["trainable"]["lora"] == row["params_lora"] > 0 and row["trainable"]["tokens"] > 0
        assert row["tokens_per_s"] == pytest.approx(row["batch"] * row["sequence"] / row["step_s"], rel=2e-3)
        assert row["model_flops_per_step"] > row["adapted_flops_per_step"] > 0
        assert row["mfu"] is None  # no bf16 peak is claimed for a CPU
        assert "6 (N_lm + N_lora) T" in sections[name]["notes"][0]

    # the FLOP count's parameters are the unwrapped model's (peft's LoRA and trainable copies not counted twice)
    from training.finetune.tokens import add_perception_tokens
    from training.llava.model import load_llava

    model, processor = load_llava("tiny")
    add_perception_tokens(model, processor.tokenizer)
    (row,) = sections["lora_llava_7b"]["rows"]
    for key, value in gpu_check_llm.parameter_counts(model, "llava").items():
        assert row[key] == value, key

    gen = sections["generation"]["rows"]
    assert [r["batch"] for r in gen] == [1, 2]
    for r in gen:
        ratio = (1 / r["constrained_tokens_per_s"]) / (1 / r["unconstrained_tokens_per_s"])
        assert r["constraint_overhead"] > 0 and 0 <= r["processor_share"] < 1
        assert r["constraint_overhead"] == pytest.approx(ratio, rel=0.02)  # seconds per token = 1 / tokens per second

    md = out.with_suffix(".md").read_text()
    assert "# GPU check (smoke)" in md and "## lora_qwen2_5_vl_3b" in md and "## Not measured" in md
    assert f"| cpu_lora | skipped | - | {gpu_check.SECTIONS[-2].skip_reason} |" in md


def _hang(*_args):
    import signal

    signal.pause()  # never returns: the parent must kill it


def _fail(*_args):
    raise ValueError("broken section")


def test_a_hung_section_is_killed_and_a_failing_one_recorded(monkeypatch):
    # the section runs in a fork of this process, so the patched runner is the one it calls
    monkeypatch.setattr(gpu_check, "run_section", _hang)
    hung = gpu_check.spawn_section("vqvae", True, 1.0)
    assert hung["status"] == "timeout" and "killed after 1 s" in hung["reason"]
    monkeypatch.setattr(gpu_check, "run_section", _fail)
    failed = gpu_check.spawn_section("vqvae", True, 120.0)
    assert failed["status"] == "failed" and failed["reason"] == "ValueError: broken section"
    assert "Traceback" in failed["traceback"]


def test_without_cuda_the_gpu_sections_are_skipped_and_the_others_run(monkeypatch):
    ran = []

    def fake_spawn(name, smoke, timeout):
        ran.append(name)
        if name == "environment":
            return {"status": "ok", "info": {"cuda_available": False}}
        if name == "cpu_vqvae":
            return {"status": "failed", "reason": "ValueError: x"}
        return {"status": "ok", "rows": [{"case": "c", "images_per_s": 1.0}]}

    monkeypatch.setattr(gpu_check, "spawn_section", fake_spawn)
    report = gpu_check.run_check(smoke=False, budget_s=10_000, log=lambda _m: None)
    assert ran == ["environment", "cpu_depth_anything", "cpu_vqvae"]  # a failure does not stop the rest
    gpu = [s.name for s in gpu_check.SECTIONS if s.where == "gpu"]
    for name in gpu:
        assert report["sections"][name] == {"status": "skipped", "reason": "no CUDA device (torch.cuda.is_available() is False)"}
    assert report["sections"]["cpu_vqvae"]["status"] == "failed"
    assert "- **cpu_vqvae** (failed): ValueError: x" in to_markdown(report)


def test_a_spent_budget_skips_sections_with_the_reason(monkeypatch):
    monkeypatch.setattr(gpu_check, "spawn_section", lambda *a: pytest.fail("nothing should start"))
    report = gpu_check.run_check(smoke=True, budget_s=gpu_check.MIN_SECTION_S - 1, log=lambda _m: None)
    assert all(s["status"] == "skipped" for s in report["sections"].values())
    assert "time budget" in report["sections"]["depth_anything"]["reason"]


def test_ratios_pair_the_gpu_and_cpu_rows():
    sections = {
        "depth_anything": {"status": "ok", "rows": [
            {"encoder": "vits", "case": "batch 1", "dtype": "float16", "images_per_s": 50.0},
            {"encoder": "vits", "case": "batch 1", "dtype": "bfloat16", "images_per_s": 40.0}]},
        "cpu_depth_anything": {"status": "ok", "rows": [{"encoder": "vits", "case": "batch 1", "images_per_s": 2.0}]},
        "vqvae": {"status": "failed"},
    }
    assert gpu_check.gpu_cpu_ratios(sections) == [
        {"case": "depth ViT-S batch 1", "gpu": 40.0, "cpu": 2.0, "unit": "images_per_s", "ratio": 20.0}]


def test_flop_count_follows_the_stated_formula():
    from training.llava.model import load_llava

    model, _ = load_llava("tiny")
    text, vis = model.config.text_config, model.config.vision_config
    batch, seq, vision_tokens = 2, 100, 2 * 5
    counts = gpu_check_llm.flop_counts(model.config, gpu_check_llm.parameter_counts(model, "llava"), 0, batch, seq,
                                       vision_tokens)
    head = model.lm_head.weight.numel()
    n_lm = sum(p.numel() for n, p in model.named_parameters()
               if "language_model" in n and "embed_tokens" not in n) + head
    n_vis = sum(p.numel() for n, p in model.named_parameters() if "vision_tower" in n)
    n_proj = sum(p.numel() for n, p in model.named_parameters() if "multi_modal_projector" in n)
    tokens = batch * seq
    attention = 12 * text.num_hidden_layers * text.hidden_size * seq * tokens
    vision = 2 * n_vis * vision_tokens + 4 * vis.num_hidden_layers * vis.hidden_size * 5 * vision_tokens
    assert counts["params_language"] == n_lm and counts["params_lora"] == 0
    assert counts["model_flops_per_step"] == 6 * n_lm * tokens + attention + 6 * n_proj * vision_tokens + vision
    assert counts["adapted_flops_per_step"] == (4 * (n_lm - head) + 6 * head) * tokens + attention \
        + 6 * n_proj * vision_tokens + vision


def test_parameters_are_counted_before_peft_wraps_the_model():
    from peft import LoraConfig, get_peft_model

    from training.llava.model import load_llava

    model, _ = load_llava("tiny")
    before = gpu_check_llm.parameter_counts(model, "llava")
    assert before["params_head"] == model.lm_head.weight.numel()
    wrapped = get_peft_model(model, LoraConfig(r=4, target_modules=["q_proj"], modules_to_save=["multi_modal_projector"]))
    with pytest.raises(ValueError, match="before wrapping with peft"):
        gpu_check_llm.parameter_counts(wrapped, "llava")


def test_peak_by_device_name():
    assert gpu_check_llm.peak_tflops("NVIDIA H100 80GB HBM3") == 989.4
    assert gpu_check_llm.peak_tflops("NVIDIA H100 PCIe") == 756.0
    assert gpu_check_llm.peak_tflops("NVIDIA H200") == 989.4
    assert gpu_check_llm.peak_tflops("Tesla T4") is None
