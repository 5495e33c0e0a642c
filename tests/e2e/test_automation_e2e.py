"""Declarative automation keeps a small demo world current (issue #25, part 4).

A world is materialized up to the curriculum; then an image is added to the ADE20K root and the
automation conditions are evaluated tick by tick with ``dg.evaluate_automation_conditions``,
moving time with ``evaluation_time`` and materializing what each tick requests, as the sensor's
runs would. Every tick must request exactly what the new image reaches: the ADE20K root's
observation, the ADE20K tables, the one ``pseudo_depth`` shard holding the image, that shard's
depth tokens, the marked points, the curriculum; the fine-tune only at its nightly tick, once.
"""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import automation_ticks
import cv2
import dagster as dg
import pyarrow.parquet as pq

from conftest import SMALL
from perception_tokens.buckets import hash_bucket
from perception_tokens.demo.manifest import ground_truth_depth_path
from pipeline_lib.settings import settings_from_dict
from pipelines.definitions import build_definitions
from pipelines.runner import materialize_graph, observe_sources

UTC = dt.timezone.utc
NUM_SHARDS = 2
TABLES = {"ade20k_images", "ade20k_images_rejects"}
# every hour, on the hour: every observed dataset root (RefCOCO+ and RefCOCOg roots are observed too)
OBSERVE = {"ade20k_files", "lvis_files", "coco_files", "refcoco_files", "refcoco_plus_files", "refcocog_files"}


def _settings(workdir: Path):
    return settings_from_dict({
        "storage": {"root": str(workdir / "storage")},
        "demo": {"enabled": True, "root": str(workdir / "demo"), **SMALL},
        "datasets": {"num_shards": NUM_SHARDS},
        "vqvae": {"epochs": 1, "min_closest_point_agreement": 0.0, "min_codebook_usage": 0.0},
        "curriculum": {"epochs": 2, "percents": [1.0, 0.0], "epoch_size": 12, "marked_fraction": 1.0},
        "automation": {"observe_cron": "0 * * * *", "nightly_cron": "0 3 * * *"},
    })


def _add_ade20k_image(demo_root: Path) -> str:
    """A new training image (another image's pixels mirrored) with its ground-truth depth."""
    source = sorted((demo_root / "ADEChallengeData2016" / "images" / "training").glob("*.jpg"))[0]
    image_id = "ADE_train_00000999"
    cv2.imwrite(str(source.with_name(f"{image_id}.jpg")), cv2.flip(cv2.imread(str(source)), 1))
    depth = ground_truth_depth_path(demo_root, "ade20k", source.stem)
    shutil.copy(depth, ground_truth_depth_path(demo_root, "ade20k", image_id))
    return image_id


class Ticks(automation_ticks.Ticks):
    """Ticks on the project's definitions; ``run`` materializes what a tick requested."""

    def run(self, *keys: str, partition: str | None = None) -> None:
        result = dg.materialize([*self.defs.assets, *self.defs.asset_checks], selection=dg.AssetSelection.assets(*keys),
                                instance=self.instance, resources=self.defs.resources, partition_key=partition,
                                raise_on_error=False)
        assert result.success, keys


def test_an_added_image_reruns_its_shard_and_descendants_and_the_finetune_waits_for_night(workdir):
    settings = _settings(workdir)
    defs = build_definitions(settings)
    instance = dg.DagsterInstance.ephemeral()
    world = materialize_graph(defs, instance, dg.AssetSelection.assets("curriculum").upstream(), log=lambda m: None)
    assert not world.failed, world.failed
    ticks = Ticks(defs, instance)
    day = dt.datetime(2026, 12, 7, 10, 30, tzinfo=UTC)

    assert ticks.at(day) == set()  # first evaluation: the baseline, nothing to do
    image_id = _add_ade20k_image(settings.demo_root)
    shard = hash_bucket(image_id, NUM_SHARDS)

    # 11:00 passed: every dataset root is observed; nothing else moves yet
    assert ticks.at(day + dt.timedelta(hours=1)) == OBSERVE
    observe_sources(defs, instance, set(defs.resolve_asset_graph().materializable_asset_keys), log=lambda m: None)

    # only the ADE20K root's version moved: only its tables are re-read
    assert ticks.at(day + dt.timedelta(hours=1, minutes=1)) == TABLES
    ticks.run(*TABLES)
    images = pq.read_table(workdir / "storage" / "ade20k_images.parquet", columns=["image_id"])["image_id"].to_pylist()
    assert image_id in images

    # the one shard holding the new image; marked_points and curriculum wait for it
    part = f"ade20k|{shard}"
    assert ticks.at(day + dt.timedelta(hours=1, minutes=2)) == {f"pseudo_depth[{part}]", f"pseudo_depth_rejects[{part}]"}
    ticks.run("pseudo_depth", "pseudo_depth_rejects", partition=part)

    assert ticks.at(day + dt.timedelta(hours=1, minutes=3)) == {f"depth_tokens[{part}]", "marked_points", "marked_points_rejects"}
    ticks.run("depth_tokens", partition=part)
    ticks.run("marked_points", "marked_points_rejects")

    assert ticks.at(day + dt.timedelta(hours=1, minutes=4)) == {"curriculum"}
    ticks.run("curriculum")

    # the fine-tune's input changed at 11:05, but it waits for the night's tick, then runs once
    assert ticks.at(day + dt.timedelta(hours=1, minutes=5)) == set()
    assert ticks.at(day + dt.timedelta(hours=16, minutes=29)) == OBSERVE  # 02:59
    assert ticks.at(day + dt.timedelta(hours=16, minutes=31)) == OBSERVE | {"lora_adapter"}  # 03:01
    assert ticks.at(day + dt.timedelta(hours=16, minutes=40)) == set()  # requested already: not again
