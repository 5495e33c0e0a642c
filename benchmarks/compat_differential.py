"""Differential check of ``--compat`` against the peers' own code: each pinned peer version's
answer-extraction function, loaded from its released files (never copied into the project),
is run on the project's answer corpus next to the matching ``evaluation.compat`` rule, and
every per-question disagreement is printed.

- lmms-eval: the wheel of each release in ``evaluation.compat.RULES`` is fetched with
  ``pip download --no-deps`` into a temporary folder (nothing installed); its BLINK and
  CV-Bench ``utils.py`` are imported by path, with the package ``__init__`` files (which
  import the whole harness: torch, loguru, ...) replaced by empty ones and the prompt-template
  loader by one returning ``{}``.
- VLMEvalKit (not on PyPI): ``matching_util.py`` at each modelled commit, and at each later
  commit said to read answers the same way, is read from a fetched git copy (``--vlmevalkit-git`` or ``$PTOK_VLMEVALKIT_GIT``), with its logger import stubbed.

A peer whose source cannot be had (registry unreachable, no git copy) is skipped with a
message. Exit status: 1 on any disagreement, else 0.

    python benchmarks/compat_differential.py [--vlmevalkit-git PATH] [--corpus FILE ...]
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from evaluation.compat import LMMS_EVAL, RULES, VLMEVALKIT, VLMEVALKIT_SAME_RULE, PeerRule, extract  # noqa: E402

ANSWERS = ROOT / "tests" / "data" / "answers"
DEFAULT_CORPORA = (ANSWERS / "corpus.jsonl", ANSWERS / "compat_shapes.jsonl")
TASKS = ("BLINK", "CV-Bench")  # every answer is read as each task's question: the lmms-eval rule differs by task

PeerFn = Callable[[dict, str], "str | None"]  # (row, text) -> the peer's letter, None for no answer


class PeerUnavailable(Exception):
    """The peer's source could not be had here (no registry, no git copy): skip, do not fail."""


@dataclass
class Report:
    checked: dict[str, int] = field(default_factory=dict)
    disagreements: list[dict] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)


def load_corpus(paths) -> list[dict]:
    rows = []
    for path in paths:
        for n, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            try:
                r = json.loads(line)
            except json.JSONDecodeError as e:
                raise ValueError(f"{path}:{n}: not JSON ({e})") from None
            if r.get("answer_type", "letter") == "letter":
                rows.append(r)
    return rows


def question_rows(corpus: list[dict]) -> Iterator[dict]:
    """Each corpus answer as a BLINK and as a CV-Bench question."""
    for r in corpus:
        for task in TASKS:
            yield {"benchmark": task, "subset": "corpus", "raw_output": r["text"], "valid_letters": r["valid_letters"],
                   "choices": r.get("choices"), "answer_type": "letter", "gold": r["valid_letters"][0]}


def compare(rule: PeerRule, peer: PeerFn, rows) -> tuple[int, list[dict]]:
    """(rows checked, disagreements) between the peer's function and our ``rule``."""
    n, out = 0, []
    for row in rows:
        theirs, ours = peer(row, row["raw_output"]), extract(rule, row["raw_output"], row)
        n += 1
        if theirs != ours:
            out.append({"rule": rule.name, "task": row["benchmark"], "letters": "".join(row["valid_letters"]),
                        "text": row["raw_output"], "peer": theirs, "ours": ours})
    return n, out


@contextlib.contextmanager
def _imported_from(folder: Path, package: str) -> Iterator[None]:
    """``folder`` first on sys.path while importing; the peer's modules are dropped after, so two
    versions of one package load in one process."""
    before = {k for k in sys.modules if k == package or k.startswith(package + ".")}
    sys.path.insert(0, str(folder))
    try:
        yield
    finally:
        sys.path.remove(str(folder))
        for k in [k for k in sys.modules if (k == package or k.startswith(package + ".")) and k not in before]:
            del sys.modules[k]


def _load(folder: Path, package: str, module: str):
    with _imported_from(folder, package):
        spec = importlib.util.spec_from_file_location(module, folder / (module.replace(".", "/") + ".py"))
        mod = importlib.util.module_from_spec(spec)
        sys.modules[module] = mod
        spec.loader.exec_module(mod)
        return mod


def lmms_eval_peer(version: str, workdir: Path) -> PeerFn:
    """lmms-eval ``version``'s own BLINK / CV-Bench scoring (``*_process_results``) from its PyPI wheel."""
    wheels = workdir / "wheels"
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--disable-pip-version-check",
           "--timeout", "30", "--retries", "2", "-q", "-d", str(wheels), f"lmms-eval=={version}"]
    done = subprocess.run(cmd, capture_output=True, text=True)
    found = sorted(wheels.glob(f"lmms_eval-{version}-*.whl"))
    if done.returncode != 0 or not found:
        tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no wheel"]
        raise PeerUnavailable(f"pip download lmms-eval=={version} failed: {tail[0]}")
    root = workdir / f"lmms_eval-{version}"
    wanted = ("lmms_eval/tasks/blink/utils.py", "lmms_eval/tasks/cv_bench/utils.py")
    with zipfile.ZipFile(found[0]) as z:
        z.extractall(root, wanted)
    (root / "lmms_eval" / "tasks" / "_task_utils").mkdir()
    for pkg in ("lmms_eval", "lmms_eval/tasks", "lmms_eval/tasks/_task_utils"):
        (root / pkg / "__init__.py").write_text("")  # the real ones import the whole harness
    # utils.py reads the task's prompt template at import; extraction never uses it, and 0.7.2's
    # wheel ships no blink/_default_template_yaml, so the loader is a stub
    (root / "lmms_eval" / "tasks" / "_task_utils" / "default_template_yaml.py").write_text(
        "def load_default_template_yaml(task_file):\n    return {}\n")
    blink = _load(root, "lmms_eval", "lmms_eval.tasks.blink.utils")
    cv_bench = _load(root, "lmms_eval", "lmms_eval.tasks.cv_bench.utils")

    def read(row: dict, text: str) -> str | None:
        choices = row.get("choices") or row["valid_letters"]
        doc = {"idx": 0, "answer": f"({row['gold']})", "choices": choices, "sub_task": row["subset"],
               "type": "Depth", "task": "Depth", "source": "Omni3D"}
        if row["benchmark"] == "CV-Bench":
            got = cv_bench.cv_bench_process_results(doc, [text])["cv_bench_acc"]["pred_parsed"]
        else:
            got = blink.blink_process_results(doc, [text])["blink_acc"]["pred_parsed"]
        return got or None
    return read


_VLMEVAL_LOG_STUB = "import logging\n\n\ndef get_logger(name=None, *args, **kwargs):\n    return logging.getLogger(name)\n"


def vlmevalkit_peer(git_dir: Path, commit: str, workdir: Path) -> PeerFn:
    """VLMEvalKit's own ``can_infer`` at ``commit``, read from a git copy."""
    done = subprocess.run(["git", "-C", str(git_dir), "show", f"{commit}:vlmeval/utils/matching_util.py"],
                          capture_output=True, text=True)
    if done.returncode != 0:
        raise PeerUnavailable(f"{git_dir}: no vlmeval/utils/matching_util.py at {commit}: {done.stderr.strip()}")
    root = workdir / f"vlmeval-{commit}"
    (root / "vlmeval" / "utils").mkdir(parents=True)
    (root / "vlmeval" / "smp").mkdir()
    (root / "vlmeval" / "utils" / "matching_util.py").write_text(done.stdout, encoding="utf-8")
    for init in ("vlmeval/__init__.py", "vlmeval/utils/__init__.py"):
        (root / init).write_text("")
    # the real vlmeval.smp pulls in pandas, torch, ...: matching_util only needs get_logger from it
    (root / "vlmeval" / "smp" / "__init__.py").write_text(_VLMEVAL_LOG_STUB)
    (root / "vlmeval" / "smp" / "log.py").write_text(_VLMEVAL_LOG_STUB)
    matching = _load(root, "vlmeval", "vlmeval.utils.matching_util")

    def read(row: dict, text: str) -> str | None:
        letters = [str(v) for v in row["valid_letters"]]
        options = dict(zip(letters, [str(c) for c in (row.get("choices") or letters)]))
        got = matching.can_infer(text, options)
        return None if got in (False, "Z") else got
    return read


def checks(rules=RULES) -> list[tuple[PeerRule, str]]:
    """(our rule, peer version to run it against): each rule's own version, and for VLMEvalKit
    every later commit said to read answers the same way (``VLMEVALKIT_SAME_RULE``)."""
    out = [(rule, rule.version) for rule in rules]
    out += [(rule, commit) for commit, same in VLMEVALKIT_SAME_RULE.items()
            for rule in rules if rule.peer == VLMEVALKIT and rule.version == same]
    return out


def run(corpora=DEFAULT_CORPORA, vlmevalkit_git: Path | None = None, rules=RULES) -> Report:
    report = Report()
    rows = list(question_rows(load_corpus(corpora)))
    with tempfile.TemporaryDirectory(prefix="ptok-compat-") as tmp:
        for rule, version in checks(rules):
            name = rule.name if version == rule.version else f"{rule.name} vs {rule.peer} {version}"
            try:
                if rule.peer == LMMS_EVAL:
                    peer = lmms_eval_peer(version, Path(tmp))
                elif vlmevalkit_git is None:
                    raise PeerUnavailable("no VLMEvalKit git copy (--vlmevalkit-git or $PTOK_VLMEVALKIT_GIT); it is not on PyPI")
                else:
                    peer = vlmevalkit_peer(vlmevalkit_git, version, Path(tmp))
            except PeerUnavailable as e:
                report.skipped[name] = str(e)
                continue
            report.checked[name], found = compare(rule, peer, rows)
            report.disagreements += [{**d, "check": name} for d in found]
    return report


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--corpus", nargs="+", type=Path, default=list(DEFAULT_CORPORA))
    ap.add_argument("--vlmevalkit-git", type=Path, default=os.environ.get("PTOK_VLMEVALKIT_GIT") or None)
    ap.add_argument("--rule", nargs="+", help="only these rules (e.g. lmms-eval==0.7.3); default: every modelled one")
    args = ap.parse_args(argv)
    rules = [r for r in RULES if not args.rule or r.name in args.rule]
    report = run(args.corpus, args.vlmevalkit_git, rules)
    for name, why in report.skipped.items():
        print(f"SKIPPED {name}: {why}")
    for name, n in report.checked.items():
        bad = sum(d["check"] == name for d in report.disagreements)
        print(f"{name}: {n} questions, {bad} disagreement(s)")
    for d in report.disagreements:
        print(f"  DISAGREE {d['check']} {d['task']} [{d['letters']}] peer={d['peer']!r} ours={d['ours']!r}: {d['text']!r}")
    return 1 if report.disagreements else 0


if __name__ == "__main__":
    sys.exit(main())
