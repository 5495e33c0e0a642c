"""``ptok report``: one self-contained HTML page with the latest eval scores and each stage's
latest materialization metadata (pictures inline).

Markdown metadata is rendered with markdown-it-py. Raw HTML in it is escaped, except the
inline PNG pictures the pipeline itself writes (``metadata.png_markdown``), which are
rebuilt from an allowlist: a benchmark name or a model answer containing ``<script>`` is
shown as text, never run.
"""

from __future__ import annotations

import datetime as dt
import html
import json
import re
from pathlib import Path
from typing import Any, Iterable, Sequence

from markdown_it import MarkdownIt

REPORT_ASSETS = ("pseudo_depth", "depth_vqvae", "marked_points", "curriculum", "lora_adapter", "eval_scores")
HIDDEN_METADATA = ("dagster/column_schema", "lineage", "preview")
STYLE = ("body{font-family:sans-serif;max-width:1100px;margin:auto}table{border-collapse:collapse}"
         "td,th{border:1px solid #ccc;padding:3px 6px}h2{border-bottom:1px solid #888}")
# exactly what metadata.png_markdown writes: alt text, a base64 PNG, an optional width
_PNG_IMG = re.compile(r'<img alt="([^"<>]*)" src="(data:image/png;base64,[A-Za-z0-9+/=]+)"(?: width="(\d+)")?\s*/?>')
SCORES_SQL = ("select benchmark, subset, mode, ablation, n, round(accuracy_pct, 1) acc, round(ci_low_pct, 1) ci_low, "
              "round(ci_high_pct, 1) ci_high, round(chance_pct, 1) chance, paper_llava15_13b_pct, paper_aurora_pct "
              "from eval_scores where run_started_at = (select max(run_started_at) from eval_scores) "
              "order by benchmark, subset, mode, ablation")
# the experiment's comparison (assets/experiment.py), variants in the config's order (the row order of the table)
COMPARISON_SQL = ("select benchmark, subset, variant, mode || '/' || ablation run, n, round(accuracy_pct, 1) acc, "
                  "round(ci_low_pct, 1) ci_low, round(ci_high_pct, 1) ci_high, paper_method, paper_pct, "
                  "round(vs_base_p_value, 4) p_vs_base, round(vs_aurora_p_value, 4) p_vs_aurora from paper_comparison")
COMPARISON_TITLE = "The paper's comparison: this run beside the published numbers"
PUBLISHED_TITLE = "Published numbers (Aurora, arXiv 2412.03548)"
DECODED_SQL = ("select variant, benchmark, subset, count(*) answers, count(decoded_correct) read, "
               "round(100.0 * avg(decoded_correct::int), 1) read_acc, count(mse) measured, round(avg(mse), 4) mean_mse, "
               "round(avg(abs_rel), 3) mean_abs_rel from decoded_depth group by all order by variant, benchmark, subset")
DECODED_TITLE = "Depth decoded from the model's own tokens"


def _allowed_html(raw: str) -> str:
    """A pipeline-written PNG picture is kept (rebuilt from its parts); any other HTML is shown as text."""
    m = _PNG_IMG.fullmatch(raw.strip())
    if m is None:
        return html.escape(raw)
    alt, src, width = m.groups()
    size = f' width="{width}"' if width else ""
    return f'<img alt="{html.escape(alt)}" src="{src}"{size}/>'


def _markdown() -> MarkdownIt:
    md = MarkdownIt("commonmark", {"html": True}).enable("table")
    md.add_render_rule("html_inline", lambda self, tokens, idx, options, env: _allowed_html(tokens[idx].content))
    md.add_render_rule("html_block", lambda self, tokens, idx, options, env: _allowed_html(tokens[idx].content) + "\n")
    return md


def markdown_to_html(text: str) -> str:
    return _markdown().render(text)


def html_table(columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in columns)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(v))}</td>" for v in r) + "</tr>" for r in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def metadata_html(metadata: dict[str, Any]) -> str:
    """An asset's materialization metadata: markdown rendered, everything else as escaped text."""
    import dagster as dg

    parts = []
    for key, value in metadata.items():
        if key in HIDDEN_METADATA:
            continue
        v = value.value if hasattr(value, "value") else value
        if isinstance(value, dg.MarkdownMetadataValue):
            parts.append(f"<h3>{html.escape(key)}</h3>" + markdown_to_html(v))
        else:
            text = json.dumps(v, default=str) if isinstance(v, (dict, list)) else str(v)
            parts.append(f"<p><b>{html.escape(key)}</b>: {html.escape(text)}</p>")
    return "\n".join(parts)


def render_report(score_columns: Sequence[str], score_rows: Sequence[Sequence[Any]], problem: str | None,
                  sections: dict[str, dict[str, Any]], now: str,
                  tables: dict[str, tuple[Sequence[str], Sequence[Sequence[Any]]]] | None = None) -> str:
    """The page; ``tables``: further tables by title (the experiment's comparison, the published numbers)."""
    parts = [f"<html><head><meta charset='utf-8'><title>Perception Tokens report</title><style>{STYLE}</style></head><body>",
             "<h1>Perception Tokens report</h1>", f"<p>{html.escape(now)}</p>"]
    if problem:
        parts.append(f"<p>No evaluation table: {html.escape(problem)}</p>")
    if score_rows:
        parts.append("<h2>Latest evaluation</h2>" + html_table(score_columns, score_rows))
    for title, (columns, rows) in (tables or {}).items():
        parts.append(f"<h2>{html.escape(title)}</h2>" + html_table(columns, rows))
    for name, metadata in sections.items():
        parts.append(f"<h2>{html.escape(name)}</h2>")
        parts.append(metadata_html(metadata))
    parts.append("</body></html>")
    return "\n".join(parts)


def published_table() -> tuple[list[str], list[tuple]]:
    from evaluation.published import PUBLISHED_FIELDS, published_rows

    return list(PUBLISHED_FIELDS), [tuple(r[f] for f in PUBLISHED_FIELDS) for r in published_rows()]


def report_tables(settings) -> dict[str, tuple[list[str], list[tuple]]]:
    """The experiment's comparison (when the config has variants and it is materialized) and the published numbers."""
    from pipeline_lib import catalog

    tables = {}
    if settings.experiment:
        try:
            cols, rows = catalog.query(settings.catalog_path, COMPARISON_SQL, catalog.allowed_dirs_for(settings))
            order = {v: i for i, v in enumerate(settings.variant_names())}
            tables[COMPARISON_TITLE] = (cols, sorted(rows, key=lambda r: (r[0], r[1], order.get(r[2], len(order)))))
        except Exception as exc:  # not materialized yet: say so in the table's place
            tables[COMPARISON_TITLE] = (["problem"], [(f"paper_comparison: {exc}",)])
        try:
            tables[DECODED_TITLE] = catalog.query(settings.catalog_path, DECODED_SQL, catalog.allowed_dirs_for(settings))
        except Exception as exc:
            tables[DECODED_TITLE] = (["problem"], [(f"decoded_depth: {exc}",)])
    tables[PUBLISHED_TITLE] = published_table()
    return tables


def report_asset_names(settings) -> list[str]:
    """The assets whose metadata the report shows: with an experiment, each variant's and the comparison."""
    from pipeline_lib.settings_experiment import variant_asset_name

    if not settings.experiment:
        return list(REPORT_ASSETS)
    per_variant = ("curriculum", "lora_adapter", "eval_scores")
    return [*(a for a in REPORT_ASSETS if a not in per_variant), "paper_comparison", "decoded_depth",
            *(variant_asset_name(a, v) for v in settings.variant_names() for a in per_variant)]


def _scores(settings) -> tuple[list[str], list[tuple], str | None]:
    """The latest evaluation's scores, and why there are none (no evaluation yet)."""
    from pipeline_lib import catalog

    try:
        # with an experiment, each variant's scores are in eval_scores__<variant>; the comparison table shows them
        cols, rows = ([], []) if settings.experiment else catalog.query(settings.catalog_path, SCORES_SQL, catalog.allowed_dirs_for(settings))
        return cols, rows, None
    except Exception as exc:  # no evaluation yet: the report still shows the stages, and says why
        return [], [], str(exc)


def scores_table(settings) -> tuple[list[str], list[tuple]]:
    """The table :func:`write_report` returns, without writing the report (a run that changed nothing)."""
    cols, rows, _ = _scores(settings)
    return cols, rows


def write_report(settings, instance, out: Path) -> tuple[list[str], list[tuple]]:
    """Self-contained HTML: latest eval scores, the experiment's comparison and the published numbers, then each
    asset's latest metadata; written atomically."""
    import dagster as dg

    from perception_tokens.paths import atomic_write_text

    cols, rows, problem = _scores(settings)
    sections = {}
    for name in report_asset_names(settings):
        event = instance.get_latest_materialization_event(dg.AssetKey(name))
        if event is not None:
            sections[name] = dict(event.asset_materialization.metadata)
    now = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out, render_report(cols, rows, problem, sections, now, report_tables(settings)))
    return cols, rows
