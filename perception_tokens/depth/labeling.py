"""Label a stream of images with depth maps: batched for throughput, or one by one like the
reference ``run.py`` (for benchmarks).

Streams: items are pulled lazily and only one batch is held at a time. A bad item (not an
RGB uint8 image, a teacher failure, a non-finite prediction) is either reported through
``on_reject(dataset, image_id, reason)`` and skipped, or, without ``on_reject``, raised as
``DepthLabelError`` — never dropped silently.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable, Iterator, Sequence

import numpy as np
from tqdm.auto import tqdm

from perception_tokens.depth.preprocess import rgb_problem
from perception_tokens.depth.run_py import PROJECT_FORMAT, ImageFormat
from perception_tokens.depth.teachers import DepthTeacher

Item = tuple[str, str, np.ndarray]  # (dataset, image_id, rgb uint8 HxWx3)
OnReject = Callable[[str, str, str], None]  # (dataset, image_id, reason)


@dataclass(frozen=True)
class DepthResult:
    """One labelled image: the uint8 depth PNG (larger = nearer) and the raw range it spans."""

    dataset: str
    image_id: str
    depth_png: bytes
    width: int
    height: int
    raw_min: float
    raw_max: float


class DepthLabelError(ValueError):
    """An image that could not be labelled; carries its ids and the reason."""

    def __init__(self, dataset: str, image_id: str, reason: str):
        super().__init__(f"{dataset}/{image_id}: {reason}")
        self.dataset, self.image_id, self.reason = dataset, image_id, reason


def label_images(
    teacher: DepthTeacher,
    items: Iterable[Item],
    batch_size: int = 8,
    on_reject: OnReject | None = None,
    total: int | None = None,
    progress: bool = True,
) -> Iterator[DepthResult]:
    """Depth-label ``items`` in batches of ``batch_size``, yielding results in input order.

    If a whole batch fails and ``on_reject`` is given, its images are retried one at a time
    so only the culprit is rejected.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    batch: list[Item] = []
    with tqdm(total=total, unit="img", desc="depth", disable=not progress) as bar:
        for item in items:
            if _accept(item, on_reject):
                batch.append(item)
            else:
                bar.update(1)
            if len(batch) == batch_size:
                yield from _label_batch(teacher, batch, on_reject)
                bar.update(len(batch))
                batch = []
        if batch:
            yield from _label_batch(teacher, batch, on_reject)
            bar.update(len(batch))


def label_images_one_by_one(
    teacher: DepthTeacher,
    items: Iterable[Item],
    on_reject: OnReject | None = None,
    total: int | None = None,
    progress: bool = True,
) -> Iterator[DepthResult]:
    """The reference loop: one image per forward pass, normalise, encode, next."""
    with tqdm(total=total, unit="img", desc="depth (1 by 1)", disable=not progress) as bar:
        for item in items:
            if _accept(item, on_reject):
                yield from _label_batch(teacher, [item], on_reject)
            bar.update(1)


def _accept(item: Item, on_reject: OnReject | None) -> bool:
    dataset, image_id, image = item
    problem = rgb_problem(image)
    if problem is None:
        return True
    _reject(dataset, image_id, problem, on_reject)
    return False


def _reject(dataset: str, image_id: str, reason: str, on_reject: OnReject | None) -> None:
    if on_reject is None:
        raise DepthLabelError(dataset, image_id, reason)
    on_reject(dataset, image_id, reason)


def _label_batch(teacher: DepthTeacher, batch: Sequence[Item], on_reject: OnReject | None) -> Iterator[DepthResult]:
    images = [image for _, _, image in batch]
    ids = [(dataset, image_id) for dataset, image_id, _ in batch]
    try:
        predictions = teacher.predict(images, ids)
    except Exception as exc:
        if on_reject is None:
            if len(batch) == 1:
                raise DepthLabelError(ids[0][0], ids[0][1], f"teacher failed: {exc}") from exc
            raise
        if len(batch) == 1:
            _reject(ids[0][0], ids[0][1], f"teacher failed: {exc}", on_reject)
            return
        for item in batch:  # isolate the failing image(s)
            yield from _label_batch(teacher, [item], on_reject)
        return
    if len(predictions) != len(batch):
        raise RuntimeError(f"teacher {teacher.identity} returned {len(predictions)} maps for {len(batch)} images")
    # a teacher may name its PNG convention (the aurora teacher: run.py --grayscale)
    image_format = getattr(teacher, "image_format", PROJECT_FORMAT)
    for (dataset, image_id, image), raw in zip(batch, predictions):
        result = _to_result(dataset, image_id, image, raw, image_format)
        if isinstance(result, str):
            _reject(dataset, image_id, result, on_reject)
        else:
            yield result


def _to_result(dataset: str, image_id: str, image: np.ndarray, raw: np.ndarray,
               image_format: ImageFormat) -> DepthResult | str:
    """The result for one prediction, or the reason it is unusable."""
    height, width = int(image.shape[0]), int(image.shape[1])
    if raw.shape != (height, width):
        return f"prediction shape {raw.shape} != image size {(height, width)}"
    try:
        png, raw_min, raw_max = image_format.to_png(raw)
    except ValueError as exc:
        return f"bad prediction: {exc}"
    return DepthResult(dataset, image_id, png, width, height, raw_min, raw_max)
