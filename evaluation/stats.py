"""Uncertainty of benchmark accuracies: bootstrap confidence intervals and McNemar's exact test.

A benchmark subset holds a few hundred questions, so two models (or two runs) often differ by
less than the sampling noise. Every score row carries a 95% percentile-bootstrap interval;
comparing two runs on the same questions uses McNemar's exact (binomial) test on the
questions where exactly one run is right.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

BOOTSTRAP_RESAMPLES = 10_000
BOOTSTRAP_SEED = 0
CONFIDENCE = 0.95


def _bounds(samples: np.ndarray, confidence: float) -> tuple[float, float]:
    alpha = (1.0 - confidence) / 2.0
    lo, hi = np.quantile(samples, [alpha, 1.0 - alpha])
    return float(lo), float(hi)


def bootstrap_accuracy_ci(
    n_correct: int, n: int, resamples: int = BOOTSTRAP_RESAMPLES, seed: int = BOOTSTRAP_SEED,
    confidence: float = CONFIDENCE,
) -> tuple[float, float]:
    """95% percentile-bootstrap interval of an accuracy in percent, ``(nan, nan)`` when n = 0.

    Resampling n right/wrong outcomes with replacement gives a number correct that is
    Binomial(n, n_correct / n); drawing that directly is the same bootstrap distribution
    without materialising resamples x n indices. Fixed seed: the same counts, the same interval.
    """
    if n <= 0:
        return math.nan, math.nan
    if not 0 <= n_correct <= n:
        raise ValueError(f"n_correct={n_correct} is not within 0..n={n}")
    rng = np.random.default_rng(seed)
    samples = 100.0 * rng.binomial(n, n_correct / n, size=resamples) / n
    return _bounds(samples, confidence)


def bootstrap_stratified_ci(
    strata: Sequence[tuple[int, int]], combine, resamples: int = BOOTSTRAP_RESAMPLES, seed: int = BOOTSTRAP_SEED,
    confidence: float = CONFIDENCE,
) -> tuple[float, float]:
    """Interval of a score computed from several groups' accuracies (CV-Bench's official formula):
    each group ``(n_correct, n)`` is resampled on its own, ``combine(list of accuracy arrays)``
    gives the score of each resample."""
    if not strata or any(n <= 0 for _, n in strata):
        return math.nan, math.nan
    rng = np.random.default_rng(seed)
    accs = [100.0 * rng.binomial(n, k / n, size=resamples) / n for k, n in strata]
    return _bounds(np.asarray(combine(accs), dtype=float), confidence)


def bootstrap_ratio_ci(
    numerators: Sequence[float], denominators: Sequence[float], resamples: int = BOOTSTRAP_RESAMPLES,
    seed: int = BOOTSTRAP_SEED, confidence: float = CONFIDENCE, chunk: int = 250,
) -> tuple[float, float]:
    """95% percentile-bootstrap interval, in percent, of ``sum(num) / sum(den)`` over questions
    resampled with replacement (cIoU: intersections over unions; gIoU: per-question IoUs over ones).

    Each resample draws how often each question is taken (a multinomial of n over n), ``chunk``
    resamples at a time so memory stays at chunk x n; fixed seed: the same pairs, the same interval.
    A resample whose denominators sum to 0 counts as 100% (as the score itself does)."""
    num, den = np.asarray(numerators, dtype=float), np.asarray(denominators, dtype=float)
    if num.shape != den.shape or num.ndim != 1:
        raise ValueError(f"numerators and denominators must be two lists of one length, got {num.shape} and {den.shape}")
    n = len(num)
    if n == 0:
        return math.nan, math.nan
    rng = np.random.default_rng(seed)
    values = []
    for start in range(0, resamples, chunk):
        weights = rng.multinomial(n, np.full(n, 1.0 / n), size=min(chunk, resamples - start)).astype(float)
        top, bottom = weights @ num, weights @ den
        values.append(np.where(bottom > 0, 100.0 * top / np.where(bottom > 0, bottom, 1.0), 100.0))
    return _bounds(np.concatenate(values), confidence)


def mcnemar_exact(a_correct: Sequence[bool], b_correct: Sequence[bool]) -> dict:
    """McNemar's exact test on paired outcomes (same questions, same order).

    ``b`` = questions only A got right, ``c`` = only B got right; under "no difference" each
    discordant question is a fair coin, so the two-sided p-value is a binomial test of b out
    of b + c at 0.5 (1.0 when there is no discordant question).
    """
    if len(a_correct) != len(b_correct):
        raise ValueError(f"paired outcomes differ in length: {len(a_correct)} vs {len(b_correct)}")
    only_a = sum(1 for x, y in zip(a_correct, b_correct) if x and not y)
    only_b = sum(1 for x, y in zip(a_correct, b_correct) if y and not x)
    discordant = only_a + only_b
    # Binomial(d, 1/2) is symmetric: the two-sided p is twice the smaller tail, at most 1
    tail = sum(math.comb(discordant, k) for k in range(min(only_a, only_b) + 1)) / 2.0**discordant
    p = min(1.0, 2.0 * tail)
    return {"n": len(a_correct), "only_a": only_a, "only_b": only_b, "p_value": p}


Z_95 = 1.959963984540054  # the standard normal's 97.5% quantile


def wilson_ci(n_correct: int, n: int, z: float = Z_95) -> tuple[float, float]:
    """Wilson score interval of an accuracy, in percent; ``(nan, nan)`` when n = 0.

    Closed form, so the same counts give the same interval on any machine; unlike the normal
    approximation it stays inside 0..100 and is not empty at 0 or n correct.
    """
    if n <= 0:
        return math.nan, math.nan
    if not 0 <= n_correct <= n:
        raise ValueError(f"n_correct={n_correct} is not within 0..n={n}")
    p = n_correct / n
    denom = 1.0 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return 100.0 * max(0.0, centre - half), 100.0 * min(1.0, centre + half)


def bootstrap_mean_ci(
    values: Sequence[float], resamples: int = BOOTSTRAP_RESAMPLES, seed: int = BOOTSTRAP_SEED,
    confidence: float = CONFIDENCE,
) -> tuple[float, float]:
    """95% percentile-bootstrap interval of the mean of ``values`` (e.g. per-question IoU), ``(nan, nan)``
    when empty. Resamples of the indices, drawn in chunks so memory stays bounded; fixed seed."""
    x = np.asarray(values, dtype=float)
    if x.size == 0:
        return math.nan, math.nan
    rng = np.random.default_rng(seed)
    chunk = max(1, min(resamples, 2_000_000 // x.size))
    means = np.concatenate([x[rng.integers(0, x.size, size=(min(chunk, resamples - done), x.size))].mean(axis=1)
                            for done in range(0, resamples, chunk)])
    return _bounds(means, confidence)
