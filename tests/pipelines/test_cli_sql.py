"""``ptok sql`` output: csv when piped, json / markdown on request, nothing shortened, --out
files written by the CLI, column descriptions in ``describe``."""

import csv
import io
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from upath import UPath

from pipeline_lib import catalog
from pipelines import cli
from pipelines.sql_output import default_format, render
from pipeline_lib.tables import write_table_atomic

LONG = "answers:" + "model-" * 30 + "final"  # 193 characters: the old table cut it at 80


@pytest.fixture()
def storage(tmp_path, monkeypatch):
    root = tmp_path / "storage"
    write_table_atomic(UPath(root / "eval_scores.parquet"), pa.table({
        "model_id": [LONG, "tiny"], "subset": ["3points", "4points"], "n": [124, 116],
        "accuracy_pct": [66.93548387096774, 60.5], "image_bytes": [b"\x89PNG", None]}))
    catalog.refresh_all(root / "catalog.duckdb", str(root))
    config = tmp_path / "c.yaml"
    config.write_text(f"storage:\n  root: {root}\n")
    monkeypatch.setenv("PTOK_CONFIG", str(config))
    monkeypatch.setenv("PTOK_WORKDIR", str(tmp_path))
    return root


def test_piped_output_is_csv_with_every_value_whole(storage, capsys):
    assert cli.main(["sql", "select model_id, subset, n, accuracy_pct from eval_scores order by n desc"]) == 0
    out = capsys.readouterr().out
    rows = list(csv.reader(io.StringIO(out)))
    assert rows == [["model_id", "subset", "n", "accuracy_pct"], [LONG, "3points", "124", "66.93548387096774"],
                    ["tiny", "4points", "116", "60.5"]]


def test_json_and_markdown_formats(storage, capsys):
    cli.main(["sql", "select model_id, n, image_bytes from eval_scores order by n desc", "--format", "json"])
    got = json.loads(capsys.readouterr().out)
    assert got == [{"model_id": LONG, "n": 124, "image_bytes": "iVBORw=="}, {"model_id": "tiny", "n": 116, "image_bytes": None}]
    cli.main(["sql", "select subset, n from eval_scores order by n desc", "--format", "markdown"])
    assert capsys.readouterr().out == "| subset | n |\n| --- | --- |\n| 3points | 124 |\n| 4points | 116 |\n"


def test_out_files_by_suffix(storage, tmp_path, capsys):
    q = "select model_id, n from eval_scores order by n desc"
    cli.main(["sql", q, "--out", str(tmp_path / "r.csv")])
    assert (tmp_path / "r.csv").read_text().splitlines()[1] == f"{LONG},124"
    cli.main(["sql", q, "--out", str(tmp_path / "r.json")])
    assert json.loads((tmp_path / "r.json").read_text())[0] == {"model_id": LONG, "n": 124}
    cli.main(["sql", q, "--out", str(tmp_path / "r.parquet")])
    t = pq.read_table(tmp_path / "r.parquet")
    assert t.to_pylist()[0] == {"model_id": LONG, "n": 124} and t.schema.field("n").type == pa.int64()
    assert "2 rows ->" in capsys.readouterr().out
    assert cli.main(["sql", q, "--out", str(tmp_path / "r.txt")]) != 0
    assert not (tmp_path / "r.txt").exists()
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".r.")) == []  # no temporary left


def test_a_write_through_ptok_sql_fails_and_changes_nothing(storage, tmp_path, capsys):
    code = cli.main(["sql", f"COPY (select 1 as n) TO '{storage / 'eval_scores.parquet'}' (FORMAT parquet)"])
    assert code != 0
    assert "COPY statements are not allowed" in capsys.readouterr().out
    assert pq.read_table(storage / "eval_scores.parquet").num_rows == 2


def test_describe_lists_column_descriptions(storage, capsys):
    cli.main(["sql", "describe eval_scores", "--format", "csv"])
    rows = {r["column_name"]: r for r in csv.DictReader(io.StringIO(capsys.readouterr().out))}
    assert rows["accuracy_pct"]["description"] == "accuracy, percent"
    assert rows["model_id"]["column_type"] == "VARCHAR"


def test_default_format_follows_the_terminal():
    class Tty(io.StringIO):
        def isatty(self):
            return True

    assert default_format(Tty()) == "table" and default_format(io.StringIO()) == "csv"
    assert render(["a"], [([1, {"k": "v"}],)], "csv") == 'a\n"[1, {""k"": ""v""}]"\n'


def test_every_column_of_every_table_has_a_description_in_the_dagster_schema():
    from perception_tokens import schemas
    from perception_tokens.column_docs import COLUMN_DOCS

    missing = sorted({f"{name}.{f.name}" for name, s in vars(schemas).items() if isinstance(s, pa.Schema)
                      for f in s if not COLUMN_DOCS.get(f.name)})
    assert missing == []


def test_table_metadata_carries_the_descriptions(tmp_path):
    from pipeline_lib.metadata import table_metadata
    from pipeline_lib.tables import TableHandle

    path = UPath(tmp_path / "t.parquet")
    write_table_atomic(path, pa.table({"benchmark": ["HardBLINK"], "n": [3]}))
    cols = {c.name: c.description for c in table_metadata(TableHandle([path]))["dagster/column_schema"].columns}
    assert cols == {"benchmark": "benchmark name (HardBLINK, BLINK, CV-Bench, BLINK-Count, SEED-Count)", "n": "questions scored"}


def test_out_never_writes_into_the_storage_root(storage, capsys):
    before = (storage / "eval_scores.parquet").read_bytes()
    for target in (storage / "eval_scores.parquet", storage / "new" / "x.csv", storage / "catalog.duckdb"):
        assert cli.main(["sql", "select 1 as a", "--out", str(target), "--force"]) == 2
        assert "where the pipeline's tables and catalog live" in " ".join(capsys.readouterr().out.split())  # rich wraps lines
    assert (storage / "eval_scores.parquet").read_bytes() == before and not (storage / "new").exists()


def test_out_replaces_an_existing_file_only_with_force(storage, tmp_path, capsys):
    target = tmp_path / "mine.csv"
    target.write_text("keep me\n")
    assert cli.main(["sql", "select 1 as a", "--out", str(target)]) == 2
    assert "pass --force to replace it" in " ".join(capsys.readouterr().out.split()) and target.read_text() == "keep me\n"
    assert cli.main(["sql", "select 1 as a", "--out", str(target), "--force"]) == 0
    assert target.read_text() == "a\n1\n"
