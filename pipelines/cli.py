"""``ptok``: the pipeline from the command line (demo, materialize, sql, ui, ...)."""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

console = Console(highlight=False)


def say(message: str) -> None:
    """Print plain text (asset labels contain [brackets] that rich would read as markup)."""
    console.print(message, markup=False)


def warn(message: str) -> None:
    """A warning on stderr, so piped output (``ptok sql ... > x.csv``) stays clean."""
    print(f"warning: {message}", file=sys.stderr)


def _defs():
    from pipelines.definitions import defs

    return defs


def _settings():
    from pipeline_lib.settings import load_settings

    return load_settings()


def print_table(columns: list[str], rows: list[tuple], title: str | None = None) -> None:
    table = Table(title=title, show_lines=False)
    for c in columns:
        table.add_column(str(c))
    for r in rows:
        table.add_row(*[_fmt(v) for v in r])
    console.print(table)


def _fmt(v) -> str:
    if isinstance(v, (bytes, bytearray)):
        return f"<{len(v)} bytes>"
    if isinstance(v, float):
        return f"{v:.4g}"
    s = str(v)
    return s if len(s) <= 80 else s[:77] + "..."


def cmd_sql(args: argparse.Namespace) -> int:
    from pipeline_lib import catalog
    from pipelines import sql_output

    settings = _settings()
    allowed = catalog.allowed_dirs_for(settings)
    out = Path(args.out) if args.out else None
    if out is not None:
        sql_output.check_out_path(out, allowed, force=args.force)
    if Path(settings.storage_root).exists():  # views of tables added or removed since the last run; warns only
        catalog.try_refresh(settings.catalog_path, settings.storage_root, warn=warn)
    if out is not None and out.suffix.lower() == ".parquet":
        table = catalog.query_arrow(settings.catalog_path, args.query, allowed)
        sql_output.write_out(out, table.column_names, [], arrow_table=table)
        say(f"{table.num_rows} rows -> {out}")
        return 0
    cols, rows = catalog.query(settings.catalog_path, args.query, allowed)
    cols, rows = _with_descriptions(args.query, cols, rows)
    if out is not None:
        sql_output.write_out(out, cols, rows)
        say(f"{len(rows)} rows -> {out}")
        return 0
    fmt = args.format or sql_output.default_format(sys.stdout)
    if fmt == "table":
        print_table(cols, rows)
    else:
        sys.stdout.write(sql_output.render(cols, rows, fmt))
    return 0


def _with_descriptions(query: str, cols: list[str], rows: list[tuple]) -> tuple[list[str], list[tuple]]:
    """``describe <table>``: add each column's description from the table's schema."""
    from perception_tokens.column_docs import describe_table_name, column_description

    table = describe_table_name(query)
    if table is None or "column_name" not in cols:
        return cols, rows
    i = cols.index("column_name")
    return [*cols, "description"], [(*r, column_description(table, str(r[i])) or "") for r in rows]


def cmd_materialize(args: argparse.Namespace) -> int:
    from pipelines.instance import get_instance
    from pipelines.runner import materialize_graph

    start = time.perf_counter()
    report = materialize_graph(_defs(), get_instance(), args.selection, force=args.force, log=say)
    console.print(f"done in {time.perf_counter() - start:.1f} s; {len(report.failed)} failed step(s), "
                  f"{len(report.failed_checks)} failed check(s)")
    return run_exit_code(report)


def run_exit_code(report) -> int:
    """List the checks that failed; 1 when a step failed or a check of ERROR severity did (a WARN
    check is listed and leaves the exit code 0)."""
    for c in report.failed_checks:  # plain lines: a table would cut the names on a narrow terminal
        say(f"FAILED CHECK ({c.severity}) {c.check}" + (f"[{c.partition}]" if c.partition else "") + f": {c.detail}")
    return 1 if report.failed or report.error_checks else 0


def cmd_demo(args: argparse.Namespace) -> int:
    from pipelines.instance import dagster_home, get_instance
    from pipelines.runner import materialize_graph

    settings = _settings()
    console.print(f"DAGSTER_HOME={dagster_home()}  config={os.environ.get('PTOK_CONFIG', 'configs/demo.yaml')}")
    start = time.perf_counter()
    report = materialize_graph(_defs(), get_instance(), "*", force=args.force, log=say)
    elapsed = time.perf_counter() - start
    # nothing ran (every step fresh): the catalog and the report of the last run stand as they are
    changed = any(s.status != "skipped (fresh)" for s in report.steps)
    from pipelines.cli_summary import summary

    summary(settings, print_table, warn, refresh=changed)
    from pipeline_lib.folders import report_file
    from pipeline_lib.report_html import report_tables, scores_table, write_report

    out = report_file(settings.storage_root)
    if changed or not out.exists():
        cols, rows = write_report(settings, get_instance(), out)
    else:
        cols, rows = scores_table(settings)
    if rows:
        print_table(cols, rows, title="Evaluation (latest run) beside the paper's numbers")
    if settings.experiment:  # the comparison of the variants (and the published numbers beside it)
        for title, (table_cols, table_rows) in report_tables(settings).items():
            print_table(table_cols, table_rows, title=title)
    say(f"HTML report: {report_file(settings.storage_root)}")
    done = sum(1 for s in report.steps if s.status == "materialized")
    skipped = sum(1 for s in report.steps if s.status.startswith("skipped"))
    console.print(f"demo finished in {elapsed:.1f} s: {done} step(s) materialized, {skipped} fresh and skipped, "
                  f"{len(report.failed)} failed, {len(report.failed_checks)} failed check(s)")
    return run_exit_code(report)


def cmd_generate_demo(args: argparse.Namespace) -> int:
    from perception_tokens.demo import write_demo_datasets

    manifest = write_demo_datasets(Path(args.root), n_ade20k=args.n, n_lvis=args.n, n_refcoco=max(2, args.n * 2 // 3), seed=args.seed)
    console.print(manifest)
    return 0


def cmd_ui(args: argparse.Namespace) -> int:
    from pipelines.instance import dagster_home
    from pipeline_lib.settings import PROJECT_ROOT, config_path, workdir
    from pipelines.ui import dagster_dev_command, run_dagster_dev

    # The web UI's processes must see the same workdir, config and DAGSTER_HOME as this
    # command, wherever it was started from: pass them on as absolute paths.
    env = dict(os.environ, PTOK_WORKDIR=str(workdir()), PTOK_CONFIG=str(config_path().resolve()),
               DAGSTER_HOME=str(dagster_home()))
    cmd = dagster_dev_command(PROJECT_ROOT, args.host, args.port)
    say(" ".join(cmd))
    return run_dagster_dev(cmd, env=env, log=say)


def cmd_convert_checkpoint(args: argparse.Namespace) -> int:
    from training.llava.aurora_checkpoint import convert_checkpoint

    out = convert_checkpoint(args.source, args.dest, args.base or _settings().finetune.checkpoint)
    say(f"adapter written to {out}; evaluate it with: ptok eval --adapter {out} ...")
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from pipelines.cli_eval import run_eval

    preds, scores = run_eval(_settings(), args.benchmark, Path(args.root), args.model, args.adapter, log=say, base=args.base,
                             images=Path(args.images) if args.images else None)
    masks = [s for s in scores if "ciou_pct" in s]
    if len(masks) < len(scores):
        print_table(["benchmark", "subset", "mode", "ablation", "n", "accuracy %", "95% CI"],
                    [(s["benchmark"], s["subset"], s["mode"], s["ablation"], s["n"], s["accuracy_pct"], _ci(s))
                     for s in scores if "ciou_pct" not in s],
                    title=f"{len(preds)} predictions appended to eval_predictions")
    if masks:  # mask benchmarks (refcoco_res): cIoU / gIoU
        print_table(["benchmark", "subset", "n", "no [SEG]", "cIoU %", "95% CI", "gIoU %", "95% CI"],
                    [(s["benchmark"], s["subset"], s["n"], s["n_unparsed"], s["ciou_pct"], _ci(s, "ciou_"), s["giou_pct"],
                      _ci(s, "giou_")) for s in masks],
                    title=f"{len(preds)} predictions appended to eval_predictions (masks in pred_mask)")
    return 0


def _ci(score: dict, metric: str = "") -> str:
    lo, hi = score.get(f"{metric}ci_low_pct"), score.get(f"{metric}ci_high_pct")
    return "" if lo is None or lo != lo else f"{lo:.1f}-{hi:.1f}"


def cmd_score(args: argparse.Namespace) -> int:
    from pipelines.cli_score import run_score

    preds, scores, rejects, compat = run_score(_settings(), args.benchmark, Path(args.root), Path(args.answers), subset=args.subset,
                                               images=Path(args.images) if args.images else None, compat=args.compat)
    print_table(["benchmark", "subset", "n", "correct", "unparsed", "accuracy %", "95% CI"],
                [(s["benchmark"], s["subset"], s["n"], s["n_correct"], s["n_unparsed"], s["accuracy_pct"], _ci(s)) for s in scores],
                title=f"{args.answers}: {len(preds)} questions, {len(rejects)} answer line(s) rejected")
    for r in rejects[:10]:
        say(f"  rejected {r.record_id}: {r.reason}")
    if rejects:
        say(f"  all {len(rejects)} with their reasons: ptok sql \"select * from eval_answer_rejects\"")
    if compat:
        def pct(v):
            return "n/a" if v is None else f"{v:.1f}"

        names = list(compat[0]["pct"])
        print_table(["benchmark", "subset", "n", *[f"{name} %" for name in names]],
                    [(c["benchmark"], c["subset"], c["n"], *[pct(c["pct"][name]) for name in names]) for c in compat],
                    title="the same answers under each harness's matching rule, by version "
                          "(per question: eval_predictions.extra_json.compat)")
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from pipelines.cli_eval import run_compare

    rows, only_a, only_b = run_compare(_settings(), args.run_a, args.run_b, match_mode=not args.any_mode)
    if not rows:
        say(f"{args.run_a} and {args.run_b} share no (benchmark, subset, mode, ablation); try --any-mode")
        return 1
    print_table(["benchmark", "subset", "mode", "ablation", "n paired", "A %", "B %", "B - A", "only A right", "only B right",
                 "McNemar p"],
                [(r["benchmark"], r["subset"], r["mode"], r["ablation"], r["n_paired"], f"{r['acc_a_pct']:.1f}",
                  f"{r['acc_b_pct']:.1f}", f"{r['diff_pct']:+.1f}", r["only_a"], r["only_b"], f"{r['p_value']:.3g}") for r in rows],
                title=f"A = {args.run_a}, B = {args.run_b} (exact McNemar test on the paired questions)")
    for what, groups in (("only in A", only_a), ("only in B", only_b)):
        if groups:
            say(f"  {what} (not compared): " + ", ".join("/".join(g) for g in groups))
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from pipeline_lib.folders import report_file
    from pipeline_lib.report_html import report_tables, write_report
    from pipelines.instance import get_instance

    settings = _settings()
    out = Path(args.out) if args.out else report_file(settings.storage_root)
    cols, rows = write_report(settings, get_instance(), out)
    if rows:
        print_table(cols, rows, title="Latest evaluation")
    elif not settings.experiment:
        say("no evaluation yet (materialize eval_scores or run ptok eval)")
    for title, (table_cols, table_rows) in report_tables(settings).items():
        print_table(table_cols, table_rows, title=title)
    say(f"HTML report with pictures: {out}")
    return 0


def cmd_export_llava(args: argparse.Namespace) -> int:
    from pipelines.cli_export import export_llava

    path = export_llava(_settings(), Path(args.dir))
    say(f"LLaVA JSON: {path}; images: {path.parent / 'images'} (point LLaVA's --data_path and --image_folder here)")
    return 0


def build_parser() -> argparse.ArgumentParser:
    from evaluation.benchmarks.registry import names as benchmark_names

    p = argparse.ArgumentParser(prog="ptok", description="Perception Tokens pipeline (Aurora reproduction) on Dagster")
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("demo", help="materialize the whole graph on the demo data and print a summary")
    s.add_argument("--force", action="store_true", help="recompute even fresh assets")
    s.set_defaults(func=cmd_demo)

    s = sub.add_parser("materialize", help="materialize a selection, e.g. 'ade20k_images+' or 'group:sources'")
    s.add_argument("selection", help="Dagster asset selection syntax; '*' for everything")
    s.add_argument("--force", action="store_true", help="recompute even fresh assets")
    s.set_defaults(func=cmd_materialize)

    s = sub.add_parser("sql", help="run a read-only DuckDB query over the materialized tables")
    s.add_argument("query", help="SELECT / DESCRIBE / SHOW / SUMMARIZE / EXPLAIN; nothing that writes")
    s.add_argument("--format", choices=["table", "csv", "json", "markdown"],
                   help="default: table on a terminal, csv when piped (csv/json/markdown never shorten values)")
    s.add_argument("--out", help="write the result to FILE (.csv, .json, .parquet) instead of printing it; "
                                 "never under the storage root or the catalog's folder")
    s.add_argument("--force", action="store_true", help="let --out replace an existing file")
    s.set_defaults(func=cmd_sql)

    s = sub.add_parser("generate-demo", help="write demo datasets in the real ADE20K/LVIS/RefCOCO formats")
    s.add_argument("root")
    s.add_argument("--n", type=int, default=60, help="images per dataset")
    s.add_argument("--seed", type=int, default=0)
    s.set_defaults(func=cmd_generate_demo)

    s = sub.add_parser("eval", help="evaluate a model on one benchmark folder; rows go to eval_predictions / eval_scores")
    s.add_argument("--benchmark", required=True, choices=benchmark_names())
    s.add_argument("--root", required=True, help="the benchmark's folder in its published layout")
    s.add_argument("--model", default="adapter", help="'adapter' (the graph's latest, or --adapter PATH), 'tiny', a checkpoint dir or hub id")
    s.add_argument("--adapter", help="adapter folder (default: the latest lora_adapter)")
    s.add_argument("--base", help="base checkpoint for an Aurora-format --model folder (default: finetune.checkpoint)")
    s.add_argument("--images", help="image folder of a counting set (released apart from its jsonl files); "
                                    "default: evaluation.images in the config, else <root>/images")
    s.set_defaults(func=cmd_eval)

    s = sub.add_parser("convert-checkpoint", help="turn an Aurora LoRA folder (with non_lora_trainables.bin) into an adapter folder")
    s.add_argument("source", help="the Aurora checkpoint folder (adapter_config.json, adapter_model.*, non_lora_trainables.bin)")
    s.add_argument("dest", help="where the adapter folder is written")
    s.add_argument("--base", help="base LLaVA checkpoint (default: finetune.checkpoint), e.g. llava-hf/llava-1.5-13b-hf")
    s.set_defaults(func=cmd_convert_checkpoint)

    s = sub.add_parser("score", help="score an answers file (LLaVA model_vqa.py jsonl) into the same tables")
    s.add_argument("--benchmark", required=True, choices=benchmark_names())
    s.add_argument("--root", required=True)
    s.add_argument("--answers", required=True)
    s.add_argument("--subset", help="score against this subset only (4points, Relative_Depth, Count, ...); "
                                    "required for HardBLINK, whose question ids repeat across subsets")
    s.add_argument("--images", help="image folder of a counting set (released apart from its jsonl files); "
                                    "default: evaluation.images in the config, else <root>/images")
    s.add_argument("--compat", nargs="*", metavar="PEER==VERSION",
                   help="also score with other harnesses' answer matching, side by side: lmms-eval==0.7.3, lmms-eval==0.7.2, "
                        "vlmevalkit==<commit or YYYY-MM-DD>; a bare peer name or a bare --compat: the newest of each")
    s.set_defaults(func=cmd_score)

    s = sub.add_parser("compare", help="per-subset accuracy difference of two eval runs with an exact McNemar test")
    s.add_argument("run_a", help="eval_run_id of the first run (see: ptok sql \"select distinct eval_run_id, model_id from eval_scores\")")
    s.add_argument("run_b", help="eval_run_id of the second run")
    s.add_argument("--any-mode", action="store_true", help="pair by benchmark and subset only (e.g. an answers file vs a model's run)")
    s.set_defaults(func=cmd_compare)

    s = sub.add_parser("report", help="latest eval scores and stage metrics; writes a self-contained HTML report")
    s.add_argument("--out", help="HTML file (default: <storage>/../report.html)")
    s.set_defaults(func=cmd_report)

    s = sub.add_parser("export-llava", help="copy the curriculum's LLaVA JSON and images for an external LLaVA trainer")
    s.add_argument("dir")
    s.set_defaults(func=cmd_export_llava)

    from pipelines.cli_depth_codes import add_depth_codes_parser

    add_depth_codes_parser(sub)

    from pipelines.cli_convert_plurals import add_convert_plurals_parser

    add_convert_plurals_parser(sub)

    s = sub.add_parser("ui", help="start the Dagster web UI on 127.0.0.1")
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument("--port", type=int, default=3000)
    s.set_defaults(func=cmd_ui)
    return p


def main(argv: list[str] | None = None) -> int:
    import warnings

    # Dagster flags data versions and Pipes as beta/preview; the CLI user cannot act on that
    warnings.filterwarnings("ignore", message=r".*is currently in (beta|preview).*")
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except Exception as exc:  # one clear line for the user; the traceback with PTOK_DEBUG=1
        if os.environ.get("PTOK_DEBUG"):
            raise
        console.print(f"[red]error:[/red] {exc}")
        return 2


if __name__ == "__main__":
    sys.exit(main())
