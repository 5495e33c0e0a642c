"""Small configurable resources built from the YAML settings; visible and editable in the UI."""

from __future__ import annotations

import fcntl
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import dagster as dg
from upath import UPath

from evaluation.benchmarks import registry as benchmark_registry


class StorageResource(dg.ConfigurableResource):
    """Where tables and model files live. ``root`` is a local path or an fsspec URL."""

    root: str
    catalog_path: str | None = None
    row_group_rows: int = 256

    def asset_dir(self, asset_name: str) -> UPath:
        return UPath(self.root) / asset_name

    def table_path(self, asset_name: str) -> UPath:
        """The committed table of an unpartitioned asset (the IO manager's path for it)."""
        return UPath(self.root) / f"{asset_name}.parquet"

    def staging_dir(self, asset_name: str) -> UPath:
        """Temporary files of an asset; same filesystem as the tables, so commit is a rename.

        Files left by a killed writer are invisible to readers; ones older than a day are
        removed here (younger ones may belong to a partition being written right now).
        """
        path = UPath(self.root) / ".staging" / asset_name
        _remove_stale_staging(path, max_age_s=24 * 3600)
        return path

    def fingerprint_state(self, name: str) -> Path:
        """Local file keeping a dataset root's per-file sizes, mtimes and hashes between observations."""
        base = Path(self.root) if "://" not in self.root else Path(".ptok")
        return base / ".fingerprints" / f"{name}.json"

    def local_files_dir(self, asset_name: str, *parts: str) -> Path:
        """A local folder for model files (training writes with ordinary file I/O). Beside the
        tables when storage is local; under ``.ptok/files`` when the tables are on object storage."""
        base = Path(self.root) if "://" not in self.root else Path(".ptok") / "files"
        path = base / asset_name / "files"
        for part in parts:
            path = path / part
        path.mkdir(parents=True, exist_ok=True)
        return path

    def files_dir(self, asset_name: str, *parts: str) -> UPath:
        """Folder for large files an asset keeps beside its table (model weights, exports)."""
        path = UPath(self.root) / asset_name / "files"
        for part in parts:
            path = path / part
        return path


class DatasetsResource(dg.ConfigurableResource):
    """Dataset roots; in demo mode the generated scenes stand in for any root left unset."""

    ade20k_root: str
    lvis_root: str
    coco_root: str
    refcoco_root: str
    ade20k_splits: list[str] = ["training", "validation"]
    lvis_splits: list[str] = ["train", "val"]
    max_image_pixels: int = 50_000_000
    max_reject_fraction: float = 0.05
    num_shards: int = 2
    demo_enabled: bool = True
    demo_root: str = ".ptok/demo_data"
    demo_seed: int = 0
    demo_n_ade20k: int = 60
    demo_n_lvis: int = 60
    demo_n_refcoco: int = 40
    demo_width: int = 320
    demo_height: int = 240

    def ensure_demo_data(self, log=None) -> None:
        """Generate the demo datasets once (file-locked: parallel steps may ask at the same time)."""
        if not self.demo_enabled:
            return
        from perception_tokens.demo import write_demo_datasets

        root = Path(self.demo_root)
        marker = root / "demo_manifest.json"  # written last by the generator
        if marker.exists():
            return
        with _file_lock(root.parent / f".{root.name}.lock"):
            if marker.exists():
                return
            if log:
                log.info(f"generating demo datasets under {root}")
            write_demo_datasets(
                root,
                n_ade20k=self.demo_n_ade20k,
                n_lvis=self.demo_n_lvis,
                n_refcoco=self.demo_n_refcoco,
                seed=self.demo_seed,
                image_size=(self.demo_width, self.demo_height),
                show_progress=True,
            )


def _remove_stale_staging(path: UPath, max_age_s: float, now: float | None = None) -> None:
    """Delete ``.staging-*.parquet`` files older than ``max_age_s`` that this user wrote.

    Only regular files owned by this user are judged, by ``lstat``: a symlink (or a device,
    a folder) is never followed, so its target's age cannot make it look stale and nothing
    outside the staging folder is ever touched.
    """
    import stat
    import time

    if path.protocol not in ("", "file", "local") or not path.exists():
        return
    now = time.time() if now is None else now
    uid = os.getuid()
    for f in Path(path.path).glob(".staging-*.parquet"):
        try:
            st = f.lstat()
            if stat.S_ISREG(st.st_mode) and st.st_uid == uid and now - st.st_mtime > max_age_s:
                f.unlink()
        except OSError:
            pass  # gone already, or not ours to delete: a stale file only costs disk space


@contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_CREAT | os.O_RDWR, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


class DepthTeacherResource(dg.ConfigurableResource):
    """Which depth teacher labels the images (see perception_tokens.depth.build_teacher)."""

    preset: str = "custom"  # already applied to the fields below by DepthSettings
    teacher: str = "ground_truth"
    checkpoint: str | None = None
    version: int = 2
    encoder: str = "vits"
    implementation: str = "transformers"
    resize: str = "square"
    repo_dir: str | None = None
    hub_repo: str | None = None
    hub_source: str = "local"
    model: str | None = None
    input_size: int = 518
    batch_size: int = 8
    device: str = "auto"
    autocast: bool = True
    demo_root: str | None = None  # ground_truth reads the demo scenes' depth from here

    def build(self):
        return build_depth_teacher(self.model_dump())

    def factory(self):
        """A picklable zero-argument teacher builder (for Ray workers: the resource itself
        holds a logger and cannot be pickled)."""
        from functools import partial

        return partial(build_depth_teacher, self.model_dump())


def build_depth_teacher(c: dict):
    """The teacher a ``DepthTeacherResource`` with config ``c`` (its model_dump) describes."""
    from perception_tokens.depth import build_teacher

    if c["teacher"] == "ground_truth":
        if not c.get("demo_root"):
            raise ValueError("depth.teacher ground_truth needs the demo data (demo.enabled: true)")
        from functools import partial

        from perception_tokens.demo import load_ground_truth_depth

        fn = partial(load_ground_truth_depth, c["demo_root"])
        return build_teacher("ground_truth", depth_fn=fn, name="demo_scenes")
    common = {"input_size": c["input_size"], "device": c["device"], "resize": c["resize"], "autocast": c["autocast"]}
    if c["teacher"] == "depth_anything_hub":
        opts = {"checkpoint": c["checkpoint"], "version": c["version"], "encoder": c["encoder"],
                "implementation": c["implementation"], "repo_dir": c["repo_dir"], "hub_source": c["hub_source"], **common}
        if c.get("hub_repo"):
            opts["hub_repo"] = c["hub_repo"]
        if c["hub_source"] == "github":
            opts["trust_repo"] = True
        return build_teacher("depth_anything_hub", **{k: v for k, v in opts.items() if v is not None})
    return build_teacher("depth_anything_hf", model=c["model"], **common)


# bumped when the demo sets' layout changes, so an older demo folder is rewritten
DEMO_BENCHMARKS_LAYOUT_VERSION = "released-counting-layout-1"


def _demo_current(marker: Path) -> bool:
    return marker.is_file() and marker.read_text().strip() == DEMO_BENCHMARKS_LAYOUT_VERSION


class BenchmarksResource(dg.ConfigurableResource):
    """Benchmark roots; in demo mode small sets in the published formats stand in for unset ones."""

    roots: dict[str, str] = {}
    images: dict[str, str] = {}
    demo_enabled: bool = True
    demo_root: str = ".ptok/demo_data/benchmarks"
    demo_scenes: int = 24
    demo_seed: int = 1000

    def root(self, name: str, log=None) -> Path:
        if name in self.roots:
            return Path(self.roots[name])
        if not self.demo_enabled:
            raise ValueError(f"evaluation.roots.{name} is not set and demo.enabled is false")
        demo_dir = benchmark_registry.get(name).demo_dir
        if demo_dir is None:
            raise ValueError(f"evaluation.roots.{name} is not set and the demo has no {name} set")
        self.ensure_demo(log)
        return Path(self.demo_root) / demo_dir

    def images_dir(self, name: str) -> Path | None:
        """The image folder of a counting set: configured, the demo's, or None (the reader's default)."""
        if name in self.images:
            return Path(self.images[name])
        demo_images = benchmark_registry.get(name).demo_images_dir
        if name not in self.roots and self.demo_enabled and demo_images is not None:
            return Path(self.demo_root) / demo_images
        return None

    @property
    def demo_depth_dir(self) -> Path:
        return Path(self.demo_root) / "depth"

    def ensure_demo(self, log=None) -> None:
        root = Path(self.demo_root)
        marker = root / ".complete"
        if _demo_current(marker):
            return
        with _file_lock(root.parent / f".{root.name}.lock"):
            if _demo_current(marker):
                return
            import numpy as np

            from evaluation.benchmarks.demo import write_demo_benchmarks
            from perception_tokens.demo.scenes import generate_scene

            if log:
                log.info(f"generating demo benchmarks under {root}")
            rng = np.random.default_rng(self.demo_seed)
            scenes = [generate_scene(rng, 320, 240) for _ in range(self.demo_scenes)]
            write_demo_benchmarks(root, scenes, seed=self.demo_seed, depth_dir=self.demo_depth_dir)
            marker.write_text(DEMO_BENCHMARKS_LAYOUT_VERSION + "\n")
