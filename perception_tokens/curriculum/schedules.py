"""Curriculum schedules: which sample is seen when.

Two schedules, both deterministic under a seed and both returning one list of
``(epoch, sample)`` in training order, to be read by a sequential sampler:

* :func:`aurora_schedule` - the schedule of Aurora's released training data: epoch ``e``
  holds a share ``percents[e]`` of atomic samples and fills the rest with reasoning
  (CoT + direct) samples, cycling through the reasoning pool.
* :func:`annealed_schedule` - the paper's Eq. 3-4: at step ``s`` a task ``t`` is drawn with
  ``p(d_t, s) = softmax(-d / tau(s))_t`` and ``tau(s) = tau0 / (1 + lam * s / S)``.

Note on Eq. 3-4 (checked numerically in the tests): with ``lam > 0`` the temperature
*falls* over training, which sharpens the softmax towards the *smallest* difficulty,
i.e. the atomic task gains share - the opposite of the paper's stated intent ("a smooth
shift ... toward harder tasks"). Harder tasks gain share when the temperature rises:
``lam`` in (-1, 0) with the paper's form, or ``temperature_form="growing"``
(``tau(s) = tau0 * (1 + lam * s / S)``) with ``lam > 0``. Either way the distribution
only flattens towards uniform; with ``p ~ exp(-d / tau)`` and ``tau > 0`` the easiest task
always keeps the largest share.

Samples can be any objects with a ``task`` (and, for grouping, ``dataset`` and
``image_id``) attribute or dict key, e.g. :class:`~perception_tokens.curriculum.sample.Sample`.
"""

from __future__ import annotations

import io
import math
from collections import Counter
from typing import Any, Callable, Hashable, Literal, Sequence

import numpy as np

# Aurora's atomic share per epoch: 100%, 90%, ..., 10%.
AURORA_PERCENTS: tuple[float, ...] = tuple(round(1.0 - 0.1 * e, 1) for e in range(10))

Schedule = list[tuple[int, Any]]


def _field(sample: Any, name: str, default: Any = None) -> Any:
    if isinstance(sample, dict):
        return sample.get(name, default)
    return getattr(sample, name, default)


def default_group_key(sample: Any) -> Hashable:
    """Samples of one image form one group: ``(dataset, image_id)``; else the object itself."""
    dataset, image_id = _field(sample, "dataset"), _field(sample, "image_id")
    if dataset is None or image_id is None:
        return ("__single__", id(sample))
    return (dataset, image_id)


def _groups(pool: Sequence[Any], key: Callable[[Any], Hashable] | None) -> list[list[Any]]:
    """Pool -> groups in order of first appearance, pool order kept inside each group."""
    if key is None:
        return [[s] for s in pool]
    groups: dict[Hashable, list[Any]] = {}
    for s in pool:
        groups.setdefault(key(s), []).append(s)
    return list(groups.values())


class _CyclingStream:
    """Walks a pool's groups in shuffled order, reshuffling each time the pool is used up.

    ``take(n)`` returns the next ``n`` samples as *units*: runs of consecutive samples of
    one group (kept together when an epoch is shuffled). When a new pass starts in the
    middle of a ``take``, groups already taken in that call go to the end of the new
    order, so one call repeats a sample only if ``n`` exceeds the pool size.
    """

    def __init__(self, groups: list[list[Any]], rng: np.random.Generator):
        self.groups = groups
        self.rng = rng
        self.order: list[int] = []
        self.pos = 0  # index into order
        self.offset = 0  # samples of order[pos] already taken

    def _new_pass(self, taken_now: set[int]) -> None:
        perm = [int(i) for i in self.rng.permutation(len(self.groups))]
        self.order = [i for i in perm if i not in taken_now] + [i for i in perm if i in taken_now]
        self.pos, self.offset = 0, 0

    def take(self, n: int) -> list[list[Any]]:
        units: list[list[Any]] = []
        taken_now: set[int] = set()
        while n > 0:
            if self.pos >= len(self.order):
                self._new_pass(taken_now)
            g = self.order[self.pos]
            group = self.groups[g]
            chunk = group[self.offset : self.offset + n]
            units.append(chunk)
            taken_now.add(g)
            n -= len(chunk)
            self.offset += len(chunk)
            if self.offset >= len(group):
                self.pos, self.offset = self.pos + 1, 0
        return units


def atomic_count(percent: float, epoch_size: int) -> int:
    """Atomic samples in an epoch: ``round_half_up(percent * epoch_size)``.

    A tiny epsilon absorbs binary float error (0.7 * 10 = 7.000000000000001, 0.15 * 10 =
    1.4999999999999998) so decimal percents round as written.
    """
    return int(math.floor(percent * epoch_size + 0.5 + 1e-9))


def aurora_schedule(
    atomic_pool: Sequence[Any],
    reasoning_pool: Sequence[Any],
    *,
    epochs: int = 10,
    percents: Sequence[float] = AURORA_PERCENTS,
    epoch_size: int | None = None,
    seed: int = 0,
    group_key: Callable[[Any], Hashable] | None = default_group_key,
) -> Schedule:
    """Aurora's curriculum: the atomic share falls epoch by epoch, reasoning fills the rest.

    Arithmetic, for epoch ``e`` in ``0..epochs-1``:

    * ``N = epoch_size`` (default ``len(atomic_pool)``, so the all-atomic first epoch shows
      every atomic sample once);
    * ``n_atomic = round_half_up(percents[e] * N)`` (:func:`atomic_count`) and
      ``n_reasoning = N - n_atomic``.

    Atomic samples come from a stream over the atomic pool, reasoning samples from a
    stream over the reasoning pool; each stream walks its pool in a shuffled order and
    reshuffles when used up, continuing across epochs - so the small reasoning pool is
    repeated (cycled) to fill late epochs and all its samples are seen equally often
    (counts differ by at most one). Reasoning samples of one image (``group_key``, default
    ``(dataset, image_id)``) stay consecutive in pool order, as Aurora presents an image's
    CoT and direct questions one after the other; pass ``group_key=None`` to treat every
    sample alone. Inside an epoch, atomic samples and reasoning groups are shuffled
    together. The result lists all epochs in order; deterministic for a given ``seed``.
    """
    if epochs < 1:
        raise ValueError(f"epochs must be >= 1, got {epochs}")
    if len(percents) < epochs:
        raise ValueError(f"{len(percents)} percents given for {epochs} epochs")
    bad = [p for p in percents[:epochs] if not 0.0 <= float(p) <= 1.0]
    if bad:
        raise ValueError(f"percents must lie in [0, 1], got {bad}")
    size = len(atomic_pool) if epoch_size is None else int(epoch_size)
    if size < 1:
        raise ValueError(f"epoch size must be >= 1, got {size} (empty atomic pool and no epoch_size?)")

    rng = np.random.default_rng(seed)
    atomic = _CyclingStream(_groups(atomic_pool, None), rng)
    reasoning = _CyclingStream(_groups(reasoning_pool, group_key), rng)
    schedule: Schedule = []
    for e in range(epochs):
        n_atomic = atomic_count(float(percents[e]), size)
        n_reasoning = size - n_atomic
        if n_atomic and not atomic_pool:
            raise ValueError(f"epoch {e} needs {n_atomic} atomic samples but the atomic pool is empty")
        if n_reasoning and not reasoning_pool:
            raise ValueError(f"epoch {e} needs {n_reasoning} reasoning samples but the reasoning pool is empty")
        units = (atomic.take(n_atomic) if n_atomic else []) + (reasoning.take(n_reasoning) if n_reasoning else [])
        for u in rng.permutation(len(units)):
            schedule.extend((e, s) for s in units[int(u)])
    return schedule


# ---------------------------------------------------------------------------- paper's annealing

TemperatureForm = Literal["paper", "growing"]


def temperature(step: float, total_steps: float, tau0: float, lam: float, form: TemperatureForm = "paper") -> float:
    """``tau(s)``: paper ``tau0 / (1 + lam * s / S)``; growing ``tau0 * (1 + lam * s / S)``."""
    if total_steps <= 0:
        raise ValueError(f"total_steps must be > 0, got {total_steps}")
    if not 0 <= step <= total_steps:
        raise ValueError(f"step {step} outside 0..{total_steps}")
    if tau0 <= 0:
        raise ValueError(f"tau0 must be > 0, got {tau0}")
    factor = 1.0 + lam * step / total_steps
    if factor <= 0:
        raise ValueError(f"1 + lam*s/S = {factor} <= 0 at step {step}: lam must be > -1")
    if form == "paper":
        return tau0 / factor
    if form == "growing":
        return tau0 * factor
    raise ValueError(f"unknown temperature form {form!r} (expected 'paper' or 'growing')")


def annealed_probabilities(
    difficulties: Sequence[float],
    step: float,
    total_steps: float,
    tau0: float,
    lam: float,
    *,
    temperature_form: TemperatureForm = "paper",
) -> np.ndarray:
    """Paper Eq. 3: ``p_t = exp(-d_t / tau(s)) / sum_i exp(-d_i / tau(s))`` (numerically stable)."""
    d = np.asarray(difficulties, dtype=np.float64)
    if d.ndim != 1 or d.size == 0:
        raise ValueError("difficulties must be a non-empty 1-D sequence")
    tau = temperature(step, total_steps, tau0, lam, temperature_form)
    logits = -d / tau
    logits -= logits.max()
    w = np.exp(logits)
    return w / w.sum()


def annealed_schedule(
    pools_by_task: dict[str, Sequence[Any]],
    difficulties: dict[str, float],
    total_samples: int,
    tau0: float,
    lam: float,
    seed: int = 0,
    epochs: int = 1,
    *,
    temperature_form: TemperatureForm = "paper",
) -> Schedule:
    """Draw ``total_samples`` samples in order with the paper's annealed task probabilities.

    Step ``s`` is the sample index (``0..total_samples-1``) and ``S = total_samples``; at
    each step a task is drawn from :func:`annealed_probabilities`, then the next sample of
    that task's pool (each pool walked in shuffled order, reshuffled when used up, so no
    sample repeats before its whole pool was seen). Sample ``i`` belongs to epoch
    ``i * epochs // total_samples`` (equal contiguous blocks). Deterministic under ``seed``.
    """
    if total_samples < 1:
        raise ValueError(f"total_samples must be >= 1, got {total_samples}")
    if epochs < 1 or epochs > total_samples:
        raise ValueError(f"epochs must be in 1..total_samples, got {epochs}")
    tasks = list(pools_by_task)
    missing = [t for t in tasks if t not in difficulties]
    if missing:
        raise ValueError(f"no difficulty for tasks {missing}")
    empty = [t for t in tasks if not pools_by_task[t]]
    if empty:
        raise ValueError(f"empty pools for tasks {empty}")
    d = [float(difficulties[t]) for t in tasks]

    rng = np.random.default_rng(seed)
    streams = {t: _CyclingStream(_groups(pools_by_task[t], None), rng) for t in tasks}
    schedule: Schedule = []
    for i in range(total_samples):
        p = annealed_probabilities(d, i, total_samples, tau0, lam, temperature_form=temperature_form)
        t = tasks[int(rng.choice(len(tasks), p=p))]
        schedule.append((i * epochs // total_samples, streams[t].take(1)[0][0]))
    return schedule


# ---------------------------------------------------------------------------- summaries


def mix_by_epoch(schedule: Schedule) -> dict[int, dict[str, float]]:
    """``epoch -> {task: share of that epoch's samples}`` (shares sum to 1 per epoch)."""
    counts: dict[int, Counter] = {}
    for epoch, sample in schedule:
        task = _field(sample, "task")
        if task is None:
            raise ValueError(f"sample {sample!r} has no task")
        counts.setdefault(int(epoch), Counter())[str(task)] += 1
    return {
        e: {t: n / sum(c.values()) for t, n in sorted(c.items())} for e, c in sorted(counts.items())
    }


def plot_mix_by_epoch(mix: dict[int, dict[str, float]], title: str = "Curriculum mix by epoch") -> bytes:
    """Stacked bars of each task's share per epoch, as PNG bytes (matplotlib Agg, no display)."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure  # Figure without pyplot: no global state, thread-safe

    epochs = sorted(mix)
    tasks = sorted({t for shares in mix.values() for t in shares})
    fig = Figure(figsize=(7, 4), dpi=100)
    ax = fig.add_subplot()
    bottom = np.zeros(len(epochs))
    for task in tasks:
        values = np.array([mix[e].get(task, 0.0) for e in epochs])
        ax.bar([str(e) for e in epochs], values, bottom=bottom, label=task)
        bottom += values
    ax.set_xlabel("epoch")
    ax.set_ylabel("share of samples")
    ax.set_ylim(0, 1)
    ax.set_title(title)
    ax.legend(loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize=8)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()
