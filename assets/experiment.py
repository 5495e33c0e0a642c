"""``paper_comparison``: the paper's tables with this run's numbers, built from every experiment variant's
predictions (only when the config has an ``experiment`` section)."""

import dagster as dg

from assets.versioning import code_version
from evaluation import published
from evaluation.paper_comparison import comparison_markdown, comparison_rows, latest_run
from perception_tokens import schemas
from pipeline_lib.emit import emit_table
from pipeline_lib.resources import StorageResource
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

    return [paper_comparison]
