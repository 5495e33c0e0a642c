"""run_all's output: the machine description, results.json and results.md."""

from __future__ import annotations

import json
import os
import platform
import subprocess
from pathlib import Path

from run_all_cases import BENCHMARKS, say

REPO = Path(__file__).resolve().parents[1]


# ---------------------------------------------------------------------------- machine info


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _mem_total_gib() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 2**20, 1)
    except OSError:
        pass
    return None


def _git_commit() -> str | None:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True,
                              timeout=10).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def machine_info() -> dict:
    """CPU, memory, thread counts, versions and the load average now."""
    import torch

    return {
        "cpu_model": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "cpus_available": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "omp_num_threads_env": os.environ.get("OMP_NUM_THREADS"),
        "mem_total_gib": _mem_total_gib(),
        "load_avg_1_5_15": [round(x, 2) for x in os.getloadavg()],
        "cuda": torch.cuda.is_available(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "git_commit": _git_commit(),
    }


# ---------------------------------------------------------------------------- results files


def _fmt(x: float) -> str:
    if x == 0:
        return "0"
    if abs(x) >= 100:
        return f"{x:,.0f}"
    return f"{x:.3g}"


def render_markdown(results: dict) -> str:
    m = results["machine"]
    lines = [
        "# Benchmark results",
        "",
        f"Written by `benchmarks/run_all.py` ({results['mode']} mode), last run {results['finished']}. "
        "Each ratio is ours / reference, both measured in the same run on the same machine; "
        "`better` says which direction is good. Absolute numbers depend on the machine and on what else was running "
        "(see the load average); the ratios are the figures to compare.",
        "",
        "| benchmark | case | ours | reference | ratio | unit | better | notes |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name in BENCHMARKS:
        entry = results["benchmarks"].get(name)
        if not entry:
            continue
        if entry.get("error"):
            lines.append(f"| {name} | FAILED | | | | | | {entry['error'].splitlines()[-1][:200]} |")
            continue
        for r in entry["rows"]:
            lines.append(
                f"| {name} | {r['case']} | {_fmt(r['ours'])} ({r['ours_label']}) | {_fmt(r['reference'])} "
                f"({r['reference_label']}) | **{r['ratio']:.2f}** | {r['unit']} | {r['better']} | {r['notes']} |")
    lines += ["", "## Machine", ""]
    for key, value in m.items():
        lines.append(f"- {key}: {value}")
    lines += ["", "## Per benchmark", "", "| benchmark | started | seconds | load average at start (1/5/15 min) | torch threads |",
              "| --- | --- | --- | --- | --- |"]
    for name in BENCHMARKS:
        entry = results["benchmarks"].get(name)
        if entry:
            lines.append(f"| {name} | {entry['started']} | {entry['seconds']:.0f} | {entry['load_avg_start']} | "
                         f"{entry['torch_threads']} |")
    lines += ["", "Details (every measurement, sizes, step times) are in `results.json`.", ""]
    return "\n".join(lines)


def _atomic_write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def write_results(results: dict, out_dir: Path) -> tuple[Path, Path]:
    """Write ``results.json`` and ``results.md`` under ``out_dir`` (atomically)."""
    json_path, md_path = out_dir / "results.json", out_dir / "results.md"
    _atomic_write(json_path, json.dumps(results, indent=1, default=str) + "\n")
    _atomic_write(md_path, render_markdown(results))
    return json_path, md_path


def load_previous(out_dir: Path, mode: str) -> dict:
    """Earlier results of the same mode in ``out_dir`` (so ``--only`` updates one benchmark)."""
    path = out_dir / "results.json"
    if path.exists():
        try:
            old = json.loads(path.read_text())
            if old.get("mode") == mode and isinstance(old.get("benchmarks"), dict):
                return old
        except (OSError, ValueError):
            say(f"ignoring unreadable {path}")
    return {"benchmarks": {}}
