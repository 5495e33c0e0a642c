"""Dataset and benchmark roots (``datasets``, ``evaluation`` and ``demo`` settings); in demo
mode the generated world stands in for any root left unset."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from evaluation.benchmarks import registry as benchmark_registry
from pipeline_lib.demo_world import ensure_demo_benchmarks, ensure_demo_datasets
from pipeline_lib.settings import DatasetSettings, DemoSettings, EvaluationSettings, Settings
from pipeline_lib.settings_resource import SettingsResource, section_resource

DATASET_NAMES = ("ade20k", "lvis", "coco", "refcoco")
# RefCOCO+ / RefCOCOg roots: (root setting name, refer dataset); resolved only when the dataset is in
# datasets.refer_datasets or its root is set, so a config without them needs neither
OPTIONAL_REFER_ROOTS = (("refcoco_plus", "refcoco+"), ("refcocog", "refcocog"))


class _Datasets(SettingsResource):
    """Dataset roots; in demo mode the generated scenes stand in for any root left unset.
    Fields: the ``datasets`` section, and the ``demo`` section as ``demo_*``."""

    @classmethod
    def derived_config(cls, settings: Settings) -> dict[str, Any]:
        roots = {f"{name}_root": str(settings.dataset_root(name)) for name in DATASET_NAMES}
        for name, dataset in OPTIONAL_REFER_ROOTS:
            wanted = dataset in settings.datasets.refer_datasets or getattr(settings.datasets, f"{name}_root")
            roots[f"{name}_root"] = str(settings.dataset_root(name)) if wanted else None
        return {**roots, "demo_root": str(settings.demo_root)}

    def ensure_demo_data(self, log=None) -> None:
        """Generate the demo datasets once (file-locked: parallel steps may ask at the same time)."""
        if self.demo_enabled:
            ensure_demo_datasets(Path(self.demo_root), n_ade20k=self.demo_n_ade20k, n_lvis=self.demo_n_lvis,
                                 n_refcoco=self.demo_n_refcoco, seed=self.demo_seed, width=self.demo_width,
                                 height=self.demo_height, log=log)


DatasetsResource = section_resource("DatasetsResource", _Datasets, {
    "datasets": (DatasetSettings, "", None),
    "demo": (DemoSettings, "demo_", None),
})


class _Benchmarks(SettingsResource):
    """Benchmark roots; in demo mode small sets in the published formats stand in for unset ones.
    Fields: ``evaluation.roots/images/demo_scenes/demo_seed``, ``demo.enabled`` as ``demo_enabled``."""

    demo_root: str = ".ptok/demo_data/benchmarks"  # computed: <demo.root>/benchmarks

    @classmethod
    def derived_config(cls, settings: Settings) -> dict[str, Any]:
        evaluation = settings.evaluation
        return {
            "roots": {k: str(settings.resolve(v)) for k, v in evaluation.roots.items()},
            "images": {k: str(settings.resolve(v)) for k, v in evaluation.images.items()},
            "demo_root": str(settings.demo_root / "benchmarks"),
        }

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
        ensure_demo_benchmarks(Path(self.demo_root), scenes=self.demo_scenes, seed=self.demo_seed, log=log)


BenchmarksResource = section_resource("BenchmarksResource", _Benchmarks, {
    "evaluation": (EvaluationSettings, "", ("roots", "images", "demo_scenes", "demo_seed")),
    "demo": (DemoSettings, "demo_", ("enabled",)),
})
