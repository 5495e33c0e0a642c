"""The code location loads: every asset, check, job, schedule and sensor resolves."""

import dagster as dg

from pipelines.definitions import build_definitions, defs
from pipeline_lib.settings import settings_from_dict

EXPECTED_GROUPS = {"sources", "depth", "tokens", "curriculum", "finetune"}


def test_module_level_definitions_validate():
    dg.Definitions.validate_loadable(defs)
    repo = defs.get_repository_def()
    repo.load_all_definitions()
    graph = defs.resolve_asset_graph()
    keys = {k.to_user_string() for k in graph.materializable_asset_keys}
    for name in ("ade20k_images", "pseudo_depth", "depth_vqvae", "depth_tokens", "box_tokens", "marked_points", "curriculum", "lora_adapter"):
        assert name in keys
    for key in graph.materializable_asset_keys:
        node = graph.get(key)
        assert node.group_name in EXPECTED_GROUPS | {"evaluation"}, key
        assert node.description, f"{key} has no description"
        assert "parquet" in node.kinds, f"{key} is not marked as a parquet asset"
        assert node.code_version, f"{key} has no code version"
        assert node.owners and node.owners[0].startswith("team:"), f"{key} has no owner"
    for job in repo.get_all_jobs():
        assert job.name
    check_names = {k.name for k in graph.asset_check_keys}
    assert {"vqvae_closest_point_upper_bound", "curriculum_tokens_parse", "lora_adapter_learned"} <= check_names


def test_definitions_follow_config(tmp_path, monkeypatch):
    monkeypatch.setenv("PTOK_WORKDIR", str(tmp_path))
    d = build_definitions(settings_from_dict({"datasets": {"num_shards": 3}}))
    pd = d.resolve_asset_graph().get(dg.AssetKey("pseudo_depth")).partitions_def
    assert len(pd.get_partition_keys()) == 3 * 3  # 3 datasets x 3 shards
