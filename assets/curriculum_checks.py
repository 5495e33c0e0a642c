"""Asset checks of the curriculum stage: marked answers agree with depth, token strings parse,
the export's images resolve, and the epoch mix follows the schedule."""

from collections import Counter, defaultdict
import cv2
import dagster as dg
import numpy as np

from assets.curriculum_export import LlavaExport
from perception_tokens import aurora_marks
from perception_tokens.curriculum.llava_json import validate_answer_tokens
from perception_tokens.curriculum.perceptio_text import well_ordered_answer
from perception_tokens.curriculum.marking import to_grid
from perception_tokens.depth import decode_png
from pipeline_lib.resources import StorageResource
from pipeline_lib.tables import TableHandle


def build_curriculum_checks(settings, curriculum_asset, with_marked_points: bool = True) -> list:
    """The checks of ``curriculum_asset``; ``with_marked_points``: also the (shared) marked_points check, built once."""
    curriculum_settings = settings.curriculum
    aurora_style = curriculum_settings.style == "aurora"

    @dg.asset_check(asset="marked_points", description="Stored answers agree with the depth map at the stored points; all labels lie inside the image.",
                    additional_ins={"pseudo_depth": dg.AssetIn()})
    def marked_points_consistent(marked_points: TableHandle, pseudo_depth: TableHandle) -> dg.AssetCheckResult:
        marks = {(r["dataset"], r["image_id"]): r for r in marked_points.iter_rows(columns=["dataset", "image_id", "xs", "ys", "answer", "letters", "labels_inside"])}
        wrong, outside, n = 0, 0, 0
        for r in pseudo_depth.iter_rows(columns=["dataset", "image_id", "depth_png"]):
            m = marks.get((r["dataset"], r["image_id"]))
            if m is None:
                continue
            n += 1
            depth = aurora_marks.depth_array(r["depth_png"]) if aurora_style else to_grid(decode_png(r["depth_png"]), cv2.INTER_LINEAR)
            values = [int(depth[y, x]) for x, y in zip(m["xs"], m["ys"])]
            wrong += m["letters"][int(np.argmax(values))] != m["answer"]
            outside += not m["labels_inside"]
        # the reference draws labels 25 px above the point without moving them, so some leave the image
        return dg.AssetCheckResult(passed=n > 0 and wrong == 0 and (aurora_style or outside == 0),
                                   metadata={"checked": n, "wrong_answers": wrong, "labels_outside": outside})

    @dg.asset_check(asset=curriculum_asset, description="Every perception-token string in every answer parses under the vocabulary.")
    def curriculum_tokens_parse(curriculum: TableHandle) -> dg.AssetCheckResult:
        bad, n, first = 0, 0, None
        for r in curriculum.iter_rows(columns=["sample_id", "answer"]):
            n += 1
            problems = validate_answer_tokens(r["answer"])
            if problems:
                bad += 1
                first = first or f"{r['sample_id']}: {problems[0]}"
        return dg.AssetCheckResult(passed=bad == 0 and n > 0, metadata={"samples": n, "bad": bad, "first_problem": first or ""})

    @dg.asset_check(asset=curriculum_asset, description="Every image the LLaVA JSON names exists in the exported image folder.")
    def curriculum_images_resolve(storage: StorageResource, curriculum: TableHandle) -> dg.AssetCheckResult:
        folder = LlavaExport.from_table(curriculum).image_folder(storage.root)
        names = {r["image_file"] for r in curriculum.iter_rows(columns=["image_file"])}
        missing = sorted(n for n in names if not (folder / n).is_file())
        return dg.AssetCheckResult(passed=not missing and bool(names), metadata={"images": len(names), "missing": len(missing),
                                                                                 "first_missing": missing[0] if missing else ""})

    @dg.asset_check(asset=curriculum_asset, description="For Aurora's schedule, each epoch's atomic share matches curriculum.percents within the tolerance; "
                    "for VPT's, epoch 0 is stage 1, epoch 1 stage 2, with plain samples mixed into stage 2.")
    def curriculum_mix_matches_schedule(curriculum: TableHandle) -> dg.AssetCheckResult:
        return mix_check_result(curriculum, curriculum_settings)

    curriculum_checks = [curriculum_tokens_parse, curriculum_images_resolve, curriculum_mix_matches_schedule]
    if curriculum_settings.style == "perceptio":
        @dg.asset_check(asset=curriculum_asset, description="Perceptio: every refer_segment sample carries its mask and answers "
                        "[SEG], one depth span, then the description, in that order.")
        def curriculum_perceptio_samples(curriculum: TableHandle) -> dg.AssetCheckResult:
            return perceptio_samples_result(curriculum.iter_rows(columns=["sample_id", "task", "answer", "mask_rle"]))

        curriculum_checks.append(curriculum_perceptio_samples)
    return [marked_points_consistent, *curriculum_checks] if with_marked_points else curriculum_checks


def vpt_mix_result(curriculum: TableHandle) -> dg.AssetCheckResult:
    """VPT's order: epoch 0 holds the stage-1 samples, epoch 1 the stage-2 ones, and plain samples (no
    perception token) sit in stage 2 beside the others, so the model learns when to trigger."""
    tasks: dict[int, Counter] = defaultdict(Counter)
    misplaced = 0
    for r in curriculum.iter_rows(columns=["epoch", "vpt_stage", "task"]):
        tasks[r["vpt_stage"]][r["task"]] += 1
        misplaced += r["epoch"] != (r["vpt_stage"] or 0) - 1
    mixed = len(tasks.get(2, {})) >= 2 and "vpt_plain" in tasks.get(2, {})
    return dg.AssetCheckResult(passed=misplaced == 0 and mixed, metadata={
        "tasks_by_stage": dg.MetadataValue.json({str(k): dict(v) for k, v in sorted(tasks.items())}),
        "rows_in_the_wrong_epoch": misplaced})


def mix_check_result(curriculum: TableHandle, curriculum_settings) -> dg.AssetCheckResult:
    cs = curriculum_settings
    if cs.is_vpt():
        return vpt_mix_result(curriculum)
    per_epoch: dict[int, Counter] = defaultdict(Counter)
    for r in curriculum.iter_rows(columns=["epoch", "kind"]):
        per_epoch[r["epoch"]][r["kind"] == "atomic"] += 1
    shares = {e: c[True] / max(1, sum(c.values())) for e, c in sorted(per_epoch.items())}
    if cs.schedule != "aurora" or cs.style == "perceptio":  # perceptio: one shuffled stage, no atomic share to match
        return dg.AssetCheckResult(passed=bool(shares), metadata={"atomic_share": dg.MetadataValue.json(shares)})
    if cs.mixing == "sequential":
        # the notebooks' block: epoch e holds exactly int(N * percents[e]) atomic samples, N = the epoch-0 size
        atomic = {e: c[True] for e, c in sorted(per_epoch.items())}
        n = cs.epoch_size or atomic.get(0, 0)
        expected = {e: int(n * cs.percents[e]) for e in range(cs.epochs)}
        return dg.AssetCheckResult(passed=atomic == {e: v for e, v in expected.items() if v or e in atomic},
                                   metadata={"atomic_per_epoch": dg.MetadataValue.json({str(k): v for k, v in atomic.items()}),
                                             "expected": dg.MetadataValue.json({str(k): v for k, v in expected.items()})})
    worst = max((abs(shares[e] - cs.percents[e]) for e in shares), default=1.0)
    return dg.AssetCheckResult(passed=worst <= cs.mix_tolerance and len(shares) == cs.epochs,
                               metadata={"atomic_share": dg.MetadataValue.json({str(k): round(v, 4) for k, v in shares.items()}),
                                         "max_deviation": float(worst)})


def perceptio_samples_result(rows) -> dg.AssetCheckResult:
    """Pass when there are refer_segment rows and each has a mask and a well-ordered answer."""
    n, no_mask, disordered, first = 0, 0, 0, ""
    for r in rows:
        if r["task"] != "refer_segment":
            continue
        n += 1
        no_mask += r["mask_rle"] is None
        disordered += not well_ordered_answer(r["answer"])
        if not first and (r["mask_rle"] is None or not well_ordered_answer(r["answer"])):
            first = r["sample_id"]
    return dg.AssetCheckResult(passed=n > 0 and no_mask == 0 and disordered == 0,
                               metadata={"refer_samples": n, "without_mask": no_mask, "not_well_ordered": disordered,
                                         "first_bad": first})
