"""A re-run with nothing to do launches no run; an edited dataset file is still seen (issue 25.3).

``ptok`` looks at each dataset root's fingerprint (``fingerprint_tree(record=False)``) before
observing: a root whose fingerprint is the data version its last observation recorded is not
observed again, so a no-op ``ptok demo`` starts no Dagster run at all. The trust rule stays: a
re-run equals a clean run, so every edit the observation would see must also be seen by the look.
"""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import pytest

from pipeline_lib.file_fingerprint import fingerprint_tree
from pipeline_lib.settings import settings_from_dict
from pipelines.definitions import build_definitions
from pipelines.runner import materialize_graph

TINY_DEMO = {"n_ade20k": 3, "n_lvis": 2, "n_refcoco": 2, "seed": 0, "width": 96, "height": 72}
SELECTION = "group:sources or key:pseudo_depth"


def _tree(root: Path) -> Path:
    (root / "images").mkdir(parents=True)
    for i in range(3):
        (root / "images" / f"{i}.jpg").write_bytes(bytes([i]) * 100)
    return root / "images" / "1.jpg"


def _set_mtime(path: Path, mtime_ns: int) -> None:
    os.utime(path, ns=(path.stat().st_atime_ns, mtime_ns))


def test_same_size_new_mtime_is_seen(tmp_path):
    root, state = tmp_path / "root", tmp_path / "state.json"
    img = _tree(root)
    first = fingerprint_tree(root, state)
    img.write_bytes(b"\x07" * 100)  # same size, other bytes, a later mtime
    _set_mtime(img, img.stat().st_mtime_ns + 10**9)
    assert fingerprint_tree(root, state, record=False).version != first.version
    seen = fingerprint_tree(root, state)
    assert seen.hashed == ["images/1.jpg"] and seen.version != first.version


def test_same_size_same_mtime_new_content_is_seen(tmp_path):
    """Before the fix only (size, mtime) decided whether a file moved: a rewrite that kept both
    (``cp -p``, ``rsync -t``, ``touch -d``) kept the old version and everything below stayed "fresh"."""
    root, state = tmp_path / "root", tmp_path / "state.json"
    img = _tree(root)
    fingerprint_tree(root, state)
    second = fingerprint_tree(root, state)  # the file was read once before it is edited
    mtime = img.stat().st_mtime_ns
    img.write_bytes(b"\x09" * 100)  # same size, other bytes
    _set_mtime(img, mtime)  # and the old mtime back
    assert img.stat().st_size == 100 and img.stat().st_mtime_ns == mtime
    third = fingerprint_tree(root, state)
    assert third.hashed == ["images/1.jpg"] and third.version != second.version
    # the old bytes back the same way: seen again, and the version follows the content
    img.write_bytes(bytes([1]) * 100)
    _set_mtime(img, mtime)
    fourth = fingerprint_tree(root, state)
    assert fourth.hashed == ["images/1.jpg"] and fourth.version != third.version


def test_a_look_records_nothing(tmp_path):
    root, state = tmp_path / "root", tmp_path / "state.json"
    img = _tree(root)
    recorded = fingerprint_tree(root, state)
    before = state.read_bytes()
    assert fingerprint_tree(root, state, record=False).version == recorded.version
    img.write_bytes(b"\x05" * 100)
    _set_mtime(img, img.stat().st_mtime_ns + 10**9)
    look = fingerprint_tree(root, state, record=False)
    assert look.version != recorded.version and state.read_bytes() == before
    assert fingerprint_tree(root, state).version == look.version  # the observation records what the look saw


def test_a_state_file_without_ctime_and_inode_is_still_read(tmp_path):
    """State files written before ctime and inode were recorded keep their hashes (no re-read of a large root)."""
    import json

    root, state = tmp_path / "root", tmp_path / "state.json"
    _tree(root)
    first = fingerprint_tree(root, state)
    old = json.loads(state.read_text())
    old["files"] = {rel: entry[:3] for rel, entry in old["files"].items()}
    state.write_text(json.dumps(old))
    again = fingerprint_tree(root, state)
    assert again.version == first.version and again.hashed == []


@pytest.fixture
def world(tmp_path, monkeypatch):
    monkeypatch.setenv("PTOK_WORKDIR", str(tmp_path))
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster_home"))
    (tmp_path / "dagster_home").mkdir()
    settings = settings_from_dict({
        "storage": {"root": str(tmp_path / "storage")},
        "demo": {"enabled": True, "root": str(tmp_path / "demo"), **TINY_DEMO},
        "datasets": {"num_shards": 2},
    })
    from pipelines.instance import get_instance

    return build_definitions(settings), get_instance(), tmp_path / "demo"


def test_noop_run_launches_nothing_and_an_edited_image_reruns_its_partitions(world):
    defs, instance, demo = world
    first = materialize_graph(defs, instance, SELECTION, log=lambda m: None)
    assert not first.failed and first.steps, first.failed
    runs = instance.get_runs_count()

    logs: list[str] = []
    noop = materialize_graph(defs, instance, SELECTION, log=logs.append)
    assert noop.steps and all(s.status == "skipped (fresh)" for s in noop.steps), [(s.asset, s.status) for s in noop.steps]
    assert instance.get_runs_count() == runs  # no observation run, no materialization run
    assert sum("unchanged, not re-observed" in line for line in logs) == 6, logs

    image = sorted((demo / "ADEChallengeData2016" / "images").rglob("*.jpg"))[0]
    pixels = cv2.imread(str(image))
    assert cv2.imwrite(str(image), 255 - pixels)  # another picture, valid JPEG
    logs.clear()
    after = materialize_graph(defs, instance, SELECTION, log=logs.append)
    assert instance.get_runs_count() > runs
    statuses = {s.asset: s.status for s in after.steps}
    done = sorted(name for name, status in statuses.items() if status == "materialized")
    # every pseudo_depth partition reads the image tables (its input), so all six follow ade20k_images
    shards = [f"pseudo_depth[{d}|{k}]" for d in ("ade20k", "lvis", "refcoco") for k in (0, 1)]
    assert done == sorted(["ade20k_images", *shards]), statuses
    assert all(statuses[name] == "skipped (fresh)" for name in ("lvis_images", "lvis_instances", "refcoco_images", "refcoco_refs"))
    assert any(line.startswith("  o ade20k_files") and "not re-observed" not in line for line in logs), logs
