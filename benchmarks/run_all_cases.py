"""The six benchmarks of run_all, and their registry: each returns
``{"rows": [result_row...], "details": ...}``."""

from __future__ import annotations

import shutil
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Callable


def say(message: str) -> None:
    print(f"[run_all {time.strftime('%H:%M:%S')}] {message}", flush=True)


# ---------------------------------------------------------------------------- rows


def result_row(case: str, ours: float, reference: float, unit: str, better: str, notes: str,
               ours_label: str, reference_label: str) -> dict:
    """One line of the results table; ``ratio`` = ours / reference."""
    if ours <= 0 or reference <= 0:
        raise ValueError(f"{case}: measurements must be positive, got ours={ours}, reference={reference}")
    return {"case": case, "ours": ours, "reference": reference, "ratio": ours / reference, "unit": unit,
            "better": better, "ours_label": ours_label, "reference_label": reference_label, "notes": notes}


@contextmanager
def _torch_threads(threads: list[int]):
    """Run a case with ``threads[0]`` torch threads (if given), then restore the previous count."""
    import torch

    before = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads[0])
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _threads_label(threads: list[int]) -> str:
    return f", {threads[0]} torch threads" if threads else ""


# ---------------------------------------------------------------------------- 1. depth tokens


def bench_depth_tokens(sizes=(("tiny", 256, 64), ("full", 32, 16)), seed: int = 0, repeats: int = 2) -> dict:
    """VQ-VAE code extraction images/s: ``extract_codes`` (batched) vs ``extract_codes_one_by_one``.

    ``sizes``: (config name, number of maps, batch size[, torch threads]) per case; configs "tiny" (80 px)
    and "full" (320 px); without a thread count the current setting is used.
    """
    import torch

    from bench_depth_tokens import bench_extract

    rows, details = [], []
    for size, n, batch, *threads in sizes:
        say(f"depth_tokens: {size} VQ-VAE, {n} maps, batch {batch}{_threads_label(threads)}")
        with _torch_threads(threads):
            rec = bench_extract(size, n, batch, torch.device("cpu"), seed, repeats)
        details.append(rec)
        rows.append(result_row(
            f"{size} VQ-VAE ({rec['image_size']} px), {rec['torch_threads']} thread(s)", rec["batched_images_per_s"],
            rec["one_by_one_images_per_s"],
            "images/s", "higher",
            f"{rec['params'] / 1e6:.2f} M params, {n} maps, batch {batch}, best of {repeats} alternating; "
            f"code agreement {rec['code_agreement']:.4f}",
            "batched extract_codes", "one by one (get_codes.py loop)"))
        say(f"  batched {rec['batched_images_per_s']:.1f} img/s, one by one {rec['one_by_one_images_per_s']:.1f} img/s")
    return {"rows": rows, "details": details}


# ---------------------------------------------------------------------------- 2. pseudo depth


def bench_pseudo_depth(models=(("tiny", 16, 8), ("vits", 8, 4)), input_size: int = 518,
                       height: int = 480, width: int = 640, repeats: int = 2) -> dict:
    """Depth Anything labelling images/s: ``label_images`` (batched) vs ``label_images_one_by_one``.

    ``models``: (encoder, number of images, batch size[, torch threads]); random weights, same model both ways.
    """
    from bench_pseudo_depth import bench_model

    rows, details = [], []
    for encoder, n, batch, *threads in models:
        say(f"pseudo_depth: Depth Anything V2 {encoder}, {n} images {width}x{height}, input {input_size}, "
            f"batch {batch}{_threads_label(threads)}")
        with _torch_threads(threads):
            rec = bench_model(encoder, images=n, batch_size=batch, input_size=input_size, height=height, width=width,
                              device="cpu", repeats=repeats)
        details.append(rec)
        rows.append(result_row(
            f"Depth Anything V2 {encoder} ({rec['params_m']} M params), {rec['threads']} thread(s)", rec["batched_img_per_s"],
            rec["one_by_one_img_per_s"], "images/s", "higher",
            f"random weights, {n} images {width}x{height} -> {input_size}x{input_size}, batch {batch}, "
            f"best of {repeats} alternating; "
            "whole path: preprocess, forward, resize back, min-max, PNG",
            "batched label_images", "one by one (run.py loop)"))
        say(f"  batched {rec['batched_img_per_s']:.2f} img/s, one by one {rec['one_by_one_img_per_s']:.2f} img/s")
    return {"rows": rows, "details": details}


# ---------------------------------------------------------------------------- 3. incremental


def quick_demo_config(directory: Path) -> Path:
    """configs/demo.yaml shrunk for a smoke run (fewer images, steps, questions)."""
    import yaml

    from bench_pipeline import DEMO_CONFIG

    raw = yaml.safe_load(DEMO_CONFIG.read_text())
    raw["demo"].update({"n_ade20k": 4, "n_lvis": 4, "n_refcoco": 3, "width": 160, "height": 120})
    raw["vqvae"]["epochs"] = 2
    raw["curriculum"]["epoch_size"] = 8
    raw["finetune"].update({"max_steps": 4, "save_steps": 2, "span_samples": 2})
    raw["evaluation"] = {"demo_scenes": 2, "max_per_subset": 1, "max_new_tokens": 24, "runs": [["direct", "none"], ["cot", "normal"]]}
    path = directory / "quick_demo.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def bench_incremental(config: str | None = None, threads: int = 0) -> dict:
    """Wall time of ``ptok demo`` run a second time with nothing changed vs the first time."""
    from bench_pipeline import DEMO_CONFIG, demo_twice

    tmp = None
    if config == "quick":
        tmp = Path(tempfile.mkdtemp(prefix="bench_cfg_"))
        path = quick_demo_config(tmp)
    else:
        path = Path(config) if config else DEMO_CONFIG
    try:
        res = demo_twice(path, threads=threads)
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
    first, second = res["first"], res["second"]
    again = second["materialized_steps"]
    notes = (f"run 1: {first['n_materialized']} steps materialized; run 2: {second['n_materialized']} materialized, "
             f"{second['n_fresh']} fresh and skipped" + (f" (re-ran: {', '.join(again)})" if again else ""))
    rows = [result_row("ptok demo, 2nd run vs 1st (nothing changed)", second["wall_seconds"], first["wall_seconds"],
                       "s", "lower", notes + f"; config {path.name}; wall time incl. process start",
                       "second run", "first run")]
    return {"rows": rows, "details": res}


# ---------------------------------------------------------------------------- 4 and 6. memory, scaling

_MATERIALIZED: dict[tuple, dict] = {}  # (n_images, threads) -> materialize_size result, shared by memory and scaling


def _materialize_runs(sizes: tuple[int, int], threads: int) -> dict[int, dict]:
    from bench_pipeline import materialize_size

    out = {}
    for n in sizes:
        key = (n, threads)
        if key not in _MATERIALIZED:
            _MATERIALIZED[key] = materialize_size(n, threads=threads, log=say)
        else:
            say(f"{n} images: reusing the runs already made")
        out[n] = _MATERIALIZED[key]
    return out


def bench_memory(sizes: tuple[int, int] = (200, 2000), threads: int = 0) -> dict:
    """Peak RSS of materializing ``pseudo_depth`` and ``depth_tokens`` at two image counts (fresh process each)."""
    small, large = sizes
    runs = _materialize_runs(sizes, threads)
    rows = []
    for asset in ("pseudo_depth", "depth_tokens"):
        a, b = runs[small][asset], runs[large][asset]
        notes = (f"{a['rows']} vs {b['rows']} rows (all 6 partitions, one process); RSS before materializing "
                 f"{a['baseline_rss_mib']:.0f} / {b['baseline_rss_mib']:.0f} MiB, growth above it "
                 f"{a['peak_rss_mib'] - a['baseline_rss_mib']:.0f} -> {b['peak_rss_mib'] - b['baseline_rss_mib']:.0f} MiB"
                 + ("; demo ground-truth depth teacher" if asset == "pseudo_depth" else "; tiny VQ-VAE"))
        rows.append(result_row(f"{asset} peak RSS, {b['rows']} vs {a['rows']} images", b["peak_rss_mib"], a["peak_rss_mib"],
                               "MiB", "flat (ratio ~1)", notes, f"{b['rows']} images", f"{a['rows']} images"))
    return {"rows": rows, "details": {str(n): _slim(r) for n, r in runs.items()}}


def bench_scaling(sizes: tuple[int, int] = (200, 2000), threads: int = 0) -> dict:
    """Time per image of pseudo_depth + depth_tokens (sum of step times) at two image counts."""
    small, large = sizes
    runs = _materialize_runs(sizes, threads)

    def per_image_ms(run: dict, assets=("pseudo_depth", "depth_tokens")) -> float:
        return 1000 * sum(run[a]["step_seconds"] for a in assets) / run["n_images"]

    a, b = runs[small], runs[large]
    t_a = sum(a[x]["step_seconds"] for x in ("pseudo_depth", "depth_tokens"))
    t_b = sum(b[x]["step_seconds"] for x in ("pseudo_depth", "depth_tokens"))
    marginal = 1000 * (t_b - t_a) / max(b["n_images"] - a["n_images"], 1)
    notes = (f"pseudo_depth {per_image_ms(a, ('pseudo_depth',)):.1f} -> {per_image_ms(b, ('pseudo_depth',)):.1f} ms/img, "
             f"depth_tokens {per_image_ms(a, ('depth_tokens',)):.1f} -> {per_image_ms(b, ('depth_tokens',)):.1f} ms/img; "
             f"marginal cost {marginal:.1f} ms/img; step times of 12 Dagster runs (6 partitions each), "
             "so a fixed per-run overhead is spread over more images at the larger size")
    rows = [result_row(f"pseudo_depth + depth_tokens per image, {b['n_images']} vs {a['n_images']} images",
                       per_image_ms(b), per_image_ms(a), "ms/image", "lower or flat", notes,
                       f"{b['n_images']} images", f"{a['n_images']} images")]
    details = {}
    for n, run in runs.items():
        details[str(n)] = {"n_images": run["n_images"], **{
            asset: {"step_seconds": run[asset]["step_seconds"], "steps": run[asset]["steps"]}
            for asset in ("pseudo_depth", "depth_tokens")}}
    return {"rows": rows, "details": details}


def _slim(run: dict) -> dict:
    out = {k: v for k, v in run.items() if k not in ("pseudo_depth", "depth_tokens")}
    for asset in ("pseudo_depth", "depth_tokens"):
        if asset in run:
            out[asset] = {k: v for k, v in run[asset].items() if k != "steps"}
    return out


# ---------------------------------------------------------------------------- 5. evaluation


def bench_evaluation(n_rows: int = 8, max_new_tokens: int = 128, batch_size: int = 4, repeats: int = 3,
                     push: tuple[bool, ...] = (False, True)) -> dict:
    """Tokens/s of constrained vs unconstrained generation (tiny LLaVA + perception tokens, HardBLINK rows)."""
    from bench_constrained_generation import bench_constrained

    rows, details = [], []
    for p in push:
        say(f"evaluation: {n_rows} HardBLINK rows, max {max_new_tokens} new tokens, batch {batch_size}, "
            f"{'pushed towards perception tokens' if p else 'plain tiny model'}")
        rec = bench_constrained(n_rows=n_rows, max_new_tokens=max_new_tokens, batch_size=batch_size, repeats=repeats, push=p)
        details.append(rec)
        c, u = rec["constrained"], rec["unconstrained"]
        case = "tiny LLaVA, pushed towards perception tokens" if p else "tiny LLaVA, untrained"
        notes = (f"constraint's logits processor {100 * rec['processor_share']:.1f}% of constrained time; "
                 f"{c['new_tokens']} vs {u['new_tokens']} new tokens, {c['seconds']:.2f} vs {u['seconds']:.2f} s; "
                 f"valid depth spans {c['valid_depth_spans']} vs {u['valid_depth_spans']} (invalid {c['invalid_depth_spans']} vs "
                 f"{u['invalid_depth_spans']}); {rec['rows']} rows CoT, batch {batch_size}, vocab {rec['vocab_size']}, "
                 f"best of {repeats}")
        rows.append(result_row(case, c["tokens_per_s"], u["tokens_per_s"], "tokens/s", "higher (~1 = no overhead)", notes,
                               "constrained", "unconstrained"))
        say(f"  constrained {c['tokens_per_s']:.0f} tok/s, unconstrained {u['tokens_per_s']:.0f} tok/s")
    return {"rows": rows, "details": details}


# ---------------------------------------------------------------------------- registry

BENCHMARKS: dict[str, Callable[..., dict]] = {
    "depth_tokens": bench_depth_tokens,
    "pseudo_depth": bench_pseudo_depth,
    "incremental": bench_incremental,
    "memory": bench_memory,
    "evaluation": bench_evaluation,
    "scaling": bench_scaling,
}
