"""Changed source files are noticed (issue 12.2): fingerprints of dataset roots and the
observable source assets that carry them into staleness.

Before the fix, replacing an image under a dataset root left every asset "fresh" and the
table with the old sha256.
"""

from __future__ import annotations

import os
from pathlib import Path

import dagster as dg
import pyarrow as pa
import pytest

from pipeline_lib.file_fingerprint import fingerprint_tree
from pipeline_lib.io_manager import ParquetIOManagerFactory
from pipelines.runner import materialize_graph


def _tree(root: Path) -> None:
    (root / "images").mkdir(parents=True)
    for i in range(3):
        (root / "images" / f"{i}.jpg").write_bytes(bytes([i]) * 100)
    (root / "ann.json").write_text("{}")


def test_fingerprint_moves_with_content_not_with_touch(tmp_path):
    root, state = tmp_path / "root", tmp_path / "state.json"
    _tree(root)
    first = fingerprint_tree(root, state)
    assert (first.files, first.hashed, first.removed) == (4, [], [])  # first look: stat only, nothing read
    assert fingerprint_tree(root, state).version == first.version

    img = root / "images" / "1.jpg"
    img.write_bytes(b"\x09" * 100)  # same size, other bytes
    os.utime(img, ns=(img.stat().st_atime_ns, img.stat().st_mtime_ns + 10**9))
    changed = fingerprint_tree(root, state)
    assert changed.hashed == ["images/1.jpg"] and changed.version != first.version

    os.utime(img, ns=(img.stat().st_atime_ns, img.stat().st_mtime_ns + 10**9))  # touched, same bytes
    touched = fingerprint_tree(root, state)
    assert touched.hashed == ["images/1.jpg"] and touched.version == changed.version

    (root / "images" / "0.jpg").unlink()
    (root / "images" / "3.jpg").write_bytes(b"new")
    moved = fingerprint_tree(root, state)
    assert moved.removed == ["images/0.jpg"] and moved.hashed == ["images/3.jpg"]
    assert len({first.version, changed.version, moved.version}) == 3


def test_state_of_another_root_or_a_broken_state_file_is_not_trusted(tmp_path):
    a, b, state = tmp_path / "a", tmp_path / "b", tmp_path / "state.json"
    _tree(a)
    _tree(b)
    (b / "images" / "2.jpg").write_bytes(b"other")
    va = fingerprint_tree(a, state).version
    assert fingerprint_tree(b, state).version != va
    state.write_text("{not json")
    assert fingerprint_tree(a, state).version == va


def _defs(root: Path, storage: Path) -> dg.Definitions:
    @dg.observable_source_asset(name="toy_files")
    def toy_files():
        return dg.DataVersion(fingerprint_tree(root, storage / ".fingerprints" / "toy.json").version)

    @dg.asset(code_version="1", deps=[toy_files])
    def toy_images() -> pa.Table:
        files = sorted(p.name for p in (root / "images").iterdir())
        return pa.table({"file": files, "size": [(root / "images" / f).stat().st_size for f in files]})

    @dg.asset(code_version="1")
    def toy_summary(toy_images) -> pa.Table:
        return pa.table({"n": [toy_images.num_rows]})

    return dg.Definitions(assets=[toy_files, toy_images, toy_summary],
                          resources={"io_manager": ParquetIOManagerFactory(root=str(storage))})


def test_runner_recomputes_a_source_after_a_file_under_its_root_changes(tmp_path):
    root, storage = tmp_path / "data", tmp_path / "storage"
    _tree(root)
    (tmp_path / "home").mkdir()
    with dg.instance_for_test(temp_dir=str(tmp_path / "home")) as instance:
        defs = _defs(root, storage)
        first = materialize_graph(defs, instance, "*", log=lambda m: None)
        assert [s.status for s in first.steps] == ["materialized", "materialized"]
        again = materialize_graph(defs, instance, "*", log=lambda m: None)
        assert [s.status for s in again.steps] == ["skipped (fresh)", "skipped (fresh)"]

        (root / "images" / "2.jpg").write_bytes(b"replaced by a bigger file" * 10)
        logs: list[str] = []
        after = materialize_graph(defs, instance, "*", log=logs.append)
        assert {s.asset: s.status for s in after.steps}["toy_images"] == "materialized", logs
        assert any("toy_files" in line and "version" in line for line in logs), logs
        sizes = pa.parquet.read_table(storage / "toy_images.parquet").to_pydict()["size"]
        assert sizes == [100, 100, 250]


# --- odd files in a dataset root (issue 21.2): names that are not UTF-8, FIFOs, failed observations

def test_a_name_that_is_not_utf8_is_fingerprinted_as_bytes(tmp_path):
    """Before the fix: UnicodeEncodeError in the version hash, so the observation failed."""
    root, state = tmp_path / "root", tmp_path / "state.json"
    _tree(root)
    first = fingerprint_tree(root, state)
    odd = os.path.join(os.fsencode(root / "images"), b"ADE_train_\xff\xfe.jpg")
    with open(odd, "wb") as fh:
        fh.write(b"not utf-8 named")
    (root / "images" / "3.jpg").write_bytes(b"a new image")
    second = fingerprint_tree(root, state)
    assert second.version != first.version and second.files == 6
    shown = repr(b"images/ADE_train_\xff\xfe.jpg")
    assert second.hashed == ["images/3.jpg", shown]
    assert second.not_read == {shown: "file name is not valid UTF-8"}
    assert fingerprint_tree(root, state).version == second.version  # the state file kept the name
    os.unlink(odd)
    third = fingerprint_tree(root, state)
    assert third.removed == [shown] and third.version != second.version


_FIFO_PROBE = """
import os, sys
from pipeline_lib.file_fingerprint import fingerprint_tree
root, state = sys.argv[1], sys.argv[2]
fingerprint_tree(root, state)
os.mkfifo(os.path.join(root, "images", "ADE_train_fifo.jpg"))
fp = fingerprint_tree(root, state)
print(fp.not_read)
"""


def test_a_fifo_in_a_root_is_never_opened(tmp_path):
    """Before the fix the second observation opened the FIFO to hash it and blocked forever
    (run in a subprocess so a regression fails on the timeout instead of hanging the suite)."""
    import subprocess
    import sys

    root = tmp_path / "root"
    _tree(root)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    done = subprocess.run([sys.executable, "-c", _FIFO_PROBE, str(root), str(tmp_path / "state.json")],
                          capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "{'images/ADE_train_fifo.jpg': 'not a regular file (FIFO): never opened'}"


def test_file_sha256_refuses_a_fifo_without_blocking(tmp_path):
    from perception_tokens.paths import NotARegularFileError, file_sha256

    os.mkfifo(tmp_path / "pipe")
    with pytest.raises(NotARegularFileError, match="pipe: not a regular file \\(FIFO\\)"):
        file_sha256(tmp_path / "pipe")  # O_NONBLOCK: the open returns although no writer exists
    (tmp_path / "f").write_bytes(b"abc")
    assert file_sha256(tmp_path / "f") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"


def test_a_failed_observation_fails_what_reads_the_root_instead_of_calling_it_fresh(tmp_path):
    """Before the fix the runner logged the failure and reported every step "skipped (fresh)"
    against the old version, so new files were ignored on every run."""
    root, storage = tmp_path / "data", tmp_path / "storage"
    _tree(root)
    broken = tmp_path / "observation-breaks"

    @dg.observable_source_asset(name="toy_files")
    def toy_files():
        if broken.exists():
            raise OSError("cannot list the root")
        return dg.DataVersion(fingerprint_tree(root, storage / ".fingerprints" / "toy.json").version)

    @dg.asset(code_version="1", deps=[toy_files])
    def toy_images() -> pa.Table:
        return pa.table({"file": sorted(p.name for p in (root / "images").iterdir())})

    @dg.asset(code_version="1")
    def toy_summary(toy_images) -> pa.Table:
        return pa.table({"n": [toy_images.num_rows]})

    @dg.observable_source_asset(name="other_files")
    def other_files():  # a second root, observed fine: what reads it stays fresh
        return dg.DataVersion("unchanged")

    @dg.asset(code_version="1", deps=[other_files])
    def other_images() -> pa.Table:
        return pa.table({"n": [1]})

    defs = dg.Definitions(assets=[toy_files, toy_images, toy_summary, other_files, other_images],
                          resources={"io_manager": ParquetIOManagerFactory(root=str(storage))})
    (tmp_path / "home").mkdir()
    with dg.instance_for_test(temp_dir=str(tmp_path / "home")) as instance:
        assert not materialize_graph(defs, instance, "*", log=lambda m: None).failed
        broken.touch()
        logs: list[str] = []
        after = materialize_graph(defs, instance, "*", log=logs.append)
        status = {s.asset: s.status for s in after.steps}
        assert status == {"toy_files": "failed", "toy_images": "skipped (upstream failed)",
                          "toy_summary": "skipped (upstream failed)", "other_images": "skipped (fresh)"}, logs
        assert "cannot list the root" in after.steps[0].error
        assert any("toy_files" in line and "FAILED to observe" in line for line in logs), logs
