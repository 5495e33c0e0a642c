"""Arrow schemas of the pipeline's tables: the contract between stages.

Every row keeps the ids that lead back to its source (dataset, image id, annotation id).
"""

from __future__ import annotations

import pyarrow as pa

REJECT_SCHEMA = pa.schema(
    [
        ("dataset", pa.string()),
        ("stage", pa.string()),
        ("file", pa.string()),
        ("record_id", pa.string()),
        ("reason", pa.string()),
    ]
)

_IMAGE_FIELDS = [
    ("dataset", pa.string()),
    ("split", pa.string()),
    ("image_id", pa.string()),
    ("file_name", pa.string()),
    ("width", pa.int32()),
    ("height", pa.int32()),
    ("format", pa.string()),
    ("sha256", pa.string()),
    ("image_bytes", pa.binary()),
]

ADE20K_IMAGE_SCHEMA = pa.schema(_IMAGE_FIELDS + [("annotation_file", pa.string())])

LVIS_IMAGE_SCHEMA = pa.schema(
    _IMAGE_FIELDS
    + [
        ("coco_url", pa.string()),
        ("neg_category_ids", pa.list_(pa.int64())),
        ("neg_category_names", pa.list_(pa.string())),
        ("not_exhaustive_category_ids", pa.list_(pa.int64())),
    ]
)

REFCOCO_IMAGE_SCHEMA = pa.schema(_IMAGE_FIELDS)

_BOX_FIELDS = [
    ("bbox_x", pa.float64()),
    ("bbox_y", pa.float64()),
    ("bbox_w", pa.float64()),
    ("bbox_h", pa.float64()),
    ("image_width", pa.int32()),
    ("image_height", pa.int32()),
]

LVIS_INSTANCE_SCHEMA = pa.schema(
    [
        ("dataset", pa.string()),
        ("split", pa.string()),
        ("annotation_id", pa.int64()),
        ("image_id", pa.string()),
        ("category_id", pa.int64()),
        ("category_name", pa.string()),
        ("synset", pa.string()),
        ("frequency", pa.string()),
    ]
    + _BOX_FIELDS
    + [("area", pa.float64()), ("category_exhaustive", pa.bool_())]
)

REFCOCO_REF_SCHEMA = pa.schema(
    [
        ("dataset", pa.string()),
        ("split", pa.string()),
        ("ref_id", pa.int64()),
        ("ann_id", pa.int64()),
        ("image_id", pa.string()),
        ("category_id", pa.int64()),
        ("category_name", pa.string()),
        ("sentence_id", pa.int64()),
        ("sentence", pa.string()),
    ]
    + _BOX_FIELDS
)

PSEUDO_DEPTH_SCHEMA = pa.schema(
    [
        ("dataset", pa.string()),
        ("split", pa.string()),
        ("image_id", pa.string()),
        ("image_sha256", pa.string()),
        ("teacher", pa.string()),
        ("width", pa.int32()),
        ("height", pa.int32()),
        ("depth_png", pa.binary()),  # uint8 grayscale, larger = nearer (Depth Anything --grayscale)
        ("raw_min", pa.float64()),
        ("raw_max", pa.float64()),
    ]
)
