"""``paper_comparison``: the paper's tables with this run's numbers, built from every experiment variant's
predictions (only when the config has an ``experiment`` section)."""

import dagster as dg

from assets.versioning import code_version
from evaluation import published
from evaluation.paper_comparison import comparison_markdown, comparison_rows, latest_run
from perception_tokens import schemas
from pipeline_lib.emit import emit_table
from pipeline_lib.executors import gpu_op_tags
from evaluation.benchmarks import registry as benchmark_registry
from pipeline_lib.resources import BenchmarksResource, DepthTeacherResource, StorageResource
from pipeline_lib.settings_experiment import variant_asset_name
from pipeline_lib.tables import TableHandle

GROUP = "evaluation"
# the paper's method a variant stands for when its settings do not name one
DEFAULT_PAPER_METHOD = {"base": published.LLAVA_13B, "finetuned_llava": published.FINETUNED_LLAVA, "aurora": published.LLAVA_AURORA}


def variant_reporting(settings) -> tuple[dict[str, tuple[str, str]], dict[str, str | None]]:
    """Per variant: the (mode, ablation) its row reports, and the paper's method it stands for."""
    headline, method = {}, {}
    for name, variant in settings.experiment.variants.items():
        runs = settings.variant_settings(name).evaluation.runs
        headline[name] = tuple(variant.headline) if variant.headline else tuple(runs[0])
        if headline[name] not in {tuple(r) for r in runs}:
            raise ValueError(f"experiment.variants.{name}.headline {list(headline[name])} is not one of its evaluation.runs {runs}")
        method[name] = variant.paper_method or DEFAULT_PAPER_METHOD.get(name)
    return headline, method


def build_experiment_assets(settings) -> list:
    if not settings.experiment:
        return []
    headline, method = variant_reporting(settings)
    ins = {f"predictions_{v}": dg.AssetIn(variant_asset_name("eval_predictions", v)) for v in settings.variant_names()}

    @dg.asset(
        description="The paper's comparison: one row per benchmark x subset x experiment variant with n, accuracy, 95% "
        "Wilson interval, the paper's number for the method the variant stands for, and McNemar's exact test against "
        "the base and aurora variants on the same questions (each variant's latest evaluation run).",
        code_version=code_version("1", sorted(headline.items()), sorted(method.items(), key=lambda kv: kv[0])),
        kinds={"parquet"},
        group_name=GROUP,
        ins=ins,
    )
    def paper_comparison(context: dg.AssetExecutionContext, storage: StorageResource, **predictions: TableHandle):
        latest = {v: latest_run(predictions[f"predictions_{v}"].iter_rows()) for v in settings.variant_names()}
        rows = comparison_rows(latest, headline, method)
        return emit_table(context, storage, schemas.PAPER_COMPARISON_SCHEMA, rows, metadata={
            "comparison": dg.MetadataValue.md(comparison_markdown(rows)),
            "variants": dg.MetadataValue.json({v: {"headline": list(headline[v]), "paper_method": method[v]} for v in headline}),
        })

    decoded = build_decoded_depth_asset(settings)
    return [paper_comparison, *([decoded] if decoded else [])]


def demo_points_fn(depth_dir):
    """A prediction row -> its marker positions, where the demo benchmark writer saved them (None elsewhere:
    the released BLINK / HardBLINK files do not give the markers' coordinates)."""
    from evaluation.benchmarks.demo import demo_points_name
    from perception_tokens.safe_json import load_json_file

    def points_of(row: dict):
        path = depth_dir / demo_points_name(row["benchmark"], row["subset"], str(row["question_id"])) if depth_dir else None
        if path is None or not path.exists():
            return None
        return {str(k): (int(v[0]), int(v[1])) for k, v in load_json_file(path).items()}

    return points_of


def build_decoded_depth_asset(settings):
    """``decoded_depth``: every chain-of-thought variant's generated depth codes decoded and measured (None when
    no variant answers with chain-of-thought)."""
    cot_variants = [v for v in settings.variant_names() if any(r[0] == "cot" for r in settings.variant_settings(v).evaluation.runs)]
    if not cot_variants:
        return None
    bench_keys = [f"benchmark_{n}" for n in benchmark_registry.names()]
    ins = {**{f"predictions_{v}": dg.AssetIn(variant_asset_name("eval_predictions", v)) for v in cot_variants},
           "depth_vqvae": dg.AssetIn(), **{k: dg.AssetIn() for k in bench_keys}}

    @dg.asset(
        description="Depth from the model's own tokens: each relative-depth chain-of-thought answer's generated codes "
        "decoded by the VQ-VAE; the marked points read off the decoded map (accuracy) and the decoded map against the "
        "teacher's (MSE, abs-rel). One row per answer of each variant's latest evaluation run; a missing measure says why.",
        code_version=code_version("1", cot_variants),
        kinds={"parquet", "pytorch"},
        group_name=GROUP,
        ins=ins,
        pool="accelerator",  # the depth teacher runs here on real data
        op_tags=gpu_op_tags(settings.execution),
    )
    def decoded_depth(context: dg.AssetExecutionContext, storage: StorageResource, depth_teacher: DepthTeacherResource,
                      benchmarks: BenchmarksResource, depth_vqvae: TableHandle, **tables: TableHandle):
        from assets.evaluation import teacher_depth_fn
        from evaluation.decoded_depth import decoded_depth_rows, decoded_depth_summary, vqvae_decoder
        from training.vqvae import load_vqvae

        decode = vqvae_decoder(load_vqvae(depth_vqvae.read().to_pylist()[0]["path"]))
        teacher = None if depth_teacher.teacher == "ground_truth" else depth_teacher.build()
        depth_dir = benchmarks.demo_depth_dir if teacher is None else None
        images = {(r["benchmark"], r["subset"], str(r["question_id"])): r["image_bytes"] for k in bench_keys
                  for r in tables[k].iter_rows(columns=["benchmark", "subset", "question_id", "image_bytes"])} if teacher else {}
        teacher_of_row = teacher_depth_fn(teacher, depth_dir)
        cache = {}

        def teacher_map(p: dict):
            key = (p["benchmark"], p["subset"], str(p["question_id"]))
            if key not in cache:
                cache[key] = teacher_of_row({**p, "image_bytes": images.get(key)}) if (teacher is None or key in images) else None
            return cache[key]

        rows = []
        for v in cot_variants:
            rows += decoded_depth_rows(latest_run(tables[f"predictions_{v}"].iter_rows()), decode, teacher_map,
                                       demo_points_fn(depth_dir), variant=v)
        summary = decoded_depth_summary(rows)
        return emit_table(context, storage, schemas.DECODED_DEPTH_SCHEMA, rows, metadata={
            "summary": dg.MetadataValue.md(decoded_summary_markdown(summary)),
            "answers": dg.MetadataValue.int(len(rows)),
        })

    return decoded_depth


def decoded_summary_markdown(summary) -> str:
    lines = ["| variant | benchmark | subset | answers | read | read accuracy % | measured | mean MSE | mean abs-rel |",
             "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for s in summary:
        lines.append(f"| {s['variant']} | {s['benchmark']} | {s['subset']} | {s['n_answers']} | {s['n_read']} | "
                     f"{s['read_accuracy_pct']:.1f} | {s['n_measured']} | {s['mean_mse']:.4f} | {s['mean_abs_rel']:.3f} |")
    return "\n".join(lines)
