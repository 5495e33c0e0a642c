"""Arrow schemas of the pipeline's tables: the contract between stages.

Every row keeps the ids that lead back to its source (dataset, image id, annotation id).
"""

from __future__ import annotations

import pyarrow as pa

REJECT_SCHEMA = pa.schema(
    [
        ("dataset", pa.string()),
        ("stage", pa.string()),
        ("file", pa.string()),
        ("record_id", pa.string()),
        ("reason", pa.string()),
    ]
)

# ``ptok score``: the answer lines it could not score and why (a malformed line, a duplicate,
# an answer to a question the benchmark itself rejected, with the benchmark's reason), per run
ANSWER_REJECT_SCHEMA = pa.schema([("eval_run_id", pa.string()), ("run_started_at", pa.string()),
                                  ("answers_file", pa.string()), *REJECT_SCHEMA])

_IMAGE_FIELDS = [
    ("dataset", pa.string()),
    ("split", pa.string()),
    ("image_id", pa.string()),
    ("file_name", pa.string()),
    ("width", pa.int32()),
    ("height", pa.int32()),
    ("format", pa.string()),
    ("sha256", pa.string()),
    ("image_bytes", pa.binary()),
]

ADE20K_IMAGE_SCHEMA = pa.schema(_IMAGE_FIELDS + [("annotation_file", pa.string())])

LVIS_IMAGE_SCHEMA = pa.schema(
    _IMAGE_FIELDS
    + [
        ("coco_url", pa.string()),
        ("neg_category_ids", pa.list_(pa.int64())),
        ("neg_category_names", pa.list_(pa.string())),
        ("not_exhaustive_category_ids", pa.list_(pa.int64())),
    ]
)

REFCOCO_IMAGE_SCHEMA = pa.schema(_IMAGE_FIELDS)

_BOX_FIELDS = [
    ("bbox_x", pa.float64()),
    ("bbox_y", pa.float64()),
    ("bbox_w", pa.float64()),
    ("bbox_h", pa.float64()),
    ("image_width", pa.int32()),
    ("image_height", pa.int32()),
]

LVIS_INSTANCE_SCHEMA = pa.schema(
    [
        ("dataset", pa.string()),
        ("split", pa.string()),
        ("annotation_id", pa.int64()),
        ("image_id", pa.string()),
        ("category_id", pa.int64()),
        ("category_name", pa.string()),
        ("synset", pa.string()),
        ("frequency", pa.string()),
    ]
    + _BOX_FIELDS
    + [("area", pa.float64()), ("category_exhaustive", pa.bool_())]
)

# A mask as COCO compressed RLE, {"size": [h, w], "counts": str} (perception_tokens.masks):
# never a dense array in a row.
MASK_RLE_TYPE = pa.struct([("size", pa.list_(pa.int32())), ("counts", pa.string())])

REFCOCO_REF_SCHEMA = pa.schema(
    [
        ("dataset", pa.string()),
        ("split", pa.string()),
        ("ref_id", pa.int64()),
        ("ann_id", pa.int64()),
        ("image_id", pa.string()),
        ("category_id", pa.int64()),
        ("category_name", pa.string()),
        ("sentence_id", pa.int64()),
        ("sentence", pa.string()),
    ]
    + _BOX_FIELDS
    + [("mask_rle", MASK_RLE_TYPE)]
)

PSEUDO_DEPTH_SCHEMA = pa.schema(
    [
        ("dataset", pa.string()),
        ("split", pa.string()),
        ("image_id", pa.string()),
        ("image_sha256", pa.string()),
        ("teacher", pa.string()),
        ("width", pa.int32()),
        ("height", pa.int32()),
        ("depth_png", pa.binary()),  # uint8 grayscale, larger = nearer (Depth Anything --grayscale)
        ("raw_min", pa.float64()),
        ("raw_max", pa.float64()),
    ]
)

BOX_TOKEN_SCHEMA = pa.schema(
    [
        ("dataset", pa.string()),
        ("split", pa.string()),
        ("image_id", pa.string()),
        ("annotation_id", pa.int64()),
        ("ref_id", pa.int64()),  # RefCOCO only; null for LVIS
        ("category_id", pa.int64()),
        ("category_name", pa.string()),
        ("image_width", pa.int32()),
        ("image_height", pa.int32()),
        ("x1", pa.int16()),
        ("y1", pa.int16()),
        ("x2", pa.int16()),
        ("y2", pa.int16()),
        ("box_tokens", pa.string()),  # (<PIXEL_x1>,<PIXEL_y1>,<PIXEL_x2>,<PIXEL_y2>) on the 336 grid
    ]
)

DEPTH_TOKEN_SCHEMA = pa.schema(
    [
        ("dataset", pa.string()),
        ("split", pa.string()),
        ("image_id", pa.string()),
        ("image_sha256", pa.string()),
        ("teacher", pa.string()),
        ("vqvae_version", pa.string()),  # sha256 of the VQ-VAE weights the codes came from
        ("codes", pa.list_(pa.int16(), 100)),  # row-major 10x10
        ("depth_tokens", pa.string()),
    ]
)

MODEL_MANIFEST_SCHEMA = pa.schema(
    [
        ("model_id", pa.string()),  # sha256 of the weights file (first 16 hex)
        ("kind", pa.string()),  # "depth_vqvae" | "lora_adapter"
        ("path", pa.string()),  # folder with the weights and their config
        ("weights_file", pa.string()),
        ("sha256", pa.string()),
        ("config_json", pa.string()),
        ("metrics_json", pa.string()),
        ("inputs_json", pa.string()),  # data versions / identities of what it was trained on
        # no created_at: the row is hashed into the data version; the time is in the metadata
    ]
)

MARKED_POINTS_SCHEMA = pa.schema(
    [
        ("marked_id", pa.string()),
        ("dataset", pa.string()),
        ("split", pa.string()),
        ("image_id", pa.string()),
        ("variant", pa.string()),  # "beside" (BLINK) | "center" (HardBLINK pointscenter)
        ("n_points", pa.int8()),
        ("letters", pa.list_(pa.string())),
        ("xs", pa.list_(pa.int16())),  # on the 336x336 grid
        ("ys", pa.list_(pa.int16())),
        ("depth_values", pa.list_(pa.int16())),  # uint8 depth at the point (larger = nearer)
        ("answer", pa.string()),  # letter of the closest point
        ("labels_inside", pa.bool_()),
        ("marked_png", pa.binary()),  # the 336x336 image with markers
    ]
)

CURRICULUM_SCHEMA = pa.schema(
    [
        ("position", pa.int64()),
        ("epoch", pa.int32()),
        ("sample_id", pa.string()),
        ("task", pa.string()),
        ("kind", pa.string()),
        ("question", pa.string()),
        ("answer", pa.string()),
        ("target", pa.string()),
        ("dataset", pa.string()),
        ("image_id", pa.string()),
        ("annotation_ids", pa.list_(pa.int64())),
        ("ref_id", pa.int64()),
        ("depth_token_version", pa.string()),
        ("image_dataset", pa.string()),
        ("image_image_id", pa.string()),
        ("image_file", pa.string()),
        ("conversations", pa.string()),  # LLaVA conversations JSON
        ("mask_rle", MASK_RLE_TYPE),  # the referred object's mask (Perceptio's refer_segment); null otherwise
        # VPT samples (null otherwise): the training stage (1 align, 2 fine-tune) and a region sample's
        # target region, its cells [x0, y0, x1, y1] on the k x k grid and their pixel box [l, t, r, b)
        ("vpt_stage", pa.int32()),
        ("region_grid", pa.int32()),
        ("region_cells", pa.list_(pa.int32())),
        ("region_box_px", pa.list_(pa.int32())),
        # the LLaVA export this row is part of (the same on every row): how lora_adapter finds it
        ("llava_json", pa.string()),
        ("llava_image_folder", pa.string()),
        ("llava_json_sha256", pa.string()),
    ]
)

BENCHMARK_SCHEMA = pa.schema(
    [
        ("benchmark", pa.string()),
        ("subset", pa.string()),
        ("question_id", pa.string()),
        ("question", pa.string()),
        ("prompt", pa.string()),
        ("choices", pa.list_(pa.string())),
        ("valid_letters", pa.list_(pa.string())),
        ("gold", pa.string()),
        ("answer_type", pa.string()),  # "letter" | "number" | "mask" (gold: RLE JSON)
        ("image_file", pa.string()),
        ("image_bytes", pa.binary()),
        ("category", pa.string()),
        ("source", pa.string()),  # CV-Bench: ADE20K / COCO / Omni3D
        ("task", pa.string()),
        ("type", pa.string()),
        ("gt_box", pa.list_(pa.float64())),  # the ground-truth region [x0, y0, x1, y1], pixels (zoom); null elsewhere
    ]
)

# VPT (arXiv 2502.17425): one action the generation loop took (evaluation/vpt_actions.py). A region's
# cells are inclusive corners on the k x k grid; its crop box is PIL's (right/bottom exclusive), in
# pixels of the original image. A re-encoding action has null cells and box.
VPT_ACTION_TYPE = pa.struct([
    ("kind", pa.string()),  # "region" | "reencode"
    ("grid", pa.int32()),
    ("x_min", pa.int32()), ("y_min", pa.int32()), ("x_max", pa.int32()), ("y_max", pa.int32()),
    ("crop_left", pa.int32()), ("crop_top", pa.int32()), ("crop_right", pa.int32()), ("crop_bottom", pa.int32()),
    ("n_embeddings", pa.int32()),  # reencode: the projector's embeddings inserted
    ("answer_position", pa.int32()),  # answer tokens written before the action
])

EVAL_PREDICTION_SCHEMA = pa.schema(
    [
        ("eval_run_id", pa.string()),
        ("run_started_at", pa.string()),
        ("model_id", pa.string()),
        ("model_kind", pa.string()),
        ("benchmark", pa.string()),
        ("subset", pa.string()),
        ("question_id", pa.string()),
        ("mode", pa.string()),
        ("ablation", pa.string()),
        ("constrained", pa.bool_()),
        ("prompt_text", pa.string()),
        ("raw_output", pa.string()),
        ("pred", pa.string()),
        ("gold", pa.string()),
        ("correct", pa.bool_()),
        ("answer_type", pa.string()),
        ("valid_letters", pa.list_(pa.string())),
        ("depth_spans", pa.list_(pa.string())),
        ("depth_spans_valid", pa.list_(pa.bool_())),
        ("n_boxes", pa.int32()),
        ("n_new_tokens", pa.int32()),
        ("latency_s", pa.float64()),
        ("error", pa.string()),
        ("image_file", pa.string()),
        ("extra_json", pa.string()),
        ("variant", pa.string()),  # the experiment variant that produced the row; null without an experiment
        ("pred_mask", MASK_RLE_TYPE),  # mask benchmarks (refcoco_res): the predicted mask; null elsewhere
        # VPT adapters only (null for every other model): the actions taken, and the first region against gt_box
        ("gt_box", pa.list_(pa.float64())),  # the benchmark's ground-truth box, when it gives one
        ("n_actions", pa.int32()),
        ("actions", pa.list_(VPT_ACTION_TYPE)),
        ("region_iou", pa.float64()),
        ("region_iogt", pa.float64()),
    ]
)

EVAL_SCORE_SCHEMA = pa.schema(
    [
        ("eval_run_id", pa.string()),
        ("run_started_at", pa.string()),
        ("model_id", pa.string()),
        ("model_kind", pa.string()),
        ("mode", pa.string()),
        ("ablation", pa.string()),
        ("benchmark", pa.string()),
        ("subset", pa.string()),
        ("n", pa.int64()),
        ("n_not_run", pa.int64()),
        ("n_correct", pa.int64()),
        ("n_unparsed", pa.int64()),
        ("accuracy_pct", pa.float64()),
        ("ci_low_pct", pa.float64()),  # 95% bootstrap interval of accuracy_pct (10,000 resamples, seed 0)
        ("ci_high_pct", pa.float64()),
        ("chance_pct", pa.float64()),
        ("majority_pct", pa.float64()),
        ("paper_llava15_13b_pct", pa.float64()),
        ("paper_aurora_pct", pa.float64()),
        ("variant", pa.string()),  # the experiment variant; null without an experiment
        # mask benchmarks (refcoco_res): cIoU / gIoU and their bootstrap intervals; null elsewhere
        ("ciou_pct", pa.float64()),
        ("ciou_ci_low_pct", pa.float64()),
        ("ciou_ci_high_pct", pa.float64()),
        ("giou_pct", pa.float64()),
        ("giou_ci_low_pct", pa.float64()),
        ("giou_ci_high_pct", pa.float64()),
        # VPT runs (null otherwise): actions per answer; the first region against the GT box (evaluation/region_scores.py)
        ("mean_actions", pa.float64()),
        ("n_gt_box", pa.int64()),
        ("n_region", pa.int64()),
        ("region_iou_mean", pa.float64()),
        ("region_iou_ci_low", pa.float64()),
        ("region_iou_ci_high", pa.float64()),
        ("region_iogt_mean", pa.float64()),
        ("region_iogt_ci_low", pa.float64()),
        ("region_iogt_ci_high", pa.float64()),
    ]
)

# evaluation/paper_comparison.py: one row per benchmark x subset x experiment variant
PAPER_COMPARISON_SCHEMA = pa.schema(
    [
        ("benchmark", pa.string()),
        ("subset", pa.string()),
        ("variant", pa.string()),
        ("mode", pa.string()),  # the variant's headline (mode, ablation)
        ("ablation", pa.string()),
        ("eval_run_id", pa.string()),  # the variant's latest evaluation run
        ("n", pa.int64()),
        ("n_not_run", pa.int64()),
        ("n_correct", pa.int64()),
        ("accuracy_pct", pa.float64()),
        ("ci_low_pct", pa.float64()),  # 95% Wilson score interval
        ("ci_high_pct", pa.float64()),
        ("paper_method", pa.string()),  # the paper's row this variant stands for (evaluation/published.py)
        ("paper_pct", pa.float64()),
        *((f"vs_{ref}_{k}", t) for ref in ("base", "aurora")
          for k, t in (("n_paired", pa.int64()), ("only_variant", pa.int64()), ("only_other", pa.int64()), ("p_value", pa.float64()))),
    ]
)

# evaluation/decoded_depth.py: one row per relative-depth chain-of-thought answer of an experiment variant
DECODED_DEPTH_SCHEMA = pa.schema(
    [
        ("variant", pa.string()),
        ("eval_run_id", pa.string()),
        ("benchmark", pa.string()),
        ("subset", pa.string()),
        ("question_id", pa.string()),
        ("gold", pa.string()),
        ("model_answer", pa.string()),  # what the model answered in words
        ("decoded_answer", pa.string()),  # the marked point nearest on the map decoded from its own tokens
        ("decoded_correct", pa.bool_()),
        ("mse", pa.float64()),  # decoded vs teacher map, uint8 / 255, 336 x 336
        ("abs_rel", pa.float64()),
        ("problem", pa.string()),  # why a measure is missing (no valid span, no teacher map, marker positions unknown)
    ]
)
