"""``ptok score --compat``: absent (no peer rules), bare (the newest of each peer), or a list of
``peer==version`` specs, each resolved to one modelled rule."""

from evaluation.compat import resolve
from pipelines.cli import build_parser

BASE = ["score", "--benchmark", "blink", "--root", "r", "--answers", "a.jsonl"]


def test_compat_flag_forms():
    parse = build_parser().parse_args
    assert parse(BASE).compat is None
    assert parse([*BASE, "--compat"]).compat == []
    specs = parse([*BASE, "--compat", "lmms-eval==0.7.2", "vlmevalkit==2026-06-17"]).compat
    assert specs == ["lmms-eval==0.7.2", "vlmevalkit==2026-06-17"]
    assert [r.name for r in resolve(specs)] == ["lmms-eval==0.7.2", "vlmevalkit==a67ace50"]
    assert [r.name for r in resolve(parse([*BASE, "--compat"]).compat)] == ["lmms-eval==0.7.3", "vlmevalkit==a67ace50"]
