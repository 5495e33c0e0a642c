"""The generated demo world: datasets and benchmark sets written once, under a file lock
(parallel steps may ask for them at the same time), and again when the settings they were
made with (recorded in the manifest / marker) are no longer the config's."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from pipeline_lib.file_lock import exclusive as file_lock

# bumped when the demo sets' layout changes, so an older demo folder is rewritten
DEMO_BENCHMARKS_LAYOUT_VERSION = "zoom-layout-1"  # zoom-layout-1: the zoom set (VPT) joined


def _recorded_settings(manifest: Path) -> dict | None:
    """The settings a demo manifest records; None when there is no (readable) manifest, ``{}``
    for one written before manifests recorded them."""
    try:
        return json.loads(manifest.read_text()).get("settings", {})
    except (OSError, ValueError, AttributeError):
        return None


def _changes(recorded: dict, wanted: dict) -> str:
    if not recorded:
        return "the demo folder does not record the settings it was made with"
    return ", ".join(f"{k} {recorded.get(k)} -> {v}" for k, v in wanted.items() if recorded.get(k) != v)


def ensure_demo_datasets(root: Path, *, n_ade20k: int, n_lvis: int, n_refcoco: int, seed: int,
                         width: int, height: int, log=None) -> None:
    """ADE20K, LVIS and RefCOCO layouts under ``root``, generated unless already there with these
    settings: a demo folder made with other ``demo.*`` settings is regenerated, and the log says so."""
    from perception_tokens.demo import write_demo_datasets
    from perception_tokens.demo.writers import demo_settings

    wanted = demo_settings(n_ade20k=n_ade20k, n_lvis=n_lvis, n_refcoco=n_refcoco, seed=seed, width=width, height=height)
    marker = root / "demo_manifest.json"  # written last by the generator
    if _recorded_settings(marker) == wanted:
        return
    with file_lock(root.parent / f".{root.name}.lock"):
        recorded = _recorded_settings(marker)
        if recorded == wanted:
            return
        if log and recorded is not None:
            log.warning(f"demo settings changed ({_changes(recorded, wanted)}): regenerating the demo datasets under {root}")
        elif log:
            log.info(f"generating demo datasets under {root}")
        write_demo_datasets(root, n_ade20k=n_ade20k, n_lvis=n_lvis, n_refcoco=n_refcoco, seed=seed,
                            image_size=(width, height), show_progress=True)


def _benchmarks_marker_text(scenes: int, seed: int) -> str:
    return f"{DEMO_BENCHMARKS_LAYOUT_VERSION}\nscenes={int(scenes)} seed={int(seed)}\n"


def _read_marker(marker: Path) -> str | None:
    return marker.read_text() if marker.is_file() else None


def ensure_demo_benchmarks(root: Path, *, scenes: int, seed: int, log=None) -> None:
    """Small benchmark sets in the published formats under ``root`` (depth maps in ``root/depth``),
    generated unless present in the current layout with these settings (``evaluation.demo_scenes``
    and ``demo_seed`` are recorded in the marker; a change regenerates them, and the log says so)."""
    marker = root / ".complete"
    wanted = _benchmarks_marker_text(scenes, seed)
    if _read_marker(marker) == wanted:
        return
    with file_lock(root.parent / f".{root.name}.lock"):
        found = _read_marker(marker)
        if found == wanted:
            return
        import numpy as np

        from evaluation.benchmarks.demo import write_demo_benchmarks
        from perception_tokens.demo.scenes import generate_scene

        if log and found is not None:
            log.warning(f"demo benchmark settings or layout changed ({' '.join(found.split())} -> {' '.join(wanted.split())}): "
                        f"regenerating the demo benchmarks under {root}")
        elif log:
            log.info(f"generating demo benchmarks under {root}")
        if found is not None:
            shutil.rmtree(root)  # files of the old sets (more scenes, other ids) must not linger
        rng = np.random.default_rng(seed)
        generated = [generate_scene(rng, 320, 240) for _ in range(scenes)]
        write_demo_benchmarks(root, generated, seed=seed, depth_dir=root / "depth")
        marker.write_text(wanted)
