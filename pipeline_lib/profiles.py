"""Profiles: named sets of defaults that sit under the config file's own values.

``profile: aurora`` gives every stage the reference implementation's settings (the
Aurora-perception repository; each value with its file:line in docs/FIDELITY.md).
``profile: perceptio`` gives Perceptio's (arXiv 2603.18795) where the paper states them, and
says what was chosen where it is silent (docs/FIDELITY.md "Perceptio: the profile").
``profile: vpt`` gives VPT's (arXiv 2502.17425) Qwen2-VL run (FIDELITY.md "VPT").
``profile: project`` (the default) keeps this project's own defaults. A value written in
the config file always wins over its profile's, so a researcher can start from ``aurora``
and change one thing, and the change shows in that section's fingerprint.
"""

from __future__ import annotations

import copy
from typing import Any

AURORA: dict[str, dict[str, Any]] = {
    # train splits only: ADE_train_*, lvis_v1_train, COCO train2017 (add_marks_ade.ipynb, create_bbox_annealing_data.ipynb cell 1)
    "datasets": {"ade20k_splits": ["training"], "lvis_splits": ["train"]},
    # Depth Anything V1 ViT-S run as run.py --grayscale (Aurora README.md:40-43; FIDELITY.md "Depth teacher")
    "depth": {"preset": "aurora"},
    # the reference AiT VQ-VAE and its schedule (FIDELITY.md "Depth tokenizer"), trained on the ADE20K
    # training maps only, one seeded permutation per epoch (ait_depth_vqvae.py:21, train_depth_vqvae_dist.py:83,156-158)
    "vqvae": {"preset": "aurora", "data": "ade20k_train", "shuffle": "permutation"},
    "curriculum": {
        "style": "aurora",
        # the reference's shipped selections, used when this clone holds them (ADE_500files.npy,
        # point_label_mappings.json, Bbox/train_ids.npy + cot_ids.npy, Bbox/plurals.json)
        "reference_repo": "Aurora-perception",
        # one skill per run: the depth model (create_depth_annealing_data.ipynb); counting is
        # [count_atomic, count_cot, count_direct] (create_bbox_annealing_data.ipynb)
        "tasks": ["depth_atomic", "depth_cot", "depth_direct"],
        "mixing": "sequential",
        "schedule": "aurora",
        "epochs": 10,
        "percents": [1.0, 0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1],
        # N: total_length = 20000 (create_depth_annealing_data.ipynb cell 3), 5000 (create_bbox_annealing_data.ipynb cell 7)
        "epoch_size_by_skill": {"depth": 20000, "count": 5000},
        "min_points": 2,
        "max_points": 5,
        "marked_max_images": 500,
        "marked_max_aspect_ratio": None,  # add_marks_ade.ipynb cell 2 resizes every image, however elongated
        "count_atomic_images": 5000,
        "count_cot_images": 250,
        "max_per_count": 1000,
        "seed": 0,
    },
    "finetune": {
        # finetune_task_lora_depth_annealing.sh:4-35: LoRA r 128 / alpha 256, lr 2e-4, projector 2e-5,
        # batch 16, 1 epoch, warm-up 0.03, cosine
        "lora_r": 128,
        "lora_alpha": 256,
        "lr": 0.0002,
        "projector_lr": 0.00002,
        "per_device_batch_size": 16,
        # the paper's 8 GPUs x 16: global batch 128 (per_device x nproc_per_node x grad_accum)
        "global_batch_size": 128,
        # new rows N(0, initializer_range): resize_token_embeddings on transformers 4.37.2 (train.py:981)
        "new_row_init": "model_init",
        "epochs": 1.0,
        "warmup_ratio": 0.03,
        "image_resize": "squash336_nearest",
        "conversation": "vicuna_v1",  # --version v1 (finetune_task_lora_depth_annealing.sh:11)
        "new_token_mode": "modules_to_save",  # all embed_tokens / lm_head rows train (train.py:980-991)
        "vocabulary": "per_skill",  # one skill's tokens per run (train.py:933-939, depth_data / coordinates_data)
    },
    "evaluation": {"max_new_tokens": 1024, "count_cot_instruction": "aurora", "conversation": "llava_v1",
                   # the paper's prompts (no choices for BLINK 2-point depth, CV-Bench counting); no box constraint;
                   # the reference's numerics: fp16, LoRA merged, batch 1 (builder.py, model_vqa.py)
                   "prompts": "paper", "constrain_boxes": False, "numerics": "reference"},
}

# Perceptio (arXiv 2603.18795): its settings where the paper gives them; each value with its section, and
# every choice where the paper is silent, in docs/FIDELITY.md "Perceptio: the profile". No code is released.
PERCEPTIO: dict[str, dict[str, Any]] = {
    # RefCOCO, RefCOCO+ and RefCOCOg (umd) all three (sec. 3.5 "Dataset Curation")
    "datasets": {"refer_datasets": ["refcoco", "refcoco+", "refcocog"]},
    # Depth Anything V2 (sec. 1, 3.2); the size is not given: the Large model, the strongest V2 released
    "depth": {"teacher": "depth_anything_hf", "version": 2, "model": "depth-anything/Depth-Anything-V2-Large-hf"},
    # a VQ-VAE codebook "inspired by" AiT (sec. 3.2: the reference AiT model), MSE reconstruction, trained on the
    # depth maps of the images the LLM is fine-tuned on, not one depth dataset (sec. 3.2)
    "vqvae": {"preset": "aurora", "data": "refer_train"},
    # every referring sentence once, in one instruction format (sec. 3.5); one stage (sec. 3.4)
    "curriculum": {"style": "perceptio", "tasks": ["refer_segment"], "epochs": 1, "seed": 0},
    "finetune": {
        # [SEG] -> SAM2 mask decoder, BCE + DICE (sec. 3.1, 3.4.2); the SAM2 size is not given: Large
        "segmentation": {"enabled": True, "sam2_checkpoint": "facebook/sam2.1-hiera-large"},
        # marker + token + count and the soft-merge reconstruction through the frozen VQ-VAE decoder (sec. 3.4.3;
        # lora_adapter then takes depth_vqvae as an input); the coefficients are in sec. 3.5, cut from our notes: 1.0 each
        "depth_losses": {"marker": 1.0, "token": 1.0, "count": 1.0, "reconstruction": 1.0},
        "epochs": 1.0,  # one fine-tuning stage (sec. 3.4)
    },
}

# VPT (arXiv 2502.17425) on Qwen2-VL; every value's source (paper section, or "paper silent: chose X") is in
# docs/FIDELITY.md "VPT"
VPT: dict[str, dict[str, Any]] = {
    "curriculum": {
        "tasks": ["vpt_region", "vpt_reencode", "vpt_plain"],  # Sec. 3.2: perception-token and plain samples mixed
        "vpt": {"grid": 8},  # Sec. 3.1: k = 8
    },
    "finetune": {
        "family": "qwen2_vl",  # Sec. 4: Qwen2-VL (2B, 7B)
        "checkpoint": "Qwen/Qwen2-VL-2B-Instruct",  # Sec. 4 / Table 1: the 2B + VPT headline
        "vpt": {
            "enabled": True,
            "grid": 8,  # Sec. 3.1
            "reencoder": "facebook/dinov2-base",  # Sec. 4.1: DINOv2 (size paper silent: chose base)
            "control_tokens": 1,  # Sec. 5.3: one control token is best
            "mask_modeling": 0.5,  # Sec. 3.2: 50% of the re-encoding samples
            "align_epochs": 1.0,  # Sec. 3.2 / 4.1: stage 1 aligns the projector (length paper silent: chose 1 epoch)
        },
    },
}

PROFILES: dict[str, dict[str, dict[str, Any]]] = {"project": {}, "aurora": AURORA, "perceptio": PERCEPTIO, "vpt": VPT}


# settings whose value is a group of options: a file's keys merge into the profile's key by key. Other
# mappings are values: a file's ``epoch_size_by_skill: {}`` replaces the profile's (aurora's demo clears N)
NESTED_OPTIONS = frozenset({"segmentation", "depth_losses", "vpt"})


def apply_profile(raw: dict[str, Any]) -> dict[str, Any]:
    """``raw`` with its profile's defaults filled in under every section (file values win). A group of
    options (``NESTED_OPTIONS``: ``finetune.segmentation``, ``finetune.depth_losses``, ``*.vpt``) is merged
    the same way, one level down, so ``segmentation: {sam2_checkpoint: tiny}`` keeps the profile's ``enabled``."""
    defaults = PROFILES[raw.get("profile", "project")]
    out = dict(raw)
    for section, values in defaults.items():
        given = out.get(section)
        if given is None:
            out[section] = copy.deepcopy(values)
        elif isinstance(given, dict):
            merged = {**copy.deepcopy(values), **given}
            for key in NESTED_OPTIONS & set(values):
                if isinstance(values[key], dict) and isinstance(given.get(key), dict):
                    merged[key] = {**copy.deepcopy(values[key]), **given[key]}
            out[section] = merged
    return out
