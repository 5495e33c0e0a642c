"""Schedules: Aurora's per-epoch arithmetic, the paper's annealed probabilities, determinism."""

import math
from collections import Counter

import numpy as np
import pytest

from perception_tokens.curriculum import (
    AURORA_PERCENTS,
    annealed_probabilities,
    annealed_schedule,
    aurora_schedule,
    mix_by_epoch,
    plot_mix_by_epoch,
)
from perception_tokens.curriculum.schedules import atomic_count


def pools(n_atomic=10, n_reasoning=7):
    atomic = [{"id": f"a{i}", "task": "depth_atomic", "dataset": "ade", "image_id": f"a{i}"} for i in range(n_atomic)]
    reasoning = [
        {"id": f"r{i}", "task": "depth_cot" if i % 2 == 0 else "depth_direct", "dataset": "ade", "image_id": f"img{i // 2}"}
        for i in range(n_reasoning)
    ]
    return atomic, reasoning


def by_epoch(schedule):
    out = {}
    for e, s in schedule:
        out.setdefault(e, []).append(s)
    return out


def test_aurora_schedule_exact_counts():
    atomic, reasoning = pools(10, 7)
    sched = aurora_schedule(atomic, reasoning, epochs=3, percents=(1.0, 0.5, 0.0), seed=0)
    epochs = by_epoch(sched)
    assert [e for e, _ in sched] == sorted(e for e, _ in sched)  # all epochs in order
    counts = {e: Counter("atomic" if s["task"] == "depth_atomic" else "reasoning" for s in ss) for e, ss in epochs.items()}
    assert counts == {0: {"atomic": 10}, 1: {"atomic": 5, "reasoning": 5}, 2: {"reasoning": 10}}
    # epoch 0 shows every atomic sample once; epoch 1's atomic samples are distinct
    assert sorted(s["id"] for s in epochs[0]) == sorted(a["id"] for a in atomic)
    ep1 = [s["id"] for s in epochs[1] if s["task"] == "depth_atomic"]
    assert len(set(ep1)) == 5
    # 15 reasoning draws cycle the 7-sample pool: each seen 2 or 3 times, 15 in all
    seen = Counter(s["id"] for _, s in sched if s["task"] != "depth_atomic")
    assert sum(seen.values()) == 15 and set(seen) == {r["id"] for r in reasoning}
    assert set(seen.values()) == {2, 3} and list(seen.values()).count(3) == 1


def test_aurora_default_percents_and_rounding():
    assert AURORA_PERCENTS == (1.0, 0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1)
    assert [atomic_count(p, 10) for p in AURORA_PERCENTS] == list(range(10, 0, -1))
    assert atomic_count(0.15, 10) == 2 and atomic_count(0.25, 10) == 3 and atomic_count(0.5, 7) == 4
    atomic, reasoning = pools(20, 6)
    sched = aurora_schedule(atomic, reasoning, seed=1)  # 10 epochs, epoch size = 20
    mix = mix_by_epoch(sched)
    assert len(sched) == 200 and sorted(mix) == list(range(10))
    assert [round(mix[e]["depth_atomic"], 6) for e in range(10)] == list(AURORA_PERCENTS)


def test_aurora_explicit_epoch_size_and_grouping():
    atomic, reasoning = pools(4, 6)  # 3 images x (cot, direct)
    sched = aurora_schedule(atomic, reasoning, epochs=1, percents=(0.4,), epoch_size=10, seed=3)
    ids = [s["id"] for _, s in sched]
    assert len(ids) == 10 and Counter(ids)["a0"] <= 1
    for k in range(3):  # an image's CoT is immediately followed by its direct question
        i = ids.index(f"r{2 * k}")
        assert ids[i + 1] == f"r{2 * k + 1}"


def test_aurora_deterministic_under_seed():
    atomic, reasoning = pools(10, 7)
    a = aurora_schedule(atomic, reasoning, epochs=3, percents=(1.0, 0.5, 0.2), seed=5)
    b = aurora_schedule(atomic, reasoning, epochs=3, percents=(1.0, 0.5, 0.2), seed=5)
    c = aurora_schedule(atomic, reasoning, epochs=3, percents=(1.0, 0.5, 0.2), seed=6)
    key = lambda s: [(e, x["id"]) for e, x in s]  # noqa: E731
    assert key(a) == key(b) and key(a) != key(c)


def test_aurora_errors():
    atomic, reasoning = pools(10, 7)
    with pytest.raises(ValueError, match="reasoning pool is empty"):
        aurora_schedule(atomic, [], epochs=2, percents=(1.0, 0.5))
    with pytest.raises(ValueError, match="percents"):
        aurora_schedule(atomic, reasoning, epochs=3, percents=(1.0, 0.5))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        aurora_schedule(atomic, reasoning, epochs=1, percents=(1.5,))


def test_annealed_probabilities_hand_computed():
    p0 = annealed_probabilities([1.0, 2.0], step=0, total_steps=10, tau0=1.0, lam=1.0)
    np.testing.assert_allclose(p0, [1 / (1 + math.exp(-1)), math.exp(-1) / (1 + math.exp(-1))])
    np.testing.assert_allclose(p0, [0.7310585786, 0.2689414214], rtol=1e-9)
    # s = S: tau = tau0 / (1 + lam) = 0.5 -> logits -2, -4
    p1 = annealed_probabilities([1.0, 2.0], step=10, total_steps=10, tau0=1.0, lam=1.0)
    np.testing.assert_allclose(p1, [0.8807970780, 0.1192029220], rtol=1e-9)
    p3 = annealed_probabilities([0.0, 1.0, 2.0], step=5, total_steps=10, tau0=2.0, lam=2.0)  # tau = 1
    z = 1 + math.exp(-1) + math.exp(-2)
    np.testing.assert_allclose(p3, [1 / z, math.exp(-1) / z, math.exp(-2) / z], rtol=1e-12)
    assert math.isclose(p3.sum(), 1.0)


def test_annealed_probabilities_direction():
    d = [1.0, 2.0, 3.0]
    hard = lambda s, lam, form="paper": annealed_probabilities(d, s, 100, 1.0, lam, temperature_form=form)[-1]  # noqa: E731
    # lam = 0: constant
    assert hard(0, 0.0) == hard(100, 0.0)
    # paper's Eq. 4 with lam > 0 cools the softmax: the hardest task LOSES share (see module doc)
    assert hard(0, 1.0) > hard(50, 1.0) > hard(100, 1.0)
    # rising temperature shifts mass toward hard tasks: lam in (-1, 0) or the "growing" form
    assert hard(0, -0.5) < hard(50, -0.5) < hard(100, -0.5)
    assert hard(0, 1.0, "growing") < hard(50, 1.0, "growing") < hard(100, 1.0, "growing")
    for s in (0, 37, 100):
        assert math.isclose(annealed_probabilities(d, s, 100, 0.7, 3.0, temperature_form="growing").sum(), 1.0)
    with pytest.raises(ValueError):
        annealed_probabilities(d, 100, 100, 1.0, -1.0)
    with pytest.raises(ValueError):
        annealed_probabilities(d, 101, 100, 1.0, 1.0)


def test_annealed_schedule_deterministic_and_shifting():
    pools_by_task = {
        "depth_atomic": [{"id": f"a{i}", "task": "depth_atomic"} for i in range(30)],
        "depth_direct": [{"id": f"d{i}", "task": "depth_direct"} for i in range(5)],
        "depth_cot": [{"id": f"c{i}", "task": "depth_cot"} for i in range(5)],
    }
    diffs = {"depth_atomic": 1.0, "depth_direct": 2.0, "depth_cot": 3.0}
    kw = dict(total_samples=600, tau0=0.5, lam=4.0, seed=11, epochs=3, temperature_form="growing")
    a = annealed_schedule(pools_by_task, diffs, **kw)
    b = annealed_schedule(pools_by_task, diffs, **kw)
    assert [(e, s["id"]) for e, s in a] == [(e, s["id"]) for e, s in b]
    assert len(a) == 600 and Counter(e for e, _ in a) == {0: 200, 1: 200, 2: 200}
    mix = mix_by_epoch(a)
    assert mix[0]["depth_atomic"] > mix[2]["depth_atomic"] + 0.2
    assert mix[2].get("depth_cot", 0) > mix[0].get("depth_cot", 0)
    # pools are walked without repetition before reuse: first 5 cot samples all distinct
    cot = [s["id"] for _, s in a if s["task"] == "depth_cot"][:5]
    assert len(set(cot)) == 5
    with pytest.raises(ValueError, match="no difficulty"):
        annealed_schedule(pools_by_task, {"depth_atomic": 1.0}, total_samples=10, tau0=1, lam=1)


def test_mix_and_plot():
    sched = [(0, {"task": "a"}), (0, {"task": "a"}), (0, {"task": "b"}), (1, {"task": "b"})]
    mix = mix_by_epoch(sched)
    assert mix == {0: {"a": 2 / 3, "b": 1 / 3}, 1: {"b": 1.0}}
    png = plot_mix_by_epoch(mix)
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 2000
