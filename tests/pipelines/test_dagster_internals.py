"""The private Dagster names the project relies on still look and behave as it expects, and no
module but pipeline_lib/dagster_internals.py imports them.

When a Dagster upgrade breaks one, the failure names it: "dagster X.Y changed <name>: <what>;
update pipeline_lib/dagster_internals.py".
"""

from __future__ import annotations

import ast
import dataclasses
import inspect
from pathlib import Path

import dagster as dg
import pytest

from pipeline_lib import dagster_internals as internals
from pipeline_lib.lineage import latest_data_version
from pipelines.staleness import stale_resolver

ROOT = Path(__file__).resolve().parents[2]
SKIP_DIRS = {".venv", ".git", ".ptok", "node_modules", "test-artifacts", "__pycache__"}


def changed(name: str, what: str) -> str:
    return f"dagster {dg.__version__} changed {name}: {what}; update pipeline_lib/dagster_internals.py"


def params(fn) -> set[str]:
    return set(inspect.signature(fn).parameters)


@pytest.mark.parametrize("name, fn, needed", [
    ("observe", internals.observe, {"assets", "instance", "resources", "raise_on_error", "tags"}),
    ("CachingStaleStatusResolver.__init__", internals.CachingStaleStatusResolver.__init__,
     {"instance", "asset_graph", "loading_context"}),
    ("CachingStaleStatusResolver.get_status", internals.CachingStaleStatusResolver.get_status, {"key", "partition_key"}),
    ("AssetGraphView.__init__", internals.AssetGraphView.__init__, {"temporal_context", "instance", "asset_graph"}),
])
def test_signatures_the_project_calls(name, fn, needed):
    missing = needed - params(fn)
    assert not missing, changed(name, f"parameter(s) {sorted(missing)} are gone (has {sorted(params(fn))})")


def test_plain_values_and_types():
    assert {"FRESH", "STALE", "MISSING"} <= set(internals.StaleStatus.__members__), \
        changed("StaleStatus", f"members are now {sorted(internals.StaleStatus.__members__)}")
    assert isinstance(internals.SKIP_PARTITION_DATA_VERSION_DEPENDENCY_THRESHOLD, int), \
        changed("SKIP_PARTITION_DATA_VERSION_DEPENDENCY_THRESHOLD", "it is no longer an int")
    assert internals.DATA_VERSION_TAG == "dagster/data_version", \
        changed("DATA_VERSION_TAG", f"it is now {internals.DATA_VERSION_TAG!r}")
    fields = {f.name for f in dataclasses.fields(internals.TemporalContext)} if dataclasses.is_dataclass(
        internals.TemporalContext) else set(getattr(internals.TemporalContext, "_fields", ()))
    assert {"effective_dt", "last_event_id"} <= fields, changed("TemporalContext", f"fields are now {sorted(fields)}")


def test_automation_context_attributes_the_conditions_read():
    fields = set(getattr(dg.AutomationContext, "__annotations__", {}))
    for attr in ("request_subsets_by_key", "asset_graph_view", "candidate_subset"):
        assert attr in fields, changed("AutomationContext", f"attribute {attr} is gone (has {sorted(fields)})")
    assert isinstance(getattr(internals.AssetGraphView, "instance", None), property), changed("AssetGraphView", "instance is no longer a property")


def test_partition_key_escaping_keeps_paths_inside():
    assert not internals.escape_leading_slash("/etc/passwd").startswith("/"), changed("escape_leading_slash", "a leading / survives")
    escaped = internals.escape_dotdot_segments("a/../../b")
    assert ".." not in escaped.split("/"), changed("escape_dotdot_segments", f"'a/../../b' became {escaped!r}")


@dg.asset(code_version="1")
def leaf() -> int:
    return 1


@dg.asset(code_version="1")
def child(leaf: int) -> int:
    return leaf + 1


def test_asset_graph_attributes_the_runner_uses():
    graph = dg.Definitions(assets=[leaf, child]).resolve_asset_graph()
    assert isinstance(graph, internals.AssetGraph), changed("AssetGraph", f"resolve_asset_graph() returns {type(graph)}")
    for attr in ("toposorted_asset_keys", "materializable_asset_keys", "get", "has", "assets_def_for_key"):
        assert hasattr(graph, attr), changed("AssetGraph", f"attribute {attr} is gone")
    node = graph.get(child.key)
    for attr in ("parent_keys", "child_keys", "is_materializable", "is_observable", "is_partitioned", "partitions_def"):
        assert hasattr(node, attr), changed("AssetGraph.get(...) node", f"attribute {attr} is gone")
    assert list(graph.toposorted_asset_keys) == [leaf.key, child.key]


def test_resolver_and_data_version_tag_behave_as_relied_on():
    """Fresh after a run; stale once the code version moves; the data version is read from the record."""
    with dg.instance_for_test() as instance:
        graph = dg.Definitions(assets=[leaf, child]).resolve_asset_graph()
        assert stale_resolver(instance, graph).get_status(leaf.key) == internals.StaleStatus.MISSING
        assert dg.materialize([leaf, child], instance=instance).success
        assert stale_resolver(instance, graph).get_status(child.key) == internals.StaleStatus.FRESH
        assert latest_data_version(instance, leaf.key, None), changed("DATA_VERSION_TAG", "a materialization no longer records it")

        @dg.asset(code_version="2", name="leaf")
        def leaf_v2() -> int:
            return 1

        moved = dg.Definitions(assets=[leaf_v2, child]).resolve_asset_graph()
        assert stale_resolver(instance, moved).get_status(leaf.key) == internals.StaleStatus.STALE, \
            changed("CachingStaleStatusResolver", "a moved code version no longer reads STALE")


def _private_dagster_imports(tree: ast.AST) -> list[str]:
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        else:
            continue
        found += [n for n in names if n.split(".")[0].startswith("dagster")
                  and any(part.startswith("_") and not part.startswith("__") for part in n.split(".")[1:])]
    return found


def test_scan_sees_private_imports():
    tree = ast.parse("import dagster._core.x\nfrom dagster import _time\nfrom dagster_k8s._x import y\nfrom dagster import asset\n")
    assert _private_dagster_imports(tree) == ["dagster._core.x", "dagster._time", "dagster_k8s._x", "dagster_k8s._x.y"]


def test_no_other_module_imports_private_dagster():
    allowed = ROOT / "pipeline_lib" / "dagster_internals.py"
    offenders = []
    for path in sorted(ROOT.rglob("*.py")):
        if path == allowed or SKIP_DIRS & set(path.relative_to(ROOT).parts):
            continue
        names = _private_dagster_imports(ast.parse(path.read_text(encoding="utf-8"), filename=str(path)))
        offenders += [f"{path.relative_to(ROOT)}: {n}" for n in names]
    assert not offenders, "import private Dagster names only through pipeline_lib/dagster_internals.py:\n" + "\n".join(offenders)
