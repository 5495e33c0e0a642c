"""Depth from the model's own tokens: each depth chain-of-thought answer's 100 generated codes decoded
with the VQ-VAE, then (a) the marked points read off the decoded map (the largest value, i.e. the
nearest in the Depth Anything convention, is the answer) and (b) the decoded map against the
teacher's map of the same image (MSE and abs-rel on the teacher's 0..1 scale, 336 x 336).

Nothing is dropped: an answer without a valid span, an image without a teacher map or without
known marker positions gets a row whose ``problem`` says why, and its measures are null.
"""

from __future__ import annotations

import math
from collections import defaultdict
from typing import Callable, Iterable, Mapping, Sequence

import numpy as np

from evaluation.prompts import task_kind
from perception_tokens.vocab import PIXEL_GRID, TokenParseError, decode_depth

Points = Mapping[str, Sequence[int]]  # letter -> (x, y) on the 336 grid
DecodeFn = Callable[[list[int]], np.ndarray]  # 100 codes -> uint8 map on the 336 grid
TeacherFn = Callable[[dict], "np.ndarray | None"]  # prediction row -> the teacher's uint8 map on the 336 grid
PointsFn = Callable[[dict], "Points | None"]
DECODED_FIELDS = ("variant", "eval_run_id", "benchmark", "subset", "question_id", "gold", "model_answer", "decoded_answer",
                  "decoded_correct", "mse", "abs_rel", "problem")


def vqvae_decoder(model) -> DecodeFn:
    """Codes -> the VQ-VAE's reconstruction as uint8 on the 336 grid (the same resize the teacher maps get)."""
    import torch

    from training.vqvae.data import tensor_to_depth_uint8

    def decode(codes: list[int]) -> np.ndarray:
        with torch.inference_mode():
            recon = model.decode_codes(torch.tensor([codes], dtype=torch.long))
        return tensor_to_depth_uint8(recon, sizes=[(PIXEL_GRID, PIXEL_GRID)])[0]

    return decode


def map_errors(decoded_u8: np.ndarray, teacher_u8: np.ndarray) -> tuple[float, float]:
    """(MSE, abs-rel) of a decoded map against the teacher's, both as uint8 / 255. Abs-rel is
    mean(|d - t| / t) over the pixels where the teacher is not 0 (its farthest value)."""
    if decoded_u8.shape != teacher_u8.shape:
        raise ValueError(f"decoded map {decoded_u8.shape} and teacher map {teacher_u8.shape} differ in size")
    d = decoded_u8.astype(np.float64) / 255.0
    t = teacher_u8.astype(np.float64) / 255.0
    mse = float(np.mean((d - t) ** 2))
    mask = t > 0
    abs_rel = float(np.mean(np.abs(d[mask] - t[mask]) / t[mask])) if mask.any() else math.nan
    return mse, abs_rel


def closest_on_map(depth_u8: np.ndarray, points: Points) -> str | None:
    """The letter whose point has the largest value (nearest); None on a tie (no single answer)."""
    values = {letter: int(depth_u8[int(y), int(x)]) for letter, (x, y) in points.items()}
    best = max(values.values())
    winners = [k for k, v in values.items() if v == best]
    return winners[0] if len(winners) == 1 else None


def decoded_depth_rows(predictions: Iterable[Mapping], decode: DecodeFn, teacher_map: TeacherFn, points_of: PointsFn,
                       variant: str | None = None) -> list[dict]:
    """One row per relative-depth chain-of-thought prediction (those not run are skipped: they have no answer)."""
    out = []
    for p in predictions:
        if p["mode"] != "cot" or p.get("error") or task_kind(p) != "depth":
            continue
        row = {"variant": variant, "eval_run_id": p["eval_run_id"], "benchmark": p["benchmark"], "subset": p["subset"],
               "question_id": str(p["question_id"]), "gold": p["gold"], "model_answer": p.get("pred"), "decoded_answer": None,
               "decoded_correct": None, "mse": None, "abs_rel": None, "problem": None}
        out.append(row)
        spans = [s for s, ok in zip(p.get("depth_spans") or [], p.get("depth_spans_valid") or []) if ok]
        if not spans:
            row["problem"] = "no valid depth span in the answer"
            continue
        try:
            decoded = decode(decode_depth(spans[0]))
        except (TokenParseError, ValueError) as exc:
            row["problem"] = f"span not decodable: {exc}"
            continue
        teacher = teacher_map(dict(p))
        if teacher is None:
            row["problem"] = "no teacher depth for this image"
        else:
            row["mse"], row["abs_rel"] = map_errors(decoded, teacher)
        points = points_of(dict(p))
        if points is None:
            row["problem"] = (row["problem"] + "; " if row["problem"] else "") + "marker positions unknown"
            continue
        row["decoded_answer"] = closest_on_map(decoded, points)
        row["decoded_correct"] = row["decoded_answer"] == p["gold"]
    return out


def decoded_depth_summary(rows: Sequence[Mapping]) -> list[dict]:
    """Per (variant, benchmark, subset): answers, decoded spans, read-off accuracy and mean map errors."""
    groups: dict[tuple, list[Mapping]] = defaultdict(list)
    for r in rows:
        groups[(r["variant"], r["benchmark"], r["subset"])].append(r)
    out = []
    for (variant, benchmark, subset), rs in groups.items():
        read = [r for r in rs if r["decoded_correct"] is not None]
        measured = [r for r in rs if r["mse"] is not None]
        out.append({"variant": variant, "benchmark": benchmark, "subset": subset, "n_answers": len(rs),
                    "n_read": len(read), "read_accuracy_pct": 100.0 * sum(r["decoded_correct"] for r in read) / len(read) if read else math.nan,
                    "n_measured": len(measured),
                    "mean_mse": float(np.mean([r["mse"] for r in measured])) if measured else math.nan,
                    "mean_abs_rel": float(np.mean([r["abs_rel"] for r in measured if not math.isnan(r["abs_rel"])] or [math.nan]))
                    if measured else math.nan})
    return out
