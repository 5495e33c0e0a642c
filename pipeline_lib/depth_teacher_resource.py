"""Which depth teacher labels the images: the ``depth`` settings section as a resource."""

from __future__ import annotations

from functools import partial
from typing import Any

from pipeline_lib.settings import DepthSettings, Settings
from pipeline_lib.settings_resource import SettingsResource, section_resource


class _DepthTeacher(SettingsResource):
    """Which depth teacher labels the images (see perception_tokens.depth.build_teacher).
    Fields: the ``depth`` section (its preset already applied by DepthSettings)."""

    demo_root: str | None = None  # computed: ground_truth reads the demo scenes' depth from here

    @classmethod
    def derived_config(cls, settings: Settings) -> dict[str, Any]:
        return {"demo_root": str(settings.demo_root) if settings.demo.enabled else None}

    def build(self):
        return build_depth_teacher(self.model_dump())

    def factory(self):
        """A picklable zero-argument teacher builder (for Ray workers: the resource itself
        holds a logger and cannot be pickled)."""
        return partial(build_depth_teacher, self.model_dump())


DepthTeacherResource = section_resource("DepthTeacherResource", _DepthTeacher, {"depth": (DepthSettings, "", None)})


def build_depth_teacher(config: dict):
    """The teacher a ``DepthTeacherResource`` with this config (its model_dump) describes."""
    from perception_tokens.depth import build_teacher

    if config["teacher"] == "ground_truth":
        if not config.get("demo_root"):
            raise ValueError("depth.teacher ground_truth needs the demo data (demo.enabled: true)")
        from perception_tokens.demo import load_ground_truth_depth

        fn = partial(load_ground_truth_depth, config["demo_root"])
        return build_teacher("ground_truth", depth_fn=fn, name="demo_scenes")
    common = {k: config[k] for k in ("input_size", "device", "resize", "autocast")}
    if config["teacher"] == "depth_anything_hub":
        opts = {**{k: config[k] for k in ("checkpoint", "version", "encoder", "implementation", "repo_dir", "hub_source")},
                **common}
        if config.get("hub_repo"):
            opts["hub_repo"] = config["hub_repo"]
        if config["hub_source"] == "github":
            opts["trust_repo"] = True
        return build_teacher("depth_anything_hub", **{k: v for k, v in opts.items() if v is not None})
    return build_teacher("depth_anything_hf", model=config["model"], **common)
