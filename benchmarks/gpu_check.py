"""One-command GPU check: throughput and memory of every model stage at the real sizes, random weights.

    make gpu-check                                   # = .venv/bin/python benchmarks/gpu_check.py
    .venv/bin/python benchmarks/gpu_check.py --smoke --out /tmp/gc   # tiny sizes on the CPU (~1-2 min)

Writes ``benchmarks/results/gpu_check.{json,md}``: the device and library versions, then one
section per stage (``SECTIONS``): Depth Anything V1 ViT-S/L at 518, the aurora VQ-VAE (train
and extract), a LoRA step of LLaVA-1.5-7B, Qwen2.5-VL-3B and LLaVA-1.5-13B, generation with
the depth constraint on and off, and the CPU runs for the GPU/CPU ratios. Each section runs
in its own process with its own timeout (a hung kernel or an out-of-memory cannot stop the
others; GPU memory is returned when the process exits), forked from a parent that imported the
libraries once and never touched CUDA and the whole check keeps within
``--budget-s``: a section that no longer fits is recorded as skipped, with the reason.
Nothing is downloaded: models are built from their configs (``gpu_check_vision.py``,
``gpu_check_llm.py``).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import signal
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BENCH_DIR = Path(__file__).resolve().parent
DEFAULT_OUT = BENCH_DIR / "results" / "gpu_check"
FULL_BUDGET_S = 450  # section time of the whole check: 7.5 min, under the 8 min asked of it
SMOKE_SECTION_TIMEOUT_S = 300  # only a safety net: a smoke section takes seconds
MIN_SECTION_S = 25  # a section given less than this is skipped rather than started


@dataclass(frozen=True)
class Section:
    name: str
    where: str  # "gpu": the CUDA device (the CPU in --smoke); "cpu": always the CPU; "any": no device work
    timeout_s: int  # in the full run
    skip_reason: str | None = None  # set: never run, recorded as skipped with this reason


SECTIONS = (
    Section("environment", "any", 90),
    Section("depth_anything", "gpu", 120),
    Section("vqvae", "gpu", 90),
    Section("lora_llava_7b", "gpu", 150),
    Section("lora_qwen2_5_vl_3b", "gpu", 120),
    Section("generation", "gpu", 120),
    Section("lora_llava_13b", "gpu", 150),  # last of the GPU sections: run if the time allows
    Section("cpu_depth_anything", "cpu", 90),
    Section("cpu_vqvae", "cpu", 90),
    Section("cpu_lora", "cpu", 0, skip_reason="a 7B LoRA step on the CPU takes minutes and ~60 GB of RAM: "
            "outside the check's time; the smoke run covers the code"),
    Section("cpu_generation", "cpu", 0, skip_reason="7B generation on the CPU is seconds per token: outside the "
            "check's time; the smoke run covers the code"),
)
# GPU / CPU ratios: (name, gpu section, gpu row match, cpu section, cpu row match, value key)
RATIOS = (
    ("depth ViT-S batch 1", "depth_anything", {"encoder": "vits", "case": "batch 1", "dtype": "bfloat16"},
     "cpu_depth_anything", {"encoder": "vits", "case": "batch 1"}, "images_per_s"),
    ("depth ViT-L batch 1", "depth_anything", {"encoder": "vitl", "case": "batch 1", "dtype": "bfloat16"},
     "cpu_depth_anything", {"encoder": "vitl", "case": "batch 1"}, "images_per_s"),
    ("VQ-VAE train batch 8", "vqvae", {"case": "train batch 8"}, "cpu_vqvae", {"case": "train batch 8"}, "images_per_s"),
    ("VQ-VAE extract", "vqvae", {"case": "extract batch 64"}, "cpu_vqvae", {"case": "extract batch 64"}, "images_per_s"),
)


# ----------------------------------------------------------------------------- one section (child process)


def run_section(name: str, smoke: bool, seconds: float) -> dict:
    """Run one section in this process; returns its result dict."""
    sys.path.insert(0, str(BENCH_DIR))
    import torch

    from gpu_check_vision import SectionPlan

    section = next(s for s in SECTIONS if s.name == name)
    on_gpu = section.where == "gpu" and not smoke
    if on_gpu and not torch.cuda.is_available():
        raise RuntimeError("no CUDA device: a GPU section does not fall back to the CPU at full size")
    plan = SectionPlan(device="cuda" if on_gpu else "cpu", smoke=smoke, deadline=time.monotonic() + seconds - 10)
    import gpu_check_llm as llm
    import gpu_check_vision as vision

    device_name = torch.cuda.get_device_name() if on_gpu else "cpu"
    lora = {"lora_llava_7b": ("random-7b", "llava", "LLaVA-1.5-7B"), "lora_llava_13b": ("random-13b", "llava", "LLaVA-1.5-13B"),
            "lora_qwen2_5_vl_3b": ("random-3b", "qwen2_5_vl", "Qwen2.5-VL-3B")}
    if name == "environment":
        result = {"info": vision.environment(plan)}
    elif name in ("depth_anything", "cpu_depth_anything"):
        result = vision.depth_anything(plan)
    elif name in ("vqvae", "cpu_vqvae"):
        result = vision.vqvae(plan)
    elif name in lora:
        preset, family, label = lora[name]
        result = llm.lora_step(plan, "tiny" if smoke else preset, family, label, device_name)
    elif name == "generation":
        result = llm.generation(plan)
    else:
        raise ValueError(f"no runner for section {name!r}")
    return {**result, "device": device_name}


def child_main(name: str, smoke: bool, seconds: float, result_path: str, log_path: str) -> None:
    """Entry of a forked section process: own process group, output to ``log_path``, result to ``result_path``."""
    os.setsid()  # the parent kills the whole group at the timeout
    log = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.dup2(log, 1)
    os.dup2(log, 2)
    try:
        payload = {"status": "ok", **run_section(name, smoke, seconds)}
        code = 0
    except Exception as exc:  # noqa: BLE001 - the parent records the failure and runs the other sections
        payload = {"status": "failed", "reason": f"{type(exc).__name__}: {exc}",
                   "traceback": traceback.format_exc()[-3000:]}
        code = 1
    write_atomic(Path(result_path), json.dumps(payload, indent=1, default=str))
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def preload() -> None:
    """Import torch, transformers, peft and the project's model code once, before the sections are
    forked: each section then starts in a fraction of a second instead of re-importing (~6 s each).
    Nothing here touches CUDA (a forked child must initialise it itself)."""
    sys.path.insert(0, str(BENCH_DIR))
    import gpu_check_llm  # noqa: F401
    import gpu_check_vision  # noqa: F401
    import peft  # noqa: F401
    import torch  # noqa: F401

    import bench_constrained_generation  # noqa: F401
    import evaluation.generate  # noqa: F401
    import perception_tokens.depth  # noqa: F401
    import training.backends.qwen2_5_vl.model  # noqa: F401
    import training.llava.model  # noqa: F401
    import training.vqvae  # noqa: F401


# ----------------------------------------------------------------------------- the check (parent process)


def write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def spawn_section(name: str, smoke: bool, timeout: float) -> dict:
    """Run one section in a forked process (own process group), killed with its group at ``timeout`` s."""
    with tempfile.TemporaryDirectory(prefix="ptok_gpu_check_") as tmp:
        result_path, log_path = Path(tmp) / "result.json", Path(tmp) / "section.log"
        proc = multiprocessing.get_context("fork").Process(
            target=child_main, args=(name, smoke, timeout, str(result_path), str(log_path)), daemon=False)
        t0 = time.monotonic()
        proc.start()
        proc.join(timeout)
        timed_out = proc.is_alive()
        if timed_out:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:  # not yet its own group
                proc.kill()
            proc.join()
        seconds = round(time.monotonic() - t0, 1)
        log_tail = log_path.read_text(errors="replace")[-2000:] if log_path.exists() else ""
        if timed_out:
            return {"status": "timeout", "reason": f"killed after {timeout:.0f} s (section time limit)",
                    "seconds": seconds, "log_tail": log_tail}
        if result_path.exists():
            return {**json.loads(result_path.read_text()), "seconds": seconds}
        return {"status": "failed", "reason": f"process exited {proc.exitcode} without a result",
                "seconds": seconds, "log_tail": log_tail}


def _find_row(section: dict, match: dict) -> dict | None:
    for row in section.get("rows", []):
        if all(row.get(k) == v for k, v in match.items()):
            return row
    return None


def gpu_cpu_ratios(sections: dict) -> list[dict]:
    out = []
    for label, gpu_name, gpu_match, cpu_name, cpu_match, key in RATIOS:
        gpu, cpu = sections.get(gpu_name, {}), sections.get(cpu_name, {})
        if gpu.get("status") != "ok" or cpu.get("status") != "ok":
            continue
        g, c = _find_row(gpu, gpu_match), _find_row(cpu, cpu_match)
        if g and c and c.get(key):
            out.append({"case": label, "gpu": g[key], "cpu": c[key], "unit": key, "ratio": round(g[key] / c[key], 2)})
    return out


def run_check(smoke: bool, budget_s: float, only: list[str] | None = None, log=print) -> dict:
    """Run every section in order within ``budget_s``; returns the report dict."""
    started = time.monotonic()
    report = {"mode": "smoke" if smoke else "full", "started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
              "budget_s": budget_s, "sections": {}}
    cuda = None
    for section in SECTIONS:
        if only and section.name not in only and section.name != "environment":
            continue
        left = budget_s - (time.monotonic() - started)
        timeout = min(SMOKE_SECTION_TIMEOUT_S if smoke else section.timeout_s, left)
        if section.skip_reason:
            result = {"status": "skipped", "reason": section.skip_reason}
        elif section.where == "gpu" and not smoke and cuda is False:
            result = {"status": "skipped", "reason": "no CUDA device (torch.cuda.is_available() is False)"}
        elif timeout < MIN_SECTION_S:
            result = {"status": "skipped", "reason": f"the check's time budget ({budget_s:.0f} s) is spent: {left:.0f} s left"}
        else:
            log(f"[gpu_check] {section.name}: up to {timeout:.0f} s ...")
            result = spawn_section(section.name, smoke, timeout)
        if section.name == "environment" and result["status"] == "ok":
            cuda = bool(result["info"]["cuda_available"])
        report["sections"][section.name] = result
        log(f"[gpu_check] {section.name}: {result['status']}" + (f" ({result['reason']})" if result.get("reason") else ""))
    report["ratios"] = gpu_cpu_ratios(report["sections"])
    report["seconds"] = round(time.monotonic() - started, 1)
    return report


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--smoke", action="store_true", help="tiny sizes on the CPU, every section (tests use this)")
    p.add_argument("--out", default=None, help="output path without suffix (default benchmarks/results/gpu_check; "
                   "a temporary folder with --smoke)")
    p.add_argument("--budget-s", type=float, default=None, help=f"total section time (default {FULL_BUDGET_S} s)")
    p.add_argument("--only", nargs="+", choices=[s.name for s in SECTIONS], help="run these sections only")
    args = p.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    # If anything asks torch.cuda.is_available() before the fork, NVML answers it: the CUDA driver
    # stays uninitialised in this process, as a forked child needs.
    os.environ.setdefault("PYTORCH_NVML_BASED_CUDA_CHECK", "1")
    preload()
    import torch

    if torch.cuda.is_initialized():
        raise RuntimeError("CUDA was initialised while importing the libraries: sections cannot be forked")
    from gpu_check_report import to_markdown

    budget = args.budget_s or (len(SECTIONS) * SMOKE_SECTION_TIMEOUT_S if args.smoke else FULL_BUDGET_S)
    out = Path(args.out) if args.out else (Path(tempfile.gettempdir()) / "ptok_gpu_check_smoke" / "gpu_check"
                                           if args.smoke else DEFAULT_OUT)
    report = run_check(args.smoke, budget, args.only)
    write_atomic(out.with_suffix(".json"), json.dumps(report, indent=1, default=str))
    write_atomic(out.with_suffix(".md"), to_markdown(report))
    print(f"[gpu_check] wrote {out.with_suffix('.json')} and {out.with_suffix('.md')} in {report['seconds']} s")
    failed = [n for n, s in report["sections"].items() if s["status"] in ("failed", "timeout")]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    sys.exit(main())
