"""Security: no unsafe deserialisation or eval in the source, RefCOCO's pickle cannot run code,
and the web UI listens on loopback only.

The unit tests of the restricted unpickler are in tests/data_sources/test_data_sources_safety.py;
here a malicious ``refs(unc).p`` goes through the reader and the Dagster asset that use it.
"""

from __future__ import annotations

import ast
import builtins
import json
import os
import pickle
import re
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest

REPO = Path(__file__).resolve().parents[2]
SOURCE_DIRS = ["pipelines", "assets", "perception_tokens", "training", "evaluation", "benchmarks"]
RESTRICTED_UNPICKLER = "perception_tokens/safe_pickle.py"  # the one place allowed to subclass pickle.Unpickler

# ----------------------------------------------------------------------------- the source scan

# Calls that deserialise arbitrary objects (and so run code) whatever their arguments.
ALWAYS_UNSAFE = {
    "pickle.load", "pickle.loads", "pickle.Unpickler", "_pickle.load", "_pickle.loads", "_pickle.Unpickler",
    "cPickle.load", "cPickle.loads", "dill.load", "dill.loads", "cloudpickle.load", "cloudpickle.loads",
    "joblib.load", "pandas.read_pickle", "marshal.load", "marshal.loads", "shelve.open", "jsonpickle.decode",
    "yaml.unsafe_load", "yaml.unsafe_load_all", "yaml.full_load", "yaml.full_load_all",
    "torch.serialization.load", "eval", "exec",
}
SAFE_YAML_LOADERS = {"SafeLoader", "CSafeLoader", "BaseLoader", "CBaseLoader"}


def _dotted(node: ast.AST) -> str | None:
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
        return ".".join(reversed(parts))
    return None


def _keyword(call: ast.Call, name: str) -> ast.expr | None:
    return next((k.value for k in call.keywords if k.arg == name), None)


def _is_true(node: ast.expr | None) -> bool:
    return isinstance(node, ast.Constant) and node.value is True


def scan_source(text: str, filename: str) -> list[str]:
    """``file:line: problem`` for every unsafe deserialisation / eval / wide bind in ``text``."""
    tree = ast.parse(text, filename)
    aliases: dict[str, str] = {"np": "numpy", "pd": "pandas"}
    for node in ast.walk(tree):  # resolve `import pickle as pk`, `from pickle import loads`
        if isinstance(node, ast.Import):
            for a in node.names:
                aliases[a.asname or a.name.split(".")[0]] = a.name if a.asname else a.name.split(".")[0]
        elif isinstance(node, ast.ImportFrom) and node.module:
            for a in node.names:
                aliases[a.asname or a.name] = f"{node.module}.{a.name}"

    def resolve(name: str) -> str:
        head, _, rest = name.partition(".")
        full = aliases.get(head, head)
        return f"{full}.{rest}" if rest else full

    problems: list[str] = []

    def flag(node: ast.AST, what: str) -> None:
        problems.append(f"{filename}:{node.lineno}: {what}")

    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and node.value in ("0.0.0.0", "::"):
            flag(node, f"binds every interface ({node.value!r})")
        if isinstance(node, ast.Attribute) and resolve(_dotted(node) or "") in ("pickle.Unpickler", "_pickle.Unpickler"):
            if not filename.endswith(RESTRICTED_UNPICKLER):
                flag(node, "pickle.Unpickler outside the restricted unpickler")
        if not isinstance(node, ast.Call):
            continue
        if isinstance(node.func, ast.Attribute) and node.func.attr == "bind" and node.args and isinstance(node.args[0], ast.Tuple):
            host = node.args[0].elts[0] if node.args[0].elts else None
            if isinstance(host, ast.Constant) and host.value == "":
                flag(node, "socket bound to every interface ('')")
        raw = _dotted(node.func)
        if raw is None:
            continue
        name = resolve(raw)
        if name in ALWAYS_UNSAFE and not (name.endswith("Unpickler") and filename.endswith(RESTRICTED_UNPICKLER)):
            flag(node, f"{name}(...) can run code from data")
        elif name == "torch.load" and not _is_true(_keyword(node, "weights_only")):
            flag(node, "torch.load without weights_only=True")
        elif name in ("yaml.load", "yaml.load_all"):
            loader = _keyword(node, "Loader") or (node.args[1] if len(node.args) > 1 else None)
            if (_dotted(loader) or "").split(".")[-1] not in SAFE_YAML_LOADERS:
                flag(node, f"{name} without a safe Loader")
        elif name == "numpy.load" and _is_true(_keyword(node, "allow_pickle")):
            flag(node, "numpy.load(allow_pickle=True)")
        elif name.startswith("subprocess.") and _is_true(_keyword(node, "shell")):
            flag(node, f"{name}(shell=True)")
    return problems


def test_scanner_finds_each_kind_of_offender():
    """The scan below is only as good as this: every pattern is caught, the safe forms are not."""
    offenders = '''
import pickle, yaml, torch, subprocess, socket
import numpy as np
import pickle as pk
from pickle import loads as unpickle
pickle.load(f)
pk.loads(b)
unpickle(b)
torch.load(p)
torch.load(p, weights_only=False)
yaml.load(s)
yaml.load(s, Loader=yaml.Loader)
yaml.unsafe_load(s)
np.load(p, allow_pickle=True)
eval(expr)
exec(code)
subprocess.run(cmd, shell=True)
socket.socket().bind(("", 80))
HOST = "0.0.0.0"
class U(pickle.Unpickler): pass
'''
    safe = '''
import yaml, torch, json, numpy as np
torch.load(p, map_location="cpu", weights_only=True)
yaml.safe_load(s)
yaml.load(s, Loader=yaml.SafeLoader)
json.loads(s)
np.load(p)
model.eval()
HOST = "127.0.0.1"
'''
    found = scan_source(offenders, "example.py")
    assert [int(p.split(":")[1]) for p in found] == list(range(6, 21)), "\n".join(found)
    assert scan_source(safe, "example.py") == []


def test_source_tree_has_no_unsafe_deserialisation_eval_or_wide_bind():
    files = [p for d in SOURCE_DIRS if (REPO / d).is_dir() for p in sorted((REPO / d).rglob("*.py"))]
    assert len(files) > 50  # the scan really covers the code
    offenders = [hit for p in files for hit in scan_source(p.read_text(encoding="utf-8"), p.relative_to(REPO).as_posix())]
    assert offenders == [], "unsafe code:\n" + "\n".join(offenders)


# ----------------------------------------------------------------------------- a malicious refs(unc).p


class _Payload:
    """Pickles to ``callable(*args)``: what an attacker's refs file would hold."""

    def __init__(self, target, args):
        self.target, self.args = target, args

    def __reduce__(self):
        return self.target, self.args


def _payloads(marker: Path) -> dict[str, object]:
    return {
        "os.system": _Payload(os.system, (f"touch {marker}",)),
        "builtins.exec": _Payload(builtins.exec, (f"open({str(marker)!r}, 'w').close()",)),
        "builtins.eval": _Payload(builtins.eval, (f"open({str(marker)!r}, 'w')",)),
        "subprocess.call": _Payload(subprocess.call, (["touch", str(marker)],)),
    }


def _refs_with(evil: object) -> list:
    """A plausible refs list: one good ref and the payload hidden inside another's sentences."""
    good = {"ref_id": 1, "ann_id": 1, "image_id": 1, "category_id": 1, "split": "train",
            "sentences": [{"sent": "the red ball", "tokens": ["the", "red", "ball"]}]}
    return [good, {**good, "ref_id": 2, "sentences": [{"sent": evil}]}]


def _malicious_pickles(marker: Path) -> list[tuple[str, int, bytes]]:
    out = [(name, protocol, pickle.dumps(_refs_with(payload), protocol=protocol))
           for name, payload in _payloads(marker).items() for protocol in (0, 2, 4)]
    # Hand-written, as an attacker writes them. `this.s` names a module nobody imported
    # (importing it prints the Zen of Python): the reference must be refused before any import.
    out += [
        ("this.s via GLOBAL", 0, b"(lp0\ncthis\ns\na."),
        ("this.s via GLOBAL", 2, b"\x80\x02]cthis\ns\na."),
        ("this.s via STACK_GLOBAL", 4, b"\x80\x04]\x8c\x04this\x8c\x01s\x93a."),
        ("posix.system via GLOBAL + REDUCE", 0,
         b"(lp0\nS'ok'\np1\ncposix\nsystem\np2\n(S'touch " + str(marker).encode() + b"'\ntRp3\na."),
    ]
    return out


def _refcoco_root(tmp_path: Path, refs_bytes: bytes) -> Path:
    root = tmp_path / "refcoco"
    root.mkdir(exist_ok=True)
    (root / "refs(unc).p").write_bytes(refs_bytes)
    (root / "instances.json").write_text(json.dumps({
        "images": [{"id": 1, "file_name": "COCO_train2014_000000000001.jpg", "height": 8, "width": 8}],
        "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [0, 0, 4, 4], "area": 16, "iscrowd": 0}],
        "categories": [{"id": 1, "name": "ball"}],
    }))
    return root


def test_malicious_refs_pickle_is_refused_by_the_reader_and_runs_nothing(tmp_path):
    from perception_tokens.datasets.records import DatasetFormatError
    from perception_tokens.datasets.refcoco import read_refcoco

    assert "this" not in sys.modules
    marker = tmp_path / "pwned"
    cases = _malicious_pickles(marker)
    assert len(cases) == 16
    for name, protocol, data in cases:
        root = _refcoco_root(tmp_path, data)
        with pytest.raises(DatasetFormatError) as info:
            read_refcoco(root / "refs(unc).p", root / "instances.json")
        message = str(info.value)
        assert str(root / "refs(unc).p") in message and "refused to unpickle global" in message, (name, protocol, message)
        assert "nothing was executed" in message
        assert not marker.exists(), f"{name} (protocol {protocol}) ran code"
        assert "this" not in sys.modules, f"{name} (protocol {protocol}) imported a module"
    # the same file without the payload loads: the refusal is about the payload, not the layout
    good = _refs_with("the blue cup")
    root = _refcoco_root(tmp_path, pickle.dumps(good, protocol=2))
    assert read_refcoco(root / "refs(unc).p", root / "instances.json").refs == good


def test_malicious_refs_pickle_fails_the_refcoco_assets_naming_the_file(tmp_path, monkeypatch):
    from pipelines.definitions import build_definitions
    from pipelines.runner import _first_error
    from pipeline_lib.settings import settings_from_dict

    monkeypatch.setenv("PTOK_WORKDIR", str(tmp_path))
    marker = tmp_path / "pwned"
    evil = pickle.dumps(_refs_with(_Payload(os.system, (f"touch {marker}",))), protocol=2)
    root = _refcoco_root(tmp_path, evil)
    (tmp_path / "coco").mkdir()
    settings = settings_from_dict({
        "storage": {"root": str(tmp_path / "storage")},
        "demo": {"enabled": False},
        "datasets": {"ade20k_root": str(tmp_path / "ade"), "lvis_root": str(tmp_path / "lvis"),
                     "coco_root": str(tmp_path / "coco"), "refcoco_root": str(root)},
    })
    defs = build_definitions(settings)
    for asset in ("refcoco_refs", "refcoco_images"):
        result = dg.materialize(list(defs.assets), selection=[asset, f"{asset}_rejects"], resources=defs.resources,
                                instance=dg.DagsterInstance.ephemeral(), raise_on_error=False)
        assert not result.success
        error = _first_error(result)
        assert "refs(unc).p" in error and "refused to unpickle global 'posix.system'" in error, error
        assert not (tmp_path / "storage" / f"{asset}.parquet").exists()
    assert not marker.exists()


# ----------------------------------------------------------------------------- the web UI


def test_ui_binds_loopback_by_default(monkeypatch, tmp_path):
    from pipelines import cli

    args = cli.build_parser().parse_args(["ui"])
    assert args.host == "127.0.0.1"
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster_home"))
    launched = []
    from pipelines import ui

    monkeypatch.setattr(ui, "run_dagster_dev", lambda cmd, *a, **k: launched.append(cmd) or 0)
    assert args.func(args) == 0
    (cmd,) = launched
    assert cmd[cmd.index("dagster") + 1] == "dev"
    assert cmd[cmd.index("-h") + 1] == "127.0.0.1"


def test_make_ui_and_configs_never_open_the_ui_to_the_network():
    makefile = (REPO / "Makefile").read_text()
    recipe = re.search(r"^ui:.*\n((?:\t.*\n)+)", makefile, re.M)
    assert recipe, "Makefile has no ui target"
    lines = recipe.group(1).strip().splitlines()
    assert any("ptok ui" in line for line in lines), lines
    for line in lines:  # no host given: the parser's loopback default applies
        assert not re.search(r"(--host|-h)\s+(?!127\.0\.0\.1|localhost)", line), line
    wide = re.compile(r"0\.0\.0\.0|--host\s+\*|host:\s*['\"]?(?:0\.0\.0\.0|::)")
    checked = [REPO / "Makefile", REPO / "workspace.yaml", REPO / "pyproject.toml", *sorted((REPO / "configs").glob("*.yaml")),
               *sorted((REPO / ".ci").glob("*"))]
    hits = [f"{p.relative_to(REPO)}:{i}" for p in checked if p.is_file()
            for i, line in enumerate(p.read_text().splitlines(), 1) if wide.search(line)]
    assert hits == []
