"""Changing ``demo.*`` settings after the demo data exists regenerates it, and says so (issue 21.2).

Before the fix the manifest's mere presence counted as "done": ``demo.n_ade20k`` or
``demo.seed`` edited later were silently ignored and the old images kept being read."""

import json
import shutil

from pipeline_lib.demo_world import ensure_demo_benchmarks, ensure_demo_datasets


class RecordingLog:
    def __init__(self):
        self.lines: list[str] = []

    def info(self, msg):
        self.lines.append(msg)

    warning = info


def _ade20k_ids(root):
    return sorted(json.loads((root / "demo_manifest.json").read_text())["image_ids"]["ade20k"])


def _first_ade20k_image(root):
    folder = root / "ADEChallengeData2016" / "images" / "training"
    return min(folder.iterdir()).read_bytes()


def test_demo_datasets_follow_the_settings(tmp_path):
    root = tmp_path / "demo"
    small = dict(n_ade20k=2, n_lvis=1, n_refcoco=1, seed=0, width=64, height=48)
    ensure_demo_datasets(root, **small)
    assert len(_ade20k_ids(root)) == 2
    image_seed0 = _first_ade20k_image(root)
    mtime = (root / "demo_manifest.json").stat().st_mtime_ns
    ensure_demo_datasets(root, **small)  # same settings: nothing rewritten
    assert (root / "demo_manifest.json").stat().st_mtime_ns == mtime

    log = RecordingLog()
    ensure_demo_datasets(root, **{**small, "n_ade20k": 3}, log=log)
    assert len(_ade20k_ids(root)) == 3
    assert log.lines == [f"demo settings changed (n_ade20k 2 -> 3): regenerating the demo datasets under {root}"]

    ensure_demo_datasets(root, **{**small, "n_ade20k": 3, "seed": 1}, log=log)
    assert log.lines[-1] == f"demo settings changed (seed 0 -> 1): regenerating the demo datasets under {root}"
    assert _first_ade20k_image(root) != image_seed0


def test_a_demo_folder_that_does_not_record_its_settings_is_regenerated(tmp_path):
    root = tmp_path / "demo"
    small = dict(n_ade20k=2, n_lvis=1, n_refcoco=1, seed=0, width=64, height=48)
    ensure_demo_datasets(root, **small)
    manifest = json.loads((root / "demo_manifest.json").read_text())
    del manifest["settings"]  # as written before the manifest recorded them
    (root / "demo_manifest.json").write_text(json.dumps(manifest))
    log = RecordingLog()
    ensure_demo_datasets(root, **small, log=log)
    assert json.loads((root / "demo_manifest.json").read_text())["settings"]["n_ade20k"] == 2
    assert log.lines == ["demo settings changed (the demo folder does not record the settings it was made with): "
                         f"regenerating the demo datasets under {root}"]


def test_demo_benchmarks_follow_their_seed(tmp_path):
    root = tmp_path / "benchmarks"
    ensure_demo_benchmarks(root, scenes=2, seed=0)
    before = {p.relative_to(root): p.read_bytes() for p in root.rglob("*") if p.is_file()}
    log = RecordingLog()
    ensure_demo_benchmarks(root, scenes=2, seed=0, log=log)
    assert log.lines == []
    ensure_demo_benchmarks(root, scenes=2, seed=1, log=log)
    after = {p.relative_to(root): p.read_bytes() for p in root.rglob("*") if p.is_file()}
    assert len(log.lines) == 1 and "seed=0 -> " in log.lines[0] and "seed=1" in log.lines[0]
    changed = [p for p in before if p.name != ".complete" and before[p] != after.get(p)]
    assert changed  # other scenes, other images


def test_demo_benchmarks_written_before_the_zoom_set_are_regenerated_with_it(tmp_path):
    root = tmp_path / "benchmarks"
    ensure_demo_benchmarks(root, scenes=2, seed=0)
    assert (root / "zoom" / "questions.jsonl").is_file()
    shutil.rmtree(root / "zoom")  # a folder as the generator wrote it before the zoom benchmark existed
    (root / ".complete").write_text("refcoco-res-layout-1\nscenes=2 seed=0\n")
    log = RecordingLog()
    ensure_demo_benchmarks(root, scenes=2, seed=0, log=log)
    assert (root / "zoom" / "questions.jsonl").is_file() and len(log.lines) == 1
