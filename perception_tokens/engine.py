"""Where the per-image stages run: in this process, or batches mapped on a Ray cluster.

One interface for ``pseudo_depth``, ``depth_tokens`` and ``marked_points``:
:func:`map_batches` takes a *worker factory* (a picklable zero-argument callable that
builds the stage's worker: a teacher, a VQ-VAE encoder...), the items, and a batch size;
it yields each batch's outputs **in input order**, so the asset writes the same rows in
the same order whichever engine ran them, into the same Parquet writer (staging +
rename, lineage), after the same incremental filter (only new or changed
(image sha256, teacher) pairs reach the engine at all).

Ray is used directly (``ray.init`` + an actor pool), not through Ray Data / dagster-ray:
the asset must stay the single writer of its table (staging, one rename, lineage,
rejects) and must see rows in input order, and a pool of long-lived actors keeps one
model per worker (loaded once, ``num_gpus`` declared per actor). A KubeRay or existing
cluster is reached by address (``ray://head:10001`` or ``auto``); dagster-ray would only
add cluster lifecycle, which KubeRay already does.

Fault handling: actors are started with ``max_restarts`` and ``max_task_retries``, so a
worker process that dies mid-batch (OOM kill, node loss) is restarted and its batch is
run again; nothing is lost and nothing is duplicated, because results are collected per
batch index. An item a worker cannot process is the worker's to turn into a reject
outcome (stage code does that); an exception out of a whole batch fails the stage with
the batch's first item named.

Nothing here imports dagster.
"""

from __future__ import annotations

import itertools
from collections import deque
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Iterator, Literal, Sequence

Worker = Callable[[Sequence[Any]], Sequence[Any]]
WorkerFactory = Callable[[], Worker]


@dataclass(frozen=True)
class EngineSettings:
    """``kind``: ``inprocess`` (default) or ``ray``. The Ray fields are ignored in-process.

    ``address``: ``None`` starts a local cluster (``num_cpus`` CPUs, ``object_store_mb``
    object store, no dashboard, bound to 127.0.0.1); ``"auto"`` joins the cluster this
    machine belongs to; ``"ray://host:10001"`` connects through Ray Client (KubeRay's
    head service). ``num_workers`` actors, each declaring ``num_gpus_per_worker`` GPUs and
    ``num_cpus_per_worker`` CPUs; at most ``max_in_flight_per_worker`` batches queued per
    actor (memory stays bounded on the driver and in the object store).
    """

    kind: Literal["inprocess", "ray"] = "inprocess"
    address: str | None = None
    num_workers: int = 2
    num_cpus_per_worker: float = 1.0
    num_gpus_per_worker: float = 0.0
    max_in_flight_per_worker: int = 2
    max_restarts: int = 3
    num_cpus: int = 2  # local cluster only
    object_store_mb: int = 256  # local cluster only


def batched(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    if size < 1:
        raise ValueError(f"batch size must be >= 1, got {size}")
    it = iter(items)
    while batch := list(itertools.islice(it, size)):
        yield batch


def map_batches(make_worker: WorkerFactory, items: Iterable[Any], *, batch_size: int,
                engine: EngineSettings = EngineSettings()) -> Iterator[list[Any]]:
    """Yield ``worker(batch)`` for consecutive batches of ``items``, in input order."""
    if engine.kind == "inprocess":
        worker = make_worker()
        for batch in batched(items, batch_size):
            yield list(worker(batch))
    elif engine.kind == "ray":
        yield from _map_on_ray(make_worker, items, batch_size, engine)
    else:
        raise ValueError(f"unknown engine {engine.kind!r} (inprocess or ray)")


# --------------------------------------------------------------------------- ray


def ensure_ray(engine: EngineSettings):
    """``ray`` connected per ``engine`` (a local cluster is started once per process)."""
    try:
        import ray
    except ImportError as exc:
        raise ImportError("execution.engine: ray needs Ray; pip install 'perception-tokens[scale]'") from exc
    if not ray.is_initialized():
        if engine.address:
            # An existing cluster keeps its own settings (dashboard, object store, auth);
            # Ray Client ("ray://") accepts only a few init arguments anyway.
            ray.init(address=engine.address)
        else:
            ray.init(num_cpus=engine.num_cpus, object_store_memory=engine.object_store_mb * 2**20,
                     include_dashboard=False, _node_ip_address="127.0.0.1", log_to_driver=False)
    return ray


class _BatchActor:
    """Holds one worker (one model) for its lifetime; runs batches on it."""

    def __init__(self, make_worker: WorkerFactory):
        self.worker = make_worker()

    def run(self, batch: Sequence[Any]) -> list[Any]:
        return list(self.worker(batch))

    def pid(self) -> int:
        import os

        return os.getpid()


def _map_on_ray(make_worker: WorkerFactory, items: Iterable[Any], batch_size: int,
                engine: EngineSettings) -> Iterator[list[Any]]:
    ray = ensure_ray(engine)
    actor_cls = ray.remote(_BatchActor).options(
        num_cpus=engine.num_cpus_per_worker, num_gpus=engine.num_gpus_per_worker,
        max_restarts=engine.max_restarts, max_task_retries=engine.max_restarts,
    )
    actors = [actor_cls.remote(make_worker) for _ in range(max(1, engine.num_workers))]
    limit = len(actors) * max(1, engine.max_in_flight_per_worker)
    pending: deque[tuple[Any, list[Any]]] = deque()  # (future, batch), in input order
    try:
        for n, batch in enumerate(batched(items, batch_size)):
            pending.append((actors[n % len(actors)].run.remote(batch), batch))
            if len(pending) >= limit:
                yield _result(ray, *pending.popleft())
        while pending:
            yield _result(ray, *pending.popleft())
    finally:
        # Killing the actors drops their queued batches too (on error, or when the
        # consumer stops early); a finished run leaves nothing behind on the cluster.
        for actor in actors:
            ray.kill(actor, no_restart=True)


def _result(ray, future, batch: list[Any]) -> list[Any]:
    try:
        return ray.get(future)
    except ray.exceptions.RayTaskError as exc:
        first = batch[0] if batch else None
        raise RuntimeError(f"a batch of {len(batch)} starting with {_describe(first)} failed on Ray: {exc.cause!r}") from exc


def _describe(item: Any) -> str:
    if isinstance(item, (tuple, list)) and len(item) >= 2 and isinstance(item[1], str):
        return f"{item[0]}/{item[1]}"
    return type(item).__name__
