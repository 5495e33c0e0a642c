"""Checks on the source tables."""

from __future__ import annotations

import dagster as dg

from assets.checks import boxes_inside_check, reject_rate_check, unique_ids_check


def build_source_checks(max_reject_fraction: float) -> list[dg.AssetChecksDefinition]:
    checks = [
        unique_ids_check("ade20k_images", ["image_id"]),
        unique_ids_check("lvis_images", ["image_id"]),
        unique_ids_check("lvis_instances", ["annotation_id"]),
        unique_ids_check("refcoco_images", ["image_id"]),
        unique_ids_check("refcoco_refs", ["dataset", "sentence_id"]),  # sentence ids restart in each dataset
        boxes_inside_check("lvis_instances"),
        boxes_inside_check("refcoco_refs"),
    ]
    for name in ("ade20k_images", "lvis_images", "lvis_instances", "refcoco_images", "refcoco_refs"):
        checks.append(reject_rate_check(name, max_fraction=max_reject_fraction))
    return checks
