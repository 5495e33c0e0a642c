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
