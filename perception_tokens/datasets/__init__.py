"""Streaming readers for ADE20K, LVIS v1 and RefCOCO in their official on-disk formats.

Every reader is a generator yielding row dicts or :class:`Reject` records, so callers
can write tables incrementally and account for every input record. A whole input that
is unusable (missing or malformed annotation file) raises :class:`DatasetFormatError`.
"""

from .ade20k import ADE20K_SPLITS, iter_ade20k_images
from .lvis import LvisIndex, iter_lvis_images, iter_lvis_instances, read_lvis_annotations
from .records import IMAGE_ROW_KEYS, REJECT_COLUMNS, DatasetFormatError, Reject, split_rows
from .refcoco import RefcocoIndex, iter_refcoco_images, iter_refcoco_refs, read_refcoco

__all__ = [
    "ADE20K_SPLITS",
    "DatasetFormatError",
    "IMAGE_ROW_KEYS",
    "LvisIndex",
    "REJECT_COLUMNS",
    "RefcocoIndex",
    "Reject",
    "iter_ade20k_images",
    "iter_lvis_images",
    "iter_lvis_instances",
    "iter_refcoco_images",
    "iter_refcoco_refs",
    "read_lvis_annotations",
    "read_refcoco",
    "split_rows",
]
