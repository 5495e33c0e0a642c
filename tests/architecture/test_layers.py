"""The import graph runs one way: pipelines -> assets -> pipeline_lib -> evaluation -> training -> perception_tokens.

Every ``import`` and ``from ... import`` in the project's packages is read with ``ast`` (imports inside
functions count too, since they are what a lazy import would hide). A module may import its own
package and any package below it, never one above it; the pure packages never import dagster.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# Highest first: a package may import only itself and the packages after it.
LAYERS = ["pipelines", "assets", "pipeline_lib", "evaluation", "training", "perception_tokens"]
PURE = {"evaluation", "training", "perception_tokens"}


def imported_top_names(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name.split(".")[0]) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module.split(".")[0]))
    return found


def layer_violations(root: Path) -> list[str]:
    problems = []
    for rank, package in enumerate(LAYERS):
        allowed_above = set(LAYERS[:rank])
        for path in sorted((root / package).rglob("*.py")):
            for lineno, name in imported_top_names(path):
                where = f"{path.relative_to(root)}:{lineno}"
                if name in allowed_above:
                    problems.append(f"{where} imports {name} (a layer above {package})")
                if package in PURE and name in {"dagster", "dagster_pipes"} and path.name != "pipes_worker.py":
                    problems.append(f"{where} imports {name} from the pure package {package}")
    return problems


def test_no_upward_imports():
    problems = layer_violations(ROOT)
    assert not problems, "upward imports:\n" + "\n".join(problems)


def test_the_checker_sees_an_upward_import(tmp_path):
    for package in LAYERS:
        (tmp_path / package).mkdir()
    (tmp_path / "pipeline_lib" / "bad.py").write_text("def f():\n    from assets.depth import x\n")
    (tmp_path / "training" / "worse.py").write_text("import dagster as dg\n")
    (tmp_path / "assets" / "fine.py").write_text("from pipeline_lib.tables import TableHandle\nimport perception_tokens\n")
    problems = layer_violations(tmp_path)
    assert problems == [
        "pipeline_lib/bad.py:2 imports assets (a layer above pipeline_lib)",
        "training/worse.py:1 imports dagster from the pure package training",
    ]


@pytest.mark.parametrize("package", LAYERS)
def test_every_layer_is_a_package(package):
    assert (ROOT / package / "__init__.py").is_file()
