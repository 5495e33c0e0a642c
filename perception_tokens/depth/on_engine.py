"""Depth labelling through :mod:`perception_tokens.engine` (in-process or on Ray).

In-process this is exactly :func:`~perception_tokens.depth.labeling.label_images`. On
Ray every actor builds its own teacher once (``make_teacher`` is pickled to it, e.g. the
resource's bound ``build``), labels whole batches, and returns rejects as values; the
driver replays them through ``on_reject`` and yields results in input order, so the
table is the one the in-process engine writes.
"""

from __future__ import annotations

from functools import partial
from typing import Callable, Iterable, Iterator

from perception_tokens.depth.labeling import DepthResult, Item, OnReject, label_images
from perception_tokens.engine import EngineSettings, map_batches


class _DepthWorker:
    def __init__(self, make_teacher: Callable):
        self.teacher = make_teacher()

    def __call__(self, batch: list[Item]) -> list[tuple[str, object]]:
        outcomes: list[tuple[str, object]] = []
        on_reject = lambda dataset, image_id, reason: outcomes.append(("reject", (dataset, image_id, reason)))  # noqa: E731
        for result in label_images(self.teacher, batch, batch_size=len(batch), on_reject=on_reject, progress=False):
            outcomes.append(("ok", result))
        return outcomes


def label_images_on(engine: EngineSettings, make_teacher: Callable, items: Iterable[Item], *, batch_size: int,
                    on_reject: OnReject, teacher=None, total: int | None = None) -> Iterator[DepthResult]:
    """``label_images`` on ``engine``; ``teacher`` (already built) is used in-process."""
    if engine.kind == "inprocess":
        yield from label_images(teacher if teacher is not None else make_teacher(), items,
                                batch_size=batch_size, on_reject=on_reject, total=total)
        return
    for outcomes in map_batches(partial(_DepthWorker, make_teacher), items, batch_size=batch_size, engine=engine):
        for kind, value in outcomes:
            if kind == "reject":
                on_reject(*value)
            else:
                yield value
