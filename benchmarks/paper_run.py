"""Wall time and cost of the paper's full run, from gpu_check.json throughputs (or FLOP estimates).

    python benchmarks/scale.py --paper-run [--gpu-check PATH] [--gpus 8] [--usd-per-gpu-hour 3.0]

Stages and their work (the ``aurora`` profile; docs/FIDELITY.md):

- ``pseudo_depth``: Depth Anything V1 ViT-S at 518 on ADE20K + LVIS + RefCOCO images;
- ``vqvae_train``: the AiT VQ-VAE, 20 epochs at batch 8 (``ait_depth_vqvae.py:26-27``) over those maps;
- ``depth_tokens``: code extraction of every map;
- ``finetune``: LoRA of LLaVA-1.5-13B over the depth curriculum (10 stages x 20,000 samples) and
  the counting one (10 x 5,000), at the sequence length gpu_check measured (576 image tokens + text);
- ``evaluation``: greedy constrained generation on the benchmark rows (``EVAL_ROWS``).

A stage's rate comes from the gpu_check section named in ``MEASURED`` when that section is
``ok``; the 13B fine-tune and evaluation fall back to the 7B measurement scaled by the
language-model parameter ratio; otherwise the FLOP count (``FLOPS``) at ``--assumed-mfu`` of the
989 TFLOP/s bf16 peak (evaluation: the memory-bandwidth bound of decoding). Each row says which it used. GPUs split the work perfectly (no
communication or input-pipeline cost): a lower bound on wall time.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

DATASET_IMAGES = {"ade20k": 22_210, "lvis": 119_979, "refcoco": 19_994}  # as scale.py
IMAGES = sum(DATASET_IMAGES.values())
VQVAE_EPOCHS = 20
FINETUNE_SAMPLES = 10 * 20_000 + 10 * 5_000  # depth + counting curricula (FIDELITY.md, "schedule")
# Benchmark rows evaluated (depth and counting subsets): BLINK depth 124 + counting 120,
# HardBLINK 3 x 124, CV-Bench depth 600 + count 788.
EVAL_ROWS = 124 + 120 + 3 * 124 + 600 + 788
EVAL_TOKENS_PER_ROW = 200  # a CoT answer: a 102-token depth span and the reasoning around it
FINETUNE_SEQUENCE = 792  # LLaVA: 576 image tokens + 216 text tokens (gpu_check's training batch)
PARAMS_7B, PARAMS_13B = 6.61e9, 12.85e9  # language model incl. head (gpu_check params_language)
PEAK_FLOPS = 989.4e12
# FLOPs per unit of work for the fallback (FLOP-count) estimate
FLOPS = {
    "pseudo_depth": 1.2e11,  # ViT-S/14 at 518: 12 x (24 n d^2 + 4 n^2 d), n 1369, d 384 = 9.3e10, + DPT head
    "vqvae_train": 1.5e11,  # 3 x (encoder + decoder) at 320 px, ~25 GFLOP each way
    "depth_tokens": 2.5e10,  # encoder at 320 px
    "finetune": 6 * PARAMS_13B,  # per token, forward + backward
}
# Decoding is bound by memory bandwidth, not FLOPs: each step reads the bf16 weights once for the
# whole batch (H100 SXM HBM3: 3.35 TB/s), so the fallback is batch x bandwidth / weight bytes.
EVAL_BATCH, HBM_BYTES_PER_S = 8, 3.35e12
EVAL_FALLBACK_TOKENS_PER_S = EVAL_BATCH * HBM_BYTES_PER_S / (2 * PARAMS_13B)
# (gpu_check section, row match, value key) per stage
MEASURED = {
    "pseudo_depth": ("depth_anything", {"encoder": "vits", "case": "best batch"}, "images_per_s"),
    "vqvae_train": ("vqvae", {"case": "train batch 8"}, "images_per_s"),
    "depth_tokens": ("vqvae", {"case": "extract batch 64"}, "images_per_s"),
    "finetune": ("lora_llava_13b", {}, "tokens_per_s"),
    "evaluation": ("generation", {"batch": 8}, "constrained_tokens_per_s"),
}
# measured on the 7B, scaled to the 13B by parameter count when the 13B section did not run
SCALED_FROM_7B = {"finetune": ("lora_llava_7b", {}, "tokens_per_s")}
MEASURED_ON_7B = ("evaluation",)


@dataclass(frozen=True)
class StageEstimate:
    stage: str
    work: float
    unit: str
    rate_per_gpu: float  # units per second on one GPU
    source: str

    def hours(self, gpus: int) -> float:
        return self.work / self.rate_per_gpu / gpus / 3600


def stage_work() -> dict[str, tuple[float, str]]:
    return {
        "pseudo_depth": (IMAGES, "images"),
        "vqvae_train": (VQVAE_EPOCHS * IMAGES, "images"),
        "depth_tokens": (IMAGES, "images"),
        "finetune": (FINETUNE_SAMPLES * FINETUNE_SEQUENCE, "tokens"),
        "evaluation": (EVAL_ROWS * EVAL_TOKENS_PER_ROW, "tokens"),
    }


def _best_row(section: dict, match: dict, key: str) -> dict | None:
    rows = [r for r in section.get("rows", []) if all(r.get(k) == v for k, v in match.items()) and r.get(key)]
    return max(rows, key=lambda r: r[key]) if rows else None


def _measured(report: dict | None, section_name: str, match: dict, key: str) -> tuple[float, str] | None:
    if not report or report.get("mode") != "full":
        return None  # a smoke run's tiny models say nothing about the real ones
    section = report.get("sections", {}).get(section_name, {})
    if section.get("status") != "ok":
        return None
    row = _best_row(section, match, key)
    if row is None:
        return None
    what = ", ".join(f"{k} {row[k]}" for k in ("case", "encoder", "dtype", "batch") if k in row)
    return float(row[key]), f"measured: gpu_check {section_name} ({what}) on {section.get('device', '?')}"


def _rate(report: dict | None, stage: str) -> tuple[float, str] | None:
    """(units per second on one GPU, source) measured for ``stage`` (13B-equivalent), or None."""
    found = _measured(report, *MEASURED[stage])
    if found is not None and stage in MEASURED_ON_7B:  # the check generates with the 7B
        return found[0] * PARAMS_7B / PARAMS_13B, found[1] + " (7B), scaled to 13B by parameter count"
    if found is None and stage in SCALED_FROM_7B:
        seven = _measured(report, *SCALED_FROM_7B[stage])
        if seven is not None:
            return seven[0] * PARAMS_7B / PARAMS_13B, seven[1] + " (7B), scaled to 13B by parameter count"
    return found


def estimate(report: dict | None, assumed_mfu: float = 0.3) -> list[StageEstimate]:
    """One estimate per stage: measured where the report has it, else the FLOP count at ``assumed_mfu``."""
    out = []
    for stage, (work, unit) in stage_work().items():
        found = _rate(report, stage)
        if found is None and stage == "evaluation":
            found = (EVAL_FALLBACK_TOKENS_PER_S, f"bandwidth estimate: batch {EVAL_BATCH}, 13B bf16 weights read once "
                     "per step at 3.35 TB/s")
        if found is None:
            found = (PEAK_FLOPS * assumed_mfu / FLOPS[stage],
                     f"FLOP estimate: {FLOPS[stage]:.3g} FLOP per {unit[:-1]} at {assumed_mfu:.0%} of 989 TFLOP/s")
        out.append(StageEstimate(stage, work, unit, *found))
    return out


def load_report(path: Path) -> dict | None:
    """gpu_check.json, or None when the file is absent."""
    if not path.exists():
        return None
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not a gpu_check report ({exc})") from exc


def to_markdown(rows: list[StageEstimate], gpus: int, usd_per_gpu_hour: float, report_path: Path, report: dict | None) -> str:
    used = "measured throughputs where present" if report and report.get("mode") == "full" else "FLOP estimates only"
    lines = [f"Paper's full run on {gpus} GPUs at ${usd_per_gpu_hour:.2f} per GPU-hour ({used}; "
             f"{report_path} {'read' if report else 'absent'}):", "",
             "| stage | work | per GPU | wall (h) | GPU-hours | cost ($) | source |", "| --- | --- | --- | --- | --- | --- | --- |"]
    total_h = total_cost = 0.0
    for r in rows:
        wall = r.hours(gpus)
        gpu_hours = wall * gpus
        total_h += wall
        total_cost += gpu_hours * usd_per_gpu_hour
        lines.append(f"| {r.stage} | {r.work:,.0f} {r.unit} | {r.rate_per_gpu:,.1f} {r.unit}/s | {wall:.2f} | "
                     f"{gpu_hours:.1f} | {gpu_hours * usd_per_gpu_hour:,.0f} | {r.source} |")
    lines.append(f"| **total** | | | **{total_h:.2f}** | {total_h * gpus:.1f} | **{total_cost:,.0f}** | stages one after another |")
    return "\n".join(lines) + "\n"
