"""``ptok demo`` of this tree against a baseline commit, interleaved, in one run on one machine.

The baseline is exported with ``git archive`` into a temporary folder (no worktree, no checkout:
the repository's own state is not touched) and run with the same virtualenv. Each round runs, for
each tree in turn (the order alternates between rounds, so a load trend does not favour one tree),
a cold ``ptok demo`` in a fresh folder and then a second ``ptok demo`` in the same folder (the
no-op re-run). Per run: wall seconds, CPU seconds (user + sys of ``ptok`` and every process it
waited for: the fine-tune's Pipes subprocess included, read with ``os.wait4``), the load average
before and after, and the step counts and per-step seconds that ``ptok demo`` prints. CPU seconds
move much less than wall time when other work shares the machine; both are reported, with new/old
ratios of the medians.

    python benchmarks/bench_pipeline.py demo-compare --baseline 4b3d0b0 --rounds 1
"""

from __future__ import annotations

import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
_STEP_SECONDS = re.compile(r"^\s{2}\+ (\S+)\s+([\d.]+) s$", re.M)


def export_commit(commit: str, dest: Path) -> Path:
    """The tree of ``commit`` as plain files under ``dest`` (``git archive``: no worktree, no checkout)."""
    dest.mkdir(parents=True, exist_ok=True)
    archive = subprocess.run(["git", "-C", str(REPO), "archive", "--format=tar", commit], check=True, capture_output=True)
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive.stdout, check=True)
    return dest


def timed_run(cmd: list[str], env: dict, cwd: Path, log_path: Path, timeout: float) -> dict:
    """Run ``cmd``; wall seconds, CPU seconds of it and its waited-for children, load before and after."""
    load_before = os.getloadavg()
    start = time.perf_counter()
    with open(log_path, "w") as log:
        proc = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=log, stderr=subprocess.STDOUT, text=True)
        deadline = start + timeout
        while True:  # wait4 gives this child's own rusage (children it waited for included)
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.perf_counter() > deadline:
                proc.kill()
                pid, status, usage = os.wait4(proc.pid, 0)
                break
            time.sleep(0.05)
    wall = time.perf_counter() - start
    timed_out = time.perf_counter() > deadline
    proc.returncode = os.waitstatus_to_exitcode(status)
    return {"wall_seconds": wall, "timed_out": timed_out, "cpu_seconds": usage.ru_utime + usage.ru_stime, "user_seconds": usage.ru_utime,
            "sys_seconds": usage.ru_stime, "max_rss_mib": usage.ru_maxrss / 1024, "returncode": proc.returncode,
            "load_before": list(load_before), "load_after": list(os.getloadavg())}


def demo_pair(tree: Path, *, timeout: float, keep: bool = False) -> dict:
    """Cold ``ptok demo`` of ``tree`` in a fresh folder, then the no-op re-run in the same folder."""
    from bench_pipeline import parse_demo_output, pipeline_env

    workdir = Path(tempfile.mkdtemp(prefix="bench_cmp_"))
    env = pipeline_env(workdir, tree / "configs" / "demo.yaml")
    env["PYTHONPATH"] = str(tree)  # this tree's code, nothing of the other's
    env["PYTHONUTF8"] = "1"
    out = {"tree": str(tree), "workdir": str(workdir) if keep else None}
    try:
        for name in ("cold", "noop"):
            log_path = workdir / f"{name}.log"
            run = timed_run([sys.executable, "-m", "pipelines.cli", "demo"], env, workdir, log_path, timeout)
            text = log_path.read_text(errors="replace")
            run.update(parse_demo_output(text))
            run["step_seconds"] = {step: float(s) for step, s in _STEP_SECONDS.findall(text)}
            if run["returncode"] != 0:
                run["log_tail"] = text.splitlines()[-15:]
            out[name] = run
    finally:
        if not keep:
            shutil.rmtree(workdir, ignore_errors=True)
    return out


def compare(baseline: str, *, rounds: int = 1, timeout: float = 7200, log=print) -> dict:
    """``rounds`` interleaved pairs of (baseline, this tree); medians and new/old ratios."""
    base_dir = Path(tempfile.mkdtemp(prefix="bench_base_"))
    try:
        export_commit(baseline, base_dir)
        trees = {"old": base_dir, "new": REPO}
        runs: dict[str, list[dict]] = {"old": [], "new": []}
        for r in range(rounds):
            for label in (("old", "new") if r % 2 == 0 else ("new", "old")):
                log(f"round {r + 1}/{rounds}: {label} ({trees[label]})")
                pair = demo_pair(trees[label], timeout=timeout)
                runs[label].append(pair)
                for name in ("cold", "noop"):
                    x = pair[name]
                    log(f"  {name}: {x['wall_seconds']:.1f} s wall, {x['cpu_seconds']:.1f} s CPU, "
                        f"{x['n_materialized']} materialized, {x['n_fresh']} fresh, rc {x['returncode']}, "
                        f"load {x['load_before'][0]:.1f} -> {x['load_after'][0]:.1f}")
    finally:
        shutil.rmtree(base_dir, ignore_errors=True)
    summary = {}
    for name in ("cold", "noop"):
        row = {}
        for metric in ("wall_seconds", "cpu_seconds"):
            old = statistics.median(p[name][metric] for p in runs["old"])
            new = statistics.median(p[name][metric] for p in runs["new"])
            row[metric] = {"old": old, "new": new, "ratio": new / old if old else None}
        summary[name] = row
    return {"baseline": baseline, "head": _head(), "rounds": rounds, "cpu_count": os.cpu_count(),
            "summary": summary, "runs": runs}


def _head() -> str:
    sha = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    dirty = subprocess.run(["git", "-C", str(REPO), "status", "--porcelain", "--untracked-files=no"],
                           capture_output=True, text=True).stdout.strip()
    return sha + ("+uncommitted" if dirty else "")


def markdown(result: dict) -> str:
    """The before/after table of :func:`compare`."""
    lines = [f"# `ptok demo`: {result['head']} against {result['baseline']}", "",
             f"{result['rounds']} interleaved round(s) on one machine ({result['cpu_count']} CPUs). "
             "CPU = user + sys of `ptok` and the processes it waited for (the fine-tune subprocess included).", "",
             "| run | old wall s | new wall s | wall new/old | old CPU s | new CPU s | CPU new/old |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    for name, label in (("cold", "cold (fresh folder)"), ("noop", "no-op re-run")):
        w, c = result["summary"][name]["wall_seconds"], result["summary"][name]["cpu_seconds"]
        lines.append(f"| {label} | {w['old']:.1f} | {w['new']:.1f} | {w['ratio']:.2f} | {c['old']:.1f} | {c['new']:.1f} | {c['ratio']:.2f} |")
    lines += ["", "| tree | round | run | wall s | CPU s | materialized | fresh | failed | load 1-min before -> after |",
              "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for label in ("old", "new"):
        for i, pair in enumerate(result["runs"][label]):
            for name in ("cold", "noop"):
                x = pair[name]
                lines.append(f"| {label} | {i + 1} | {name} | {x['wall_seconds']:.1f} | {x['cpu_seconds']:.1f} | "
                             f"{x['n_materialized']} | {x['n_fresh']} | {x['n_failed']} | "
                             f"{x['load_before'][0]:.1f} -> {x['load_after'][0]:.1f} |")
    steps = sorted({s for label in ("old", "new") for p in result["runs"][label] for s in p["cold"]["step_seconds"]})
    if steps:
        lines += ["", "Cold run, seconds per step as `ptok demo` prints them (first round):", "",
                  "| step | old | new |", "| --- | --- | --- |"]
        old, new = result["runs"]["old"][0]["cold"]["step_seconds"], result["runs"]["new"][0]["cold"]["step_seconds"]
        for s in steps:
            lines.append(f"| {s} | {old.get(s, float('nan')):.1f} | {new.get(s, float('nan')):.1f} |")
    return "\n".join(lines) + "\n"


def write_results(result: dict, out_stem: Path) -> None:
    """``<out_stem>.json`` and ``.md``, each written to a temporary name and renamed."""
    for suffix, text in ((".json", json.dumps(result, indent=1)), (".md", markdown(result))):
        path = out_stem.with_suffix(suffix)
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text(text)
        os.replace(tmp, path)
