"""Run every benchmark and write benchmarks/results/results.json and results.md.

    .venv/bin/python benchmarks/run_all.py                    # everything (~15 min on 2 cores)
    .venv/bin/python benchmarks/run_all.py --only memory      # one benchmark, merged into the results
    .venv/bin/python benchmarks/run_all.py --quick            # small sizes (smoke run; writes to a temp dir)

Each benchmark is a RATIO of two measurements taken in the same run on the same machine
(ours vs a reference path), so a figure can be compared across machines even when the
absolute times cannot:

- ``depth_tokens``: VQ-VAE code extraction, batched vs one image per forward (the reference
  get_codes.py loop), tiny (80 px) and full (320 px) configs, images/s;
- ``pseudo_depth``: Depth Anything labelling, batched fixed-size inference vs one image per
  forward (the reference run.py loop), tiny and ViT-S-sized (random weights) at input 518;
- ``incremental``: ``ptok demo`` a second time with nothing changed vs the first time;
- ``memory``: peak RSS of materializing ``pseudo_depth`` and ``depth_tokens`` (all
  partitions, fresh process each) on 2,000 vs 200 demo images (flat is the goal);
- ``evaluation``: constrained vs unconstrained generation on the same prompts, tokens/s;
- ``scaling``: time per image of pseudo_depth + depth_tokens at 2,000 vs 200 images
  (reuses the runs of ``memory`` when both run).

``ratio`` is always ours / reference; the ``better`` column says which direction is good.
Timings are never asserted anywhere; tests/benchmarks only checks the harness.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
import tempfile
import time
import traceback
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
for p in (str(REPO), str(HERE)):
    if p not in sys.path:
        sys.path.insert(0, p)

# the cases (with their registry) and the report are run_all's own modules; what tests and
# other scripts use stays reachable as run_all.X
from run_all_cases import BENCHMARKS, bench_depth_tokens, quick_demo_config, result_row, say  # noqa: E402
from run_all_report import load_previous, machine_info, render_markdown, write_results  # noqa: E402

__all__ = ["BENCHMARKS", "PRESETS", "bench_depth_tokens", "load_previous", "machine_info", "main", "quick_demo_config",
           "render_markdown", "result_row", "run_benchmark", "say", "write_results"]

RESULTS_DIR = HERE / "results"


PRESETS: dict[str, dict[str, dict]] = {
    "full": {
        # the last case of each again with every core: batching pays more with more threads
        "depth_tokens": {"sizes": (("tiny", 256, 64), ("full", 32, 16), ("full", 32, 16, os.cpu_count() or 1))},
        "pseudo_depth": {"models": (("tiny", 16, 8), ("vits", 8, 4), ("vits", 8, 4, os.cpu_count() or 1)), "input_size": 518},
        "incremental": {"config": None},
        "memory": {"sizes": (200, 2000)},
        "evaluation": {"n_rows": 8, "max_new_tokens": 128, "batch_size": 4, "repeats": 3},
        "scaling": {"sizes": (200, 2000)},
    },
    "quick": {
        "depth_tokens": {"sizes": (("tiny", 16, 8), ("full", 4, 4)), "repeats": 1},
        "pseudo_depth": {"models": (("tiny", 4, 2),), "input_size": 518, "repeats": 1},
        "incremental": {"config": "quick"},
        "memory": {"sizes": (20, 200)},
        "evaluation": {"n_rows": 4, "max_new_tokens": 32, "batch_size": 2, "repeats": 1},
        "scaling": {"sizes": (20, 200)},
    },
}
PIPELINE_BENCHMARKS = {"incremental", "memory", "scaling"}  # run pipeline subprocesses: take a thread count


def run_benchmark(name: str, params: dict) -> dict:
    """Run one benchmark; its rows, details, time and the load average when it started."""
    import torch

    started = dt.datetime.now().isoformat(timespec="seconds")
    load = [round(x, 2) for x in os.getloadavg()]
    say(f"=== {name} (load average {load}) ===")
    t0 = time.perf_counter()
    try:
        out = BENCHMARKS[name](**params)
        error = None
    except Exception:  # one failing benchmark must not lose the others' figures
        error = traceback.format_exc()
        say(f"{name} FAILED:\n{error}")
        out = {"rows": [], "details": None}
    return {**out, "error": error, "params": params, "started": started, "seconds": time.perf_counter() - t0,
            "load_avg_start": load, "torch_threads": torch.get_num_threads()}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog=__doc__.split("\n\n", 1)[1])
    p.add_argument("--only", action="append", choices=sorted(BENCHMARKS),
                   help="run only this benchmark (repeatable); the others' earlier results are kept")
    p.add_argument("--quick", action="store_true", help="small sizes for a smoke run")
    p.add_argument("--out", type=Path, help="results folder (default benchmarks/results; with --quick a temp folder)")
    p.add_argument("--threads", type=int, default=1,
                   help="torch / OpenMP threads, also given to pipeline subprocesses (0 = torch's default). Default 1: "
                        "on a shared 2-core machine two spinning OpenMP threads make timings swing 10x and more")
    args = p.parse_args(argv)

    if args.threads > 0:
        import torch

        torch.set_num_threads(args.threads)
        os.environ["OMP_NUM_THREADS"] = str(args.threads)
    mode = "quick" if args.quick else "full"
    out_dir = args.out or (Path(tempfile.gettempdir()) / "ptok_bench_quick" if args.quick else RESULTS_DIR)
    names = [n for n in BENCHMARKS if not args.only or n in args.only]
    results = load_previous(out_dir, mode)
    results.update({"mode": mode, "machine": machine_info(), "started": dt.datetime.now().isoformat(timespec="seconds")})
    say(f"{mode} run of {', '.join(names)}; machine {results['machine']['cpu_count']} CPUs, load {results['machine']['load_avg_1_5_15']}")
    t0 = time.perf_counter()
    for name in names:
        params = dict(PRESETS[mode][name])
        if name in PIPELINE_BENCHMARKS:
            params["threads"] = args.threads
        results["benchmarks"][name] = run_benchmark(name, params)
        results["finished"] = dt.datetime.now().isoformat(timespec="seconds")
        results["load_avg_end"] = [round(x, 2) for x in os.getloadavg()]
        write_results(results, out_dir)  # after each benchmark: a later failure keeps what was measured
    results["total_seconds"] = time.perf_counter() - t0
    json_path, md_path = write_results(results, out_dir)
    say(f"done in {results['total_seconds']:.0f} s -> {json_path}, {md_path}")
    print(render_markdown(results))
    return 1 if any(results["benchmarks"][n].get("error") for n in names) else 0


if __name__ == "__main__":
    sys.exit(main())
