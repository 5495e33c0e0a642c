"""Executors: multiprocess on one machine by default; Kubernetes jobs (dagster-k8s) at scale.

Steps in the ``accelerator`` pool (pseudo_depth, depth_vqvae, depth_tokens, lora_adapter,
eval_predictions) ask Kubernetes for GPUs through the ``dagster-k8s/config`` tag, so the
same graph fans out as one pod per partition/step with GPU requests where it needs them.
"""

from __future__ import annotations

from typing import Any

import dagster as dg

GPU_ASSETS = ("pseudo_depth", "depth_vqvae", "depth_tokens", "lora_adapter", "eval_predictions")


def build_executor(execution) -> dg.ExecutorDefinition:
    if execution.executor == "k8s":
        from dagster_k8s import k8s_job_executor

        config: dict[str, Any] = {"job_namespace": execution.k8s_namespace, "max_concurrent": execution.max_concurrent}
        if execution.k8s_image:
            config["job_image"] = execution.k8s_image
        return k8s_job_executor.configured(config, name="k8s_job_executor")
    return dg.multiprocess_executor.configured({"max_concurrent": execution.max_concurrent}, name="multiprocess")


def gpu_op_tags(execution) -> dict[str, Any]:
    """Pod resources for GPU steps (read by the k8s executor; ignored by the local one)."""
    if execution.executor != "k8s" or execution.gpu_per_step == 0:
        return {}
    gpus = str(execution.gpu_per_step)
    return {"dagster-k8s/config": {"container_config": {"resources": {"limits": {"nvidia.com/gpu": gpus}, "requests": {"nvidia.com/gpu": gpus}}}}}
