"""Scale-out configurations load: the k8s executor with GPU requests, object-storage IO manager,
and every shipped config file validates."""

from pathlib import Path

import dagster as dg
import pyarrow as pa
import pytest

from pipelines.definitions import build_definitions
from pipeline_lib.io_manager import ParquetIOManagerFactory
from pipeline_lib.settings import load_settings, settings_from_dict
from pipeline_lib.tables import TableHandle

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("name", ["demo.yaml", "demo-aurora.yaml", "real-gpu.yaml", "k8s.yaml"])
def test_shipped_configs_validate(name):
    s = load_settings(ROOT / "configs" / name)
    assert s.storage.root


def test_k8s_definitions_load_with_gpu_requests(tmp_path, monkeypatch):
    monkeypatch.setenv("PTOK_WORKDIR", str(tmp_path))
    settings = load_settings(ROOT / "configs" / "k8s.yaml")
    defs = build_definitions(settings)
    dg.Definitions.validate_loadable(defs)
    job = defs.resolve_job_def("finetune")
    assert job.executor_def.name == "k8s_job_executor"
    graph = defs.resolve_asset_graph()
    node = graph.assets_def_for_key(dg.AssetKey("lora_adapter"))
    import json

    tags = json.loads(node.op.tags["dagster-k8s/config"])  # Dagster stores structured tags as JSON
    assert tags["container_config"]["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert "dagster-k8s/config" not in graph.assets_def_for_key(dg.AssetKey("box_tokens")).op.tags


def test_local_definitions_use_multiprocess_with_limit(tmp_path, monkeypatch):
    monkeypatch.setenv("PTOK_WORKDIR", str(tmp_path))
    defs = build_definitions(settings_from_dict({"execution": {"max_concurrent": 3}}))
    job = defs.resolve_job_def("sources")
    assert job.executor_def.name == "multiprocess"


def test_io_manager_on_a_non_local_filesystem():
    """The IO manager against fsspec's in-memory filesystem, through a real materialization."""

    @dg.asset
    def numbers() -> pa.Table:
        return pa.table({"n": [1, 2, 3]})

    @dg.asset
    def total(numbers: TableHandle) -> pa.Table:
        return pa.table({"sum": [sum(numbers.read()["n"].to_pylist())]})

    io = ParquetIOManagerFactory(root="memory://ptok-io-test/storage")
    result = dg.materialize([numbers, total], resources={"io_manager": io})
    assert result.success
    from upath import UPath

    assert TableHandle([UPath("memory://ptok-io-test/storage/total.parquet")]).read()["sum"].to_pylist() == [6]


def test_real_gpu_config_is_the_aurora_profile():
    """configs/real-gpu.yaml: profile aurora; what the file does not set comes from the profile."""
    s = load_settings(ROOT / "configs" / "real-gpu.yaml")
    assert s.profile == "aurora"
    assert (s.curriculum.style, s.curriculum.mixing, s.datasets.lvis_splits) == ("aurora", "sequential", ["train"])
    assert (s.finetune.conversation, s.finetune.vocabulary, s.finetune.per_device_batch_size) == ("vicuna_v1", "per_skill", 16)
    assert (s.evaluation.max_new_tokens, s.evaluation.conversation) == (1024, "llava_v1")
    # Aurora's teacher (Depth Anything V1 ViT-S as run.py --grayscale) and the reference VQ-VAE
    assert (s.depth.preset, s.depth.version, s.depth.encoder, s.depth.resize) == ("aurora", 1, "vits", "keep_aspect")
    assert s.depth.checkpoint.endswith("depth_anything_vits14.pth")
    assert (s.vqvae.preset, s.vqvae.epochs, s.vqvae.batch_size, s.vqvae.lr_decay_every) == ("aurora", 20, 8, 500)


def test_aurora_profile_selects_the_reference_teacher_and_tokenizer_unless_the_file_says_otherwise():
    from pipeline_lib.profiles import apply_profile

    filled = apply_profile({"profile": "aurora"})
    assert filled["depth"] == {"preset": "aurora"}
    assert filled["vqvae"] == {"preset": "aurora", "data": "ade20k_train", "shuffle": "permutation"}
    # a section written in the file keeps its own values over the profile's
    mixed = apply_profile({"profile": "aurora", "depth": {"preset": "custom", "teacher": "ground_truth"}, "vqvae": {"preset": "tiny"}})
    assert mixed["depth"] == {"preset": "custom", "teacher": "ground_truth"} and mixed["vqvae"]["preset"] == "tiny"
    assert apply_profile({"profile": "project"}).get("depth") is None

