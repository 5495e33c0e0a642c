"""depth_vqvae's code version follows the content of ``vqvae.init_checkpoint``, not only its path."""

import os

import dagster as dg

from assets.vqvae import build_vqvae_assets, init_checkpoint_fingerprint
from pipeline_lib.settings import settings_from_dict


def _code_version(ckpt_path) -> str:
    settings = settings_from_dict({"vqvae": {"init_checkpoint": str(ckpt_path), "epochs": 0}})
    (asset,), _checks = build_vqvae_assets(settings)
    return asset.code_versions_by_key[dg.AssetKey("depth_vqvae")]


def test_replaced_checkpoint_at_the_same_path_changes_the_code_version(tmp_path):
    ckpt = tmp_path / "vae-final.pt"
    ckpt.write_bytes(b"first checkpoint bytes")
    first = _code_version(ckpt)
    assert _code_version(ckpt) == first  # same content, same version

    ckpt.write_bytes(b"other checkpoint bytes")  # same size, same path
    os.utime(ckpt, ns=(1, 1))  # even with an old mtime the content decides
    second = _code_version(ckpt)
    assert second != first

    ckpt.write_bytes(b"first checkpoint bytes")  # the first content again
    assert _code_version(ckpt) == first


def test_project_checkpoint_directory_hashes_its_weights_and_config(tmp_path):
    d = tmp_path / "vq"
    d.mkdir()
    (d / "model.safetensors").write_bytes(b"weights-a")
    (d / "config.json").write_text('{"codebook_size": 128}')
    (d / "notes.txt").write_text("not part of the checkpoint")
    base = init_checkpoint_fingerprint(str(d))
    assert init_checkpoint_fingerprint(str(d / "model.safetensors")) == base  # the weights file names the same checkpoint

    (d / "notes.txt").write_text("edited")
    assert init_checkpoint_fingerprint(str(d)) == base
    (d / "model.safetensors").write_bytes(b"weights-b")
    after_weights = init_checkpoint_fingerprint(str(d))
    (d / "config.json").write_text('{"codebook_size": 64}')
    after_config = init_checkpoint_fingerprint(str(d))
    assert len({base, after_weights, after_config}) == 3


def test_no_init_checkpoint_keeps_the_plain_config_version(tmp_path):
    from assets.versioning import code_version

    settings = settings_from_dict({})
    (asset,), _checks = build_vqvae_assets(settings)
    # the section's settings, less nproc_per_node (how many processes train is not what is trained)
    # and the default float32 dtype (left out so that adding the field kept existing versions)
    plain = code_version("1", settings.vqvae.model_dump(mode="json", exclude={"nproc_per_node", "dtype"}))
    assert asset.code_versions_by_key[dg.AssetKey("depth_vqvae")] == plain
    assert init_checkpoint_fingerprint(None) is None
    missing = init_checkpoint_fingerprint(str(tmp_path / "absent.pt"))
    (tmp_path / "absent.pt").write_bytes(b"now present")
    assert init_checkpoint_fingerprint(str(tmp_path / "absent.pt")) != missing
