"""Whole-pipeline measurements in fresh processes: incremental re-run, peak memory, scaling.

Every measurement runs in a temporary working folder of its own (``PTOK_WORKDIR``,
``DAGSTER_HOME`` and, for the demo, ``PTOK_CONFIG``), never in the project's ``.ptok``.

- :func:`demo_twice`: ``ptok demo`` as a subprocess, twice in the same folder; wall time of
  each and the step counts it prints.
- ``demo-compare --baseline <commit>`` (``benchmarks/demo_compare.py``): the cold demo and the
  no-op re-run of this tree against a baseline commit, interleaved in one run; wall and CPU
  seconds, load average, new/old ratios; writes ``benchmarks/results/demo_compare.{json,md}``.
- :func:`materialize_sizes`: for each image count, demo data of that size; the sources
  and ``depth_vqvae`` are materialized by unmeasured setup processes, ``pseudo_depth``
  (all partitions) and ``depth_tokens`` (all partitions) each by a fresh measured process
  that reports its RSS before materializing (after imports and loading the definitions),
  its peak RSS while materializing (``VmHWM`` after resetting it with ``clear_refs``; falls
  back to ``getrusage`` where /proc is missing), and the step times of
  :func:`pipelines.runner.materialize_graph`.

The measured process is this file run as ``python bench_pipeline.py worker``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

import yaml

REPO = Path(__file__).resolve().parents[1]
DEMO_CONFIG = REPO / "configs" / "demo.yaml"
# ptok demo prints one line per step ("  + name  1.2 s", "  = name  fresh, skipped", "  ! name FAILED") and a summary
_STEP_RE = re.compile(r"^\s{2}([+=!-]) (\S+)", re.M)
_SUMMARY_RE = re.compile(
    r"demo finished in ([\d.]+) s: (\d+) step\(s\) materialized, (\d+) fresh and skipped, (\d+) failed")


def _say(message: str) -> None:
    print(f"[bench] {message}", flush=True)


def _venv_ptok() -> list[str]:
    ptok = Path(sys.executable).parent / "ptok"
    return [str(ptok)] if ptok.exists() else [sys.executable, "-m", "pipelines.cli"]


def pipeline_env(workdir: Path, config: Path, threads: int = 0) -> dict[str, str]:
    """Environment of a pipeline subprocess confined to ``workdir``."""
    env = dict(os.environ)
    env.update({
        "PTOK_WORKDIR": str(workdir),
        "DAGSTER_HOME": str(workdir / "dagster_home"),
        "PTOK_CONFIG": str(config),
        "HF_HUB_OFFLINE": "1",
        "TOKENIZERS_PARALLELISM": "false",
        "COLUMNS": "200",  # rich wraps at 80 columns on a pipe; the summary line must stay whole
        "PYTHONPATH": os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")]).rstrip(os.pathsep),
    })
    if threads > 0:
        env["OMP_NUM_THREADS"] = str(threads)
    (workdir / "dagster_home").mkdir(parents=True, exist_ok=True)
    return env


def parse_demo_output(text: str) -> dict:
    """Step counts from ``ptok demo``'s output: per-step marks and its summary line."""
    marks = _STEP_RE.findall(text)
    steps = {
        "materialized": [name for mark, name in marks if mark == "+"],
        "fresh": [name for mark, name in marks if mark == "="],
        "failed": [name for mark, name in marks if mark in "!-"],
    }
    m = _SUMMARY_RE.search(" ".join(text.split()))
    summary = None
    if m:
        summary = {"seconds": float(m.group(1)), "materialized": int(m.group(2)), "fresh_skipped": int(m.group(3)),
                   "failed": int(m.group(4))}
    return {"summary": summary, "n_materialized": len(steps["materialized"]), "n_fresh": len(steps["fresh"]),
            "n_failed": len(steps["failed"]), "materialized_steps": steps["materialized"],
            "failed_steps": steps["failed"]}


def _run(cmd: list[str], env: dict, cwd: Path, timeout: float, log_path: Path) -> tuple[float, str]:
    start = time.perf_counter()
    proc = subprocess.run(cmd, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          timeout=timeout)
    seconds = time.perf_counter() - start
    log_path.write_text(proc.stdout)
    if proc.returncode != 0:
        tail = "\n".join(proc.stdout.splitlines()[-15:])
        raise RuntimeError(f"{' '.join(cmd)} exited {proc.returncode} (log {log_path}):\n{tail}")
    return seconds, proc.stdout


def demo_twice(config: Path = DEMO_CONFIG, *, threads: int = 0, timeout: float = 1800, keep: bool = False) -> dict:
    """Run ``ptok demo`` twice in one fresh folder; wall time and step counts of each run."""
    workdir = Path(tempfile.mkdtemp(prefix="bench_demo_"))
    env = pipeline_env(workdir, config, threads)
    runs = []
    for i in (1, 2):
        _say(f"ptok demo, run {i} of 2 in {workdir} (config {config.name})")
        seconds, out = _run([*_venv_ptok(), "demo"], env, workdir, timeout, workdir / f"demo_run{i}.log")
        parsed = parse_demo_output(out)
        runs.append({"wall_seconds": seconds, **parsed})
        _say(f"  run {i}: {seconds:.1f} s, {parsed['n_materialized']} materialized, {parsed['n_fresh']} fresh")
    if not keep:
        _rmtree(workdir)
    return {"workdir": str(workdir) if keep else None, "config": str(config), "first": runs[0], "second": runs[1]}


def scaled_demo_config(n_images: int, *, width: int = 160, height: int = 120, vqvae_epochs: int = 1,
                       num_shards: int = 2) -> dict:
    """Demo config with ``n_images`` images in total, split like configs/demo.yaml (3 : 3 : 2)."""
    n_ade = max(2, round(n_images * 3 / 8))
    n_lvis = max(2, round(n_images * 3 / 8))
    n_ref = max(2, n_images - n_ade - n_lvis)
    return {
        "storage": {"root": "storage"},
        "demo": {"enabled": True, "root": "demo_data", "n_ade20k": n_ade, "n_lvis": n_lvis, "n_refcoco": n_ref,
                 "seed": 0, "width": width, "height": height},
        "datasets": {"num_shards": num_shards},
        "vqvae": {"preset": "tiny", "epochs": vqvae_epochs},
    }


SOURCES = ["ade20k_images", "lvis_images", "refcoco_images"]
MEASURED = ["pseudo_depth", "depth_tokens"]


def materialize_size(n_images: int, *, threads: int = 0, timeout: float = 900, width: int = 160, height: int = 120,
                     vqvae_epochs: int = 1, log: Callable[[str], None] = _say) -> dict:
    """Peak RSS and step times of ``pseudo_depth`` and ``depth_tokens`` on ``n_images`` demo images."""
    workdir = Path(tempfile.mkdtemp(prefix=f"bench_mem{n_images}_"))
    config = workdir / "config.yaml"
    raw = scaled_demo_config(n_images, width=width, height=height, vqvae_epochs=vqvae_epochs)
    config.write_text(yaml.safe_dump(raw))
    env = pipeline_env(workdir, config, threads)
    plan = [("setup", SOURCES), ("measure", ["pseudo_depth"]), ("setup", ["depth_vqvae"]), ("measure", ["depth_tokens"])]
    out: dict = {"n_images_config": n_images, "config": raw}
    try:
        for kind, selection in plan:
            report = workdir / f"report_{selection[0]}.json"
            log(f"{n_images} images: {kind} {'+'.join(selection)}")
            cmd = [sys.executable, str(Path(__file__).resolve()), "worker", "--report", str(report), *selection]
            wall, _ = _run(cmd, env, workdir, timeout, workdir / f"log_{selection[0]}.txt")
            rep = json.loads(report.read_text())
            failed = [s for s in rep["steps"] if s["status"] != "materialized"]
            if failed:
                raise RuntimeError(f"{'+'.join(selection)} on {n_images} images: steps not materialized: {failed[:3]}")
            if kind == "measure":
                name = selection[0]
                out[name] = {**rep, "process_wall_seconds": wall}
                log(f"  {name}: peak RSS {rep['peak_rss_mib']:.0f} MiB (before materializing {rep['baseline_rss_mib']:.0f}), "
                    f"{rep['rows']} rows, steps {rep['step_seconds']:.1f} s")
        out["n_images"] = out["pseudo_depth"]["rows"]
    finally:
        _rmtree(workdir)
    return out


def _rmtree(path: Path) -> None:
    import shutil

    shutil.rmtree(path, ignore_errors=True)


def _proc_status_mib(field: str) -> float | None:
    """``VmRSS`` / ``VmHWM`` of this process from /proc (Linux), in MiB."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def _reset_peak_rss() -> bool:
    """Reset this process's peak RSS to its current RSS (Linux ``clear_refs`` 5); False if unsupported."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def _ru_maxrss_mib() -> float:
    # Linux reports KiB. Caveat: after fork + exec, ru_maxrss starts at the *parent's* RSS at
    # fork time, so a worker started by a big parent reads high; VmHWM (per address space) does not.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def worker(selection: list[str], report: Path) -> int:
    """Materialize ``selection`` (every partition) in this process and write a JSON report."""
    import torch  # noqa: F401  (imported before the baseline: every measured step uses it)

    import training.vqvae  # noqa: F401
    from perception_tokens import depth  # noqa: F401
    from pipelines.definitions import build_definitions
    from pipelines.instance import get_instance
    from pipelines.runner import materialize_graph
    from pipeline_lib.settings import load_settings

    settings = load_settings()
    defs = build_definitions(settings)
    instance = get_instance()
    baseline = _proc_status_mib("VmRSS")
    # peak from here on: import-time transients must not hide what materializing costs
    reset = _reset_peak_rss()
    start = time.perf_counter()
    result = materialize_graph(defs, instance, selection, log=lambda m: print(m, flush=True))
    wall = time.perf_counter() - start
    peak = _proc_status_mib("VmHWM") if reset else None
    if peak is None or baseline is None:  # no /proc: the whole process's high-water mark
        baseline, peak = baseline or 0.0, _ru_maxrss_mib()
    rows = _count_rows(Path(settings.storage_root) / selection[0])
    payload = {
        "selection": selection,
        "baseline_rss_mib": baseline,
        "peak_rss_mib": peak,
        "peak_measure": "VmHWM after clear_refs" if reset else "ru_maxrss",
        "ru_maxrss_mib": _ru_maxrss_mib(),
        "step_seconds": result.seconds,
        "materialize_wall_seconds": wall,
        "rows": rows,
        "torch_threads": torch.get_num_threads(),
        "steps": [{"label": s.asset, "status": s.status,
                   "seconds": s.seconds, "error": s.error} for s in result.steps],
    }
    tmp = report.with_suffix(".tmp")
    tmp.write_text(json.dumps(payload, indent=1))
    os.replace(tmp, report)
    return 0


def _count_rows(asset_dir: Path) -> int:
    import pyarrow.parquet as pq

    if asset_dir.with_suffix(".parquet").exists():
        return pq.ParquetFile(asset_dir.with_suffix(".parquet")).metadata.num_rows
    return sum(pq.ParquetFile(p).metadata.num_rows for p in asset_dir.rglob("*.parquet")
               if not any(part.startswith((".", "_")) for part in p.relative_to(asset_dir).parts))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True)
    w = sub.add_parser("worker", help="(internal) materialize a selection and report peak RSS")
    w.add_argument("--report", type=Path, required=True)
    w.add_argument("selection", nargs="+")
    d = sub.add_parser("demo-twice", help="ptok demo twice in a fresh folder")
    d.add_argument("--config", type=Path, default=DEMO_CONFIG)
    c = sub.add_parser("demo-compare", help="cold and no-op ptok demo of this tree against a baseline commit, interleaved")
    c.add_argument("--baseline", default="4b3d0b0", help="commit to compare with (exported by git archive)")
    c.add_argument("--rounds", type=int, default=1)
    c.add_argument("--timeout", type=float, default=7200, help="seconds per ptok demo before it is killed (a loaded 2-core "
                   "machine took over 30 min for the baseline's cold run)")
    c.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "demo_compare")
    m = sub.add_parser("memory", help="peak RSS of pseudo_depth and depth_tokens at these image counts")
    m.add_argument("sizes", nargs="+", type=int)
    args = p.parse_args(argv)
    if args.command == "worker":
        sys.path.insert(0, str(REPO))
        return worker(args.selection, args.report)
    if args.command == "demo-twice":
        print(json.dumps(demo_twice(args.config), indent=1))
    elif args.command == "demo-compare":
        from demo_compare import compare, markdown, write_results

        result = compare(args.baseline, rounds=args.rounds, timeout=args.timeout, log=_say)
        write_results(result, args.out)
        print(markdown(result))
    else:
        print(json.dumps({n: materialize_size(n) for n in args.sizes}, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
