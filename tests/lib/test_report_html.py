"""ptok report's HTML: markdown metadata through markdown-it-py, every table cell escaped,
only the pipeline's own inline PNG pictures kept as HTML."""

from __future__ import annotations

import dagster as dg

from pipeline_lib.metadata import png_markdown
from pipeline_lib.report_html import markdown_to_html, render_report

PNG = bytes.fromhex("89504e470d0a1a0a")  # any bytes: the report only embeds them


def test_score_table_cells_are_escaped():
    page = render_report(["benchmark", "acc"], [("<script>alert(1)</script>", 50.0), ("a & b", 25.0)], None, {}, "2026-01-01")
    assert "<script>" not in page
    assert "<td>&lt;script&gt;alert(1)&lt;/script&gt;</td><td>50.0</td>" in page
    assert "<td>a &amp; b</td><td>25.0</td>" in page
    assert "<th>benchmark</th><th>acc</th>" in page


def test_markdown_metadata_table_escapes_html_in_cells():
    md = "| benchmark | answer |\n|---|---|\n| blink<script>x()</script> | A & B |\n"
    out = markdown_to_html(md)
    assert "<script>" not in out and "</script>" not in out
    assert "<td>blink&lt;script&gt;x()&lt;/script&gt;</td>" in out
    assert "<td>A &amp; B</td>" in out
    assert out.count("<tr>") == 2 and "<th>benchmark</th>" in out


def test_pipeline_pictures_stay_pictures_other_html_does_not():
    picture = png_markdown(PNG, "depth", width=160)
    out = markdown_to_html(f"| image |\n|---|\n| {picture} |\n\n{picture}\n\n<iframe src='x'></iframe>\n\n<img src=x onerror=alert(1)>")
    assert out.count('<img alt="depth" src="data:image/png;base64,iVBORw0KGgo=" width="160"/>') == 2
    assert "<iframe" not in out and "&lt;iframe src=&#x27;x&#x27;&gt;" in out
    assert "onerror" in out and "<img src=x" not in out  # shown as text, never an element


def test_report_sections_render_markdown_and_escape_plain_values():
    meta = {"scores": dg.MetadataValue.md("| benchmark | acc |\n|---|---|\n| cv<b>bench | 50 |"),
            "note": dg.MetadataValue.text("<script>bad()</script>"), "lineage": dg.MetadataValue.json({"hidden": 1})}
    page = render_report([], [], "no table yet <x>", {"eval_scores": meta}, "now")
    assert "<h2>eval_scores</h2>" in page and "<h3>scores</h3>" in page
    assert "<td>cv&lt;b&gt;bench</td>\n<td>50</td>" in page
    assert "<p><b>note</b>: &lt;script&gt;bad()&lt;/script&gt;</p>" in page
    assert "hidden" not in page
    assert "<p>No evaluation table: no table yet &lt;x&gt;</p>" in page


def test_report_shows_the_experiments_comparison_in_variant_order_and_the_published_numbers(tmp_path, monkeypatch):
    import pyarrow as pa
    import pyarrow.parquet as pq

    from evaluation.paper_comparison import comparison_rows
    from perception_tokens.schemas import PAPER_COMPARISON_SCHEMA
    from pipeline_lib import catalog
    from pipeline_lib.report_html import COMPARISON_TITLE, PUBLISHED_TITLE, report_tables
    from pipeline_lib.settings import settings_from_dict

    monkeypatch.setenv("PTOK_WORKDIR", str(tmp_path))
    settings = settings_from_dict({"storage": {"root": str(tmp_path / "storage")},
                                   "experiment": {"variants": {"base": {"evaluation": {"model": "base"}}, "aurora": {}}}})
    tables = report_tables(settings)
    assert tables[COMPARISON_TITLE][1][0][0].startswith("paper_comparison:")  # not materialized yet: said in its place
    cols, published = tables[PUBLISHED_TITLE]
    assert cols[0] == "method" and ("Fine-tuned LLaVA", "HardBLINK", "5points", "HardBLINK 5-Point", 41.1) == published[8][:5]

    def pred(qid, correct):
        return {"eval_run_id": "r", "run_started_at": "t", "benchmark": "BLINK", "subset": "Relative_Depth", "question_id": qid,
                "mode": "direct", "ablation": "none", "correct": correct, "error": None}
    rows = comparison_rows({"aurora": [pred("1", True), pred("2", True)], "base": [pred("1", False), pred("2", True)]},
                           {"aurora": ("direct", "none"), "base": ("direct", "none")}, {"aurora": "LLaVA-Aurora", "base": "LLaVA 1.5 13B"})
    (tmp_path / "storage").mkdir()
    pq.write_table(pa.Table.from_pylist(rows, schema=PAPER_COMPARISON_SCHEMA), tmp_path / "storage" / "paper_comparison.parquet")
    catalog.refresh_view(settings.catalog_path, settings.storage_root, "paper_comparison")
    cols, comparison = report_tables(settings)[COMPARISON_TITLE]
    assert cols[:6] == ["benchmark", "subset", "variant", "run", "n", "acc"]
    assert [r[2] for r in comparison] == ["base", "aurora"]  # the config's order, not the table's
    assert comparison[1][4:6] == (2, 100.0) and comparison[1][8:10] == ("LLaVA-Aurora", 64.5) and comparison[1][10] == 1.0
    page = render_report([], [], None, {}, "now", report_tables(settings))
    assert f"<h2>{COMPARISON_TITLE.replace(chr(39), '&#x27;')}</h2>" in page and "<td>LLaVA-Aurora</td>" in page
