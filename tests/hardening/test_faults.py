"""Faults: processes killed mid-write and mid-training, a failing shard, a full disk, no permission.

The killed processes are real subprocesses (``fault_worker.py``) stopped with SIGKILL, so
nothing in them gets to clean up: whatever survives is what a crash leaves behind.
Exception-style interruptions are covered by the unit tests (tests/vqvae/test_vqvae_train.py
``test_resume_mid_epoch_after_crash_gives_same_weights``, tests/llava/test_llava_train.py
``test_resume_after_interruption_continues_at_same_step``, tests/pipelines/
test_tables_storage.py ``test_failed_write_leaves_nothing_behind``); these add the kill.
"""

from __future__ import annotations

import ctypes
import errno
import importlib.util
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import dagster as dg
import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
from safetensors.torch import load_file
from upath import UPath

from pipeline_lib import catalog, tables
from pipelines.definitions import build_definitions
from pipeline_lib.resources import DepthTeacherResource
from pipelines.runner import _first_error, materialize_graph
from pipeline_lib.tables import write_table_atomic

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
WORKER = HERE / "fault_worker.py"


def _load(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


fw = _load("hardening_fault_worker", WORKER)
e2e = _load("hardening_e2e_conftest", REPO / "tests" / "e2e" / "conftest.py")
# the workers run with one thread; the same here keeps float sums in the same order
_one_torch_thread = _load("hardening_vqvae_conftest", REPO / "tests" / "vqvae" / "conftest.py")._one_torch_thread


# ----------------------------------------------------------------------------- workers


class Workers:
    """Starts fault_worker.py subprocesses; kills (by pid) any still running at teardown."""

    def __init__(self, logs: Path):
        self.logs = logs
        self.procs: list[tuple[subprocess.Popen, Path]] = []

    def start(self, mode: str, *args, preexec_fn=None) -> subprocess.Popen:
        log = self.logs / f"worker-{len(self.procs)}-{mode}.log"
        env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false",
               "HF_HUB_OFFLINE": "1"}
        with open(log, "wb") as out:  # a file, not a pipe: a chatty worker must never block on a full pipe
            proc = subprocess.Popen([sys.executable, str(WORKER), mode, *map(str, args)], cwd=REPO, env=env,
                                    stdout=out, stderr=subprocess.STDOUT, preexec_fn=preexec_fn)
        proc.log = log  # type: ignore[attr-defined]
        self.procs.append((proc, log))
        return proc

    @staticmethod
    def tail(proc: subprocess.Popen) -> str:
        return proc.log.read_text(errors="replace")[-3000:]  # type: ignore[attr-defined]

    def wait_for(self, proc: subprocess.Popen, signal_file: Path, timeout: float = 180.0) -> None:
        deadline = time.monotonic() + timeout
        while not signal_file.exists():
            if proc.poll() is not None:
                pytest.fail(f"worker exited ({proc.returncode}) before reaching the kill point:\n{self.tail(proc)}")
            if time.monotonic() > deadline:
                pytest.fail(f"worker did not reach the kill point in {timeout} s:\n{self.tail(proc)}")
            time.sleep(0.02)
        assert int(signal_file.read_text()) == proc.pid

    @staticmethod
    def kill(proc: subprocess.Popen) -> None:
        os.kill(proc.pid, signal.SIGKILL)
        assert proc.wait(timeout=60) == -signal.SIGKILL

    def close(self) -> None:
        for proc, _ in self.procs:
            if proc.poll() is None:
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait(timeout=60)


@pytest.fixture
def workers(tmp_path):
    w = Workers(tmp_path)
    yield w
    w.close()


# ----------------------------------------------------------------------------- 1. SIGKILL mid-write


def _versions(path) -> tuple[int, set[int]]:
    t = pq.read_table(str(path), columns=["version"])
    return t.num_rows, set(t.column("version").to_pylist())


def test_sigkill_mid_materialization_keeps_previous_version_and_rerun_completes(tmp_path, workers):
    root = tmp_path / "storage"
    db = root / "catalog.duckdb"
    first = fw.materialize_table(str(root), rows=200, version=1)
    assert first.success
    final = root / fw.TABLE_ASSET / "a.parquet"
    before = pq.read_table(str(final))
    assert _versions(final) == (200, {1})

    signal_file = tmp_path / "mid-write"
    proc = workers.start("table", root, signal_file, 400, 2)
    workers.wait_for(proc, signal_file)
    staging = list((root / ".staging" / fw.TABLE_ASSET).iterdir())
    assert len(staging) == 1 and staging[0].name.startswith(".staging-")
    assert staging[0].stat().st_size > 20_000  # ~12 row groups of version 2 are on disk: killed mid-write
    assert pq.read_table(str(final)).equals(before)  # while it writes, readers see version 1
    workers.kill(proc)

    # Under the final names: exactly the previous version, byte for byte the same table.
    assert sorted(p.name for p in (root / fw.TABLE_ASSET).iterdir()) == ["a.parquet"]
    assert pq.read_table(str(final)).equals(before)
    with pytest.raises(pa.ArrowInvalid):  # the orphan really is half a file (no footer)
        pq.read_metadata(str(staging[0]))
    # DuckDB sees version 1 only: the orphan is outside the asset's glob and its dot-folder is no asset.
    glob = catalog.parquet_source(str(root), fw.TABLE_ASSET)
    con = duckdb.connect()
    try:
        assert con.execute(f"select count(*), min(version), max(version) from read_parquet('{glob}')").fetchall() == [(200, 1, 1)]
    finally:
        con.close()
    assert catalog.refresh_all(db, str(root)) == [fw.TABLE_ASSET]
    assert catalog.query(db, f"select count(*), max(version) from {fw.TABLE_ASSET}")[1] == [(200, 1)]

    again = fw.materialize_table(str(root), rows=400, version=2)
    assert again.success
    assert _versions(final) == (400, {2})
    assert catalog.query(db, f"select count(*), min(version) from {fw.TABLE_ASSET}")[1] == [(400, 2)]


def test_sigkill_while_staging_beside_final_name_is_invisible(tmp_path, workers):
    """write_table_atomic's layout: the staging file sits beside the final one (here in the root)."""
    root = tmp_path / "storage"
    root.mkdir()
    db = root / "catalog.duckdb"
    fw.stage_direct(str(root), rows=100, version=1)
    final = root / f"{fw.DIRECT_ASSET}.parquet"
    before = pq.read_table(str(final))

    signal_file = tmp_path / "mid-write"
    proc = workers.start("direct", root, signal_file, 400, 2)
    workers.wait_for(proc, signal_file)
    workers.kill(proc)

    orphans = [p for p in root.iterdir() if p.name.startswith(".staging-")]
    assert len(orphans) == 1 and orphans[0].stat().st_size > 0
    assert sorted(p.name for p in root.iterdir() if not p.name.startswith(".")) == [final.name]
    assert pq.read_table(str(final)).equals(before)
    assert catalog.parquet_source(str(root), fw.DIRECT_ASSET) == str(final)
    assert catalog.refresh_all(db, str(root)) == [fw.DIRECT_ASSET]
    assert catalog.query(db, f"select count(*), max(version) from {fw.DIRECT_ASSET}")[1] == [(100, 1)]

    fw.stage_direct(str(root), rows=400, version=2)
    assert _versions(final) == (400, {2})


# ----------------------------------------------------------------------------- 2. VQ-VAE killed


def _state_step(path: Path) -> int | None:
    try:
        return int(torch.load(path, map_location="cpu", weights_only=True)["step"])
    except (FileNotFoundError, RuntimeError, EOFError):
        return None


def test_vqvae_sigkill_after_checkpoint_resumes_to_same_weights(tmp_path, workers):
    from training.vqvae.checkpoint import load_vqvae

    killed = tmp_path / "killed"
    go = tmp_path / "go"
    proc = workers.start("vqvae", killed, 0.03, go)
    reference = fw.train_vqvae_run(str(tmp_path / "reference"))  # while the worker imports torch
    total = reference.step
    assert total == fw.VQ_EPOCHS * fw.VQ_MAPS // 8 == 12
    go.write_text("go")

    # Kill as soon as a checkpoint past the first epoch is on disk: wherever the worker then is
    # (a forward pass, the next checkpoint's write), nothing gets to clean up.
    state = killed / "train_state.pt"
    deadline = time.monotonic() + 120
    while (_state_step(state) or 0) < 5:
        assert proc.poll() is None, f"worker ended before the kill:\n{workers.tail(proc)}"
        assert time.monotonic() < deadline, workers.tail(proc)
        time.sleep(0.02)
    workers.kill(proc)
    saved_step = _state_step(state)
    assert saved_step is not None and 5 <= saved_step < total, saved_step
    assert not (killed / "training_summary.json").exists()

    resumed = fw.train_vqvae_run(str(killed))
    assert resumed.resumed_from_step == saved_step
    assert resumed.step == total and resumed.epoch == reference.epoch == fw.VQ_EPOCHS
    assert [r["step"] for r in resumed.loss_history] == list(range(1, total + 1))
    for got, want in zip(resumed.loss_history, reference.loss_history):
        assert got == pytest.approx(want, abs=1e-6)
    assert resumed.epoch_metrics == reference.epoch_metrics
    a, b = load_vqvae(killed), load_vqvae(tmp_path / "reference")
    for name, value in a.state_dict().items():
        assert torch.allclose(value.float(), b.state_dict()[name].float(), atol=1e-5), name


# ----------------------------------------------------------------------------- 3. LoRA fine-tune killed


@pytest.fixture(scope="module")
def llava_kills(tmp_path_factory):
    """One uninterrupted fine-tune and two killed ones: after checkpoint-3 (at step 5), and
    inside the save of checkpoint-6 (adapter written, optimizer and trainer state not yet).
    The workers load while the reference trains, so the three overlap."""
    from training.llava.synthetic import make_synthetic_records

    root = tmp_path_factory.mktemp("llava_kill")
    records = make_synthetic_records(fw.LLAVA_RECORDS, root / "images", seed=2)
    (root / "records.json").write_text(json.dumps(records))
    w = Workers(root)
    try:
        after = w.start("llava", root / "after", root / "images", root / "records.json", root / "sig-after", 5)
        in_save = w.start("llava-in-save", root / "in_save", root / "images", root / "records.json", root / "sig-save", 6)
        reference = fw.run_llava(str(root / "reference"), str(root / "images"), records)
        for proc, sig in ((after, root / "sig-after"), (in_save, root / "sig-save")):
            w.wait_for(proc, sig)
            w.kill(proc)
    finally:
        w.close()
    return SimpleNamespace(root=root, records=records, reference=reference)


def _adapter_max_abs_diff(a_dir: Path, b_dir: Path) -> float:
    a, b = load_file(a_dir / "adapter_model.safetensors"), load_file(b_dir / "adapter_model.safetensors")
    assert a.keys() == b.keys() and a
    return max(float((a[k].float() - b[k].float()).abs().max()) for k in a)


def test_lora_sigkill_after_checkpoint_resumes_to_same_adapter(llava_kills):
    k = llava_kills
    out = k.root / "after"
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["checkpoint-3"]
    assert not (out / "adapter").exists()
    messages, events = [], []
    resumed = fw.run_llava(str(out), str(k.root / "images"), k.records, metrics_callback=events.append, log=messages.append)
    assert any("resuming from" in m and m.endswith("checkpoint-3") for m in messages), messages
    assert resumed.steps == k.reference.steps == fw.LLAVA_STEPS
    assert [e["step"] for e in events] == list(range(4, fw.LLAVA_STEPS + 1))
    ref = dict(k.reference.loss_history)
    for step, loss in resumed.loss_history:
        assert loss == pytest.approx(ref[step], rel=1e-5, abs=1e-6), step
    diff = _adapter_max_abs_diff(resumed.adapter_dir, k.reference.adapter_dir)
    print(f"\nLoRA adapter after SIGKILL + resume vs uninterrupted: max |diff| = {diff:.3g}")
    assert diff <= 1e-5


def test_lora_sigkill_during_checkpoint_save_resumes_from_last_complete_one(llava_kills):
    k = llava_kills
    out = k.root / "in_save"
    checkpoints = out / "checkpoints"
    assert sorted(p.name for p in checkpoints.iterdir()) == ["checkpoint-3", "checkpoint-6"]
    assert (checkpoints / "checkpoint-6" / "adapter_model.safetensors").is_file()
    assert not (checkpoints / "checkpoint-6" / "trainer_state.json").exists()  # killed mid-save
    resumed = fw.run_llava(str(out), str(k.root / "images"), k.records)
    assert resumed.steps == fw.LLAVA_STEPS
    assert _adapter_max_abs_diff(resumed.adapter_dir, k.reference.adapter_dir) <= 1e-5


# ----------------------------------------------------------------------------- 4. a failing shard


workdir = e2e.workdir  # a private working folder and Dagster home, as in the e2e tests


def test_failing_shard_fails_only_its_partition_and_rerun_runs_only_it(workdir, monkeypatch):
    """The worker for lvis|1 cannot load the depth teacher (as when its GPU is broken): a whole-
    partition failure, unlike one bad image, which becomes a reject row."""
    settings = e2e.small_settings(workdir)
    defs = build_definitions(settings)
    instance = dg.DagsterInstance.ephemeral()
    working_build = DepthTeacherResource.build

    def build_broken_on_lvis_1(self):
        keys = dg.AssetExecutionContext.get().partition_key.keys_by_dimension
        if keys == {"dataset": "lvis", "shard": "1"}:
            raise RuntimeError("CUDA error: no device available to load the depth teacher (worker of lvis|1)")
        return working_build(self)

    monkeypatch.setattr(DepthTeacherResource, "build", build_broken_on_lvis_1)
    selection = "group:sources or key:pseudo_depth"
    report = materialize_graph(defs, instance, selection, log=lambda _m: None)

    depth = {s.partition: s for s in report.steps if s.asset.startswith("pseudo_depth[")}
    all_parts = {f"{d}|{s}" for d in ("ade20k", "lvis", "refcoco") for s in ("0", "1")}
    assert set(depth) == all_parts
    assert {p for p, s in depth.items() if s.status == "failed"} == {"lvis|1"}
    assert all(s.status == "materialized" for p, s in depth.items() if p != "lvis|1")
    assert "no device available to load the depth teacher" in depth["lvis|1"].error
    assert [s.asset for s in report.failed] == ["pseudo_depth[lvis|1]"]

    storage = workdir / "storage"
    written = sorted(p.relative_to(storage / "pseudo_depth").as_posix() for p in (storage / "pseudo_depth").rglob("[!.]*.parquet"))
    assert written == ["ade20k/0.parquet", "ade20k/1.parquet", "lvis/0.parquet", "refcoco/0.parquet", "refcoco/1.parquet"]
    assert not (storage / "pseudo_depth_rejects" / "lvis" / "1.parquet").exists()
    assert not any((storage / ".staging").rglob("*.parquet"))  # nothing staged and left behind
    assert instance.get_materialized_partitions(dg.AssetKey("pseudo_depth")) == all_parts - {"lvis|1"}
    mtimes = {f: (storage / "pseudo_depth" / f).stat().st_mtime_ns for f in written}

    monkeypatch.setattr(DepthTeacherResource, "build", working_build)  # the fault is fixed
    again = materialize_graph(defs, instance, selection, log=lambda _m: None)
    assert not again.failed
    status = {s.asset: s.status for s in again.steps}
    assert {a: st for a, st in status.items() if st == "materialized"} == {"pseudo_depth[lvis|1]": "materialized"}
    assert all(st == "skipped (fresh)" for a, st in status.items() if a != "pseudo_depth[lvis|1]")
    assert len(status) == 5 + 6  # five source assets, six partitions
    assert instance.get_materialized_partitions(dg.AssetKey("pseudo_depth")) == all_parts
    assert {f: (storage / "pseudo_depth" / f).stat().st_mtime_ns for f in written} == mtimes  # untouched
    depth_rows = pq.read_table(str(storage / "pseudo_depth" / "lvis" / "1.parquet")).num_rows
    rejects = pq.read_table(str(storage / "pseudo_depth_rejects" / "lvis" / "1.parquet")).num_rows
    total = sum(pq.read_metadata(str(p)).num_rows for p in (storage / "pseudo_depth").rglob("[!.]*.parquet"))
    images = sum(pq.read_metadata(str(storage / f"{d}_images.parquet")).num_rows for d in ("ade20k", "lvis", "refcoco"))
    assert depth_rows > 0 and rejects == 0 and total == images


# ----------------------------------------------------------------------------- 5. disk full, no permission

SCHEMA = fw.table_schema()


def _table(rows: int, version: int) -> pa.Table:
    return pa.Table.from_pylist(list(fw.table_rows(rows, version)), schema=SCHEMA)


def _fill_disk_at(monkeypatch, directory: Path) -> Path:
    """The next staging file in ``directory`` is /dev/full: every write to it fails with a real ENOSPC."""
    monkeypatch.setattr(tables, "uuid", SimpleNamespace(uuid4=lambda: SimpleNamespace(hex="diskfull")))
    staging = directory / ".staging-diskfull.parquet"
    directory.mkdir(parents=True, exist_ok=True)
    os.symlink("/dev/full", staging)
    return staging


needs_dev_full = pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full (Linux)")


@needs_dev_full
@pytest.mark.parametrize("rows", [3, 2000], ids=["fails-at-close", "fails-mid-write"])
def test_disk_full_names_the_file_keeps_previous_version_and_leaves_nothing(tmp_path, monkeypatch, rows):
    folder = tmp_path / "asset"
    final = UPath(folder / "a.parquet")
    write_table_atomic(final, _table(50, 1))
    before = pq.read_table(str(final))
    staging = _fill_disk_at(monkeypatch, folder)

    with pytest.raises(OSError) as info:
        write_table_atomic(final, _table(rows, 2))
    assert info.value.errno == errno.ENOSPC
    assert str(info.value) == f"[Errno 28] No space left on device: '{staging}'"
    assert not os.path.lexists(staging)
    assert sorted(p.name for p in folder.iterdir()) == ["a.parquet"]
    assert pq.read_table(str(final)).equals(before)


@needs_dev_full
def test_disk_full_during_materialization_fails_the_step_with_the_path(tmp_path, monkeypatch):
    root = tmp_path / "storage"
    assert fw.materialize_table(str(root), rows=100, version=1).success
    final = root / fw.TABLE_ASSET / "a.parquet"
    before = pq.read_table(str(final))
    staging = _fill_disk_at(monkeypatch, root / ".staging" / fw.TABLE_ASSET)

    result = fw.materialize_table(str(root), rows=400, version=2)
    assert not result.success
    error = _first_error(result)  # what `ptok materialize` prints
    assert "No space left on device" in error and str(staging) in error, error
    assert list((root / ".staging" / fw.TABLE_ASSET).iterdir()) == []
    assert pq.read_table(str(final)).equals(before)
    assert catalog.query(root / "catalog.duckdb", f"select count(*), max(version) from {fw.TABLE_ASSET}")[1] == [(100, 1)]


def _without_dac_override():
    """preexec_fn: drop the capabilities that let root ignore file modes (the tests run as root)."""
    libc = ctypes.CDLL(None, use_errno=True)
    for cap in (1, 2):  # CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH
        if libc.prctl(24, cap, 0, 0, 0) != 0:  # PR_CAPBSET_DROP: gone for the exec'd worker
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")


def _write_without_permission(workers, final: Path, staging_dir: Path | str, rows: int) -> dict:
    proc = workers.start("write-table", final, staging_dir, rows, preexec_fn=_without_dac_override if os.geteuid() == 0 else None)
    code = proc.wait(timeout=120)
    output = workers.tail(proc)
    if code != 0 and "prctl(PR_CAPBSET_DROP)" in output:
        pytest.skip("running as root without CAP_SETPCAP: cannot make a directory read-only for the worker")
    assert code == 0, output
    return json.loads(output.strip().splitlines()[-1])


@pytest.mark.parametrize("where", ["table-folder", "final-folder-only"])
def test_read_only_folder_names_the_path_keeps_previous_version_and_leaves_nothing(tmp_path, workers, where):
    """A real EACCES from the kernel: the folder is mode 0555 and the worker may not override it.
    table-folder: the staging file cannot even be created (write_table_atomic's layout).
    final-folder-only: staging works (emit_table's .staging folder), the commit's rename is refused."""
    root = tmp_path / "storage"
    folder = root / "asset"
    final = folder / "a.parquet"
    write_table_atomic(UPath(final), _table(50, 1))
    before = pq.read_table(str(final))
    staging_dir = root / ".staging" / "asset"
    staging_dir.mkdir(parents=True)
    folder.chmod(0o555)
    try:
        error = _write_without_permission(workers, final, "-" if where == "table-folder" else staging_dir, 500)
    finally:
        folder.chmod(0o755)
    assert error.get("type") == "PermissionError" and error["errno"] == errno.EACCES, error
    assert "Permission denied" in error["message"] and str(folder) in error["message"], error
    if where == "final-folder-only":
        assert str(final) in error["message"]  # the rename names both ends
    assert sorted(p.name for p in folder.iterdir()) == ["a.parquet"]
    assert list(staging_dir.iterdir()) == []
    assert pq.read_table(str(final)).equals(before)
