"""The demo's RES set: the demo RefCOCO / RefCOCO+ / RefCOCOg writer run on held-out scenes,
under ``<demo benchmarks root>/refcoco_res`` (refer layout, images in ``coco/train2014``)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

from perception_tokens.demo.manifest import DemoManifest
from perception_tokens.demo.refcoco_writer import write_refcoco

# COCO ids the held-out scenes take (any fixed list works; these stay clear of id 0)
_FIRST_IMAGE_ID = 900_001


def write_demo_refcoco_res(root: str | Path, n_images: int, seed: int, image_size: tuple[int, int] = (320, 240)) -> Path:
    """Write ``n_images`` scenes as RefCOCO, RefCOCO+ and RefCOCOg under ``root``; returns ``root``.

    ``seed`` must differ from the training demo's (the evaluation settings' ``demo_seed``
    does), so no evaluated image is a training image."""
    root = Path(root)
    (root / "demo_depth" / "refcoco").mkdir(parents=True, exist_ok=True)  # the writer saves exact depth there
    manifest = DemoManifest(root=str(root), seed=seed, image_size=image_size)
    for field in (manifest.image_ids, manifest.image_splits, manifest.image_sizes):
        field["refcoco"] = [] if field is manifest.image_ids else {}
    ids = list(range(_FIRST_IMAGE_ID, _FIRST_IMAGE_ID + n_images))
    write_refcoco(root, n_images, seed, image_size, ids, manifest, SimpleNamespace(update=lambda k: None))
    return root
