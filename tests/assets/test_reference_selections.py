"""profile aurora uses the selections the reference ships, in their official formats, when a
clone holds them: ADE_500files.npy (which ADE20K images get marked points) and
point_label_mappings.json (the points), Bbox/train_ids.npy + cot_ids.npy (the counting images)
and plurals.npy converted once to JSON without unpickling. Absent files fall back to the seeded
draw and the asset's metadata says so; a file named by its own setting must exist."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pytest

from asset_unit_helpers import make_settings, materialization_metadata, materialize_asset, read_rows, write_input
from perception_tokens import schemas
from perception_tokens.curriculum.reference_files import load_id_array, load_marked_files, read_plurals_npy
from perception_tokens.depth import encode_png
from perception_tokens.safe_pickle import UnsafePickleError
from pipeline_lib.reference_selections import selection
from pipeline_lib.settings import settings_from_dict


def _reference_repo(tmp_path, files: list[str], mappings: dict) -> str:
    repo = tmp_path / "Aurora-perception"
    (repo / "AiT" / "vae").mkdir(parents=True)
    np.save(repo / "AiT" / "vae" / "ADE_500files.npy", np.array(files))  # '<U22', as the reference's
    (repo / "AiT" / "vae" / "point_label_mappings.json").write_text(json.dumps(mappings, indent=2))
    return str(repo)


def _seed_depth(settings, manifest):
    materialize_asset(settings, "ade20k_images")
    ids = manifest.image_ids["ade20k"]
    ramp = np.tile((np.arange(96) * 255 // 95).astype(np.uint8), (72, 1))
    for dataset in ("ade20k", "lvis", "refcoco"):
        rows = [{"dataset": "ade20k", "split": manifest.image_splits["ade20k"][i], "image_id": i, "image_sha256": "s", "teacher": "t",
                 "width": 96, "height": 72, "depth_png": encode_png(ramp), "raw_min": 0.0, "raw_max": 1.0}
                for i in ids] if dataset == "ade20k" else []
        write_input(settings, "pseudo_depth", schemas.PSEUDO_DEPTH_SCHEMA, rows, partition=(dataset, "0"))
    write_input(settings, "lvis_images", schemas.LVIS_IMAGE_SCHEMA, [])
    write_input(settings, "refcoco_images", schemas.REFCOCO_IMAGE_SCHEMA, [])
    return ids


def test_marked_points_use_the_reference_images_and_points(tiny_world, tmp_path):
    _, manifest = tiny_world
    ids = manifest.image_ids["ade20k"]
    given = {"B": {"coordinate": [73, 188], "depth": 15.0}, "A": {"coordinate": [191, 77], "depth": 38.0},
             "C": {"coordinate": [77, 79], "depth": 60.0}}
    # two of the world's three images are listed (plus one this world lacks); the first has its points in the file
    repo = _reference_repo(tmp_path, [f"{ids[0]}.jpg", f"{ids[2]}.jpg", "ADE_train_09999999.jpg"], {f"{ids[0]}.jpg": given})
    settings = make_settings(tmp_path, curriculum={"style": "aurora", "reference_repo": repo})
    _seed_depth(settings, manifest)
    result = materialize_asset(settings, "marked_points")
    rows = {r["image_id"]: r for r in read_rows(settings, "marked_points")}
    assert sorted(rows) == sorted([ids[0], ids[2]])  # the list, not a hashed fraction
    r = rows[ids[0]]
    assert (r["letters"], r["xs"], r["ys"], r["depth_values"], r["answer"]) == (["B", "A", "C"], [73, 191, 77], [188, 77, 79],
                                                                               [15, 38, 60], "C")
    assert r["marked_id"] == f"ade20k:{ids[0]}:aurora3"
    meta = materialization_metadata(result, "marked_points")
    assert meta["selection_marked_images_file"] == f"reference file {repo}/AiT/vae/ADE_500files.npy"
    assert meta["selection_marked_points_file"] == f"reference file {repo}/AiT/vae/point_label_mappings.json"


def test_absent_reference_files_fall_back_to_the_seeded_draw_and_say_so(tiny_world, tmp_path):
    _, manifest = tiny_world
    empty = tmp_path / "no-clone"
    settings = make_settings(tmp_path, curriculum={"style": "aurora", "reference_repo": str(empty), "marked_fraction": 1.0})
    _seed_depth(settings, manifest)
    result = materialize_asset(settings, "marked_points")
    assert len(read_rows(settings, "marked_points")) == 3  # every image drawn (marked_fraction 1)
    meta = materialization_metadata(result, "marked_points")
    assert meta["selection_marked_images_file"] == f"{empty}/AiT/vae/ADE_500files.npy absent: seeded draw"


def test_count_ids_and_plurals_selection(tmp_path):
    repo = tmp_path / "Aurora-perception"
    (repo / "Bbox").mkdir(parents=True)
    np.save(repo / "Bbox" / "train_ids.npy", np.array([308487, 265715], dtype=np.int64))
    settings = settings_from_dict({"curriculum": {"style": "aurora", "reference_repo": str(repo)}})
    half = selection(settings, "count_image_ids")
    assert not half.present and half.describe() == f"{repo}/Bbox absent: seeded draw"  # cot_ids.npy missing
    np.save(repo / "Bbox" / "cot_ids.npy", np.array([551288], dtype=np.int64))
    both = selection(settings, "count_image_ids")
    assert both.usable_path == str(repo / "Bbox")
    assert load_id_array(repo / "Bbox" / "train_ids.npy") == ["308487", "265715"]
    assert selection(settings, "plurals_file").describe() == f"{repo}/Bbox/plurals.json absent: rule-based plurals"
    missing = settings_from_dict({"curriculum": {"plurals_file": str(tmp_path / "typo.json")}})
    with pytest.raises(FileNotFoundError, match="curriculum.plurals_file names .*typo.json"):
        selection(missing, "plurals_file")


def test_object_arrays_are_refused_where_plain_arrays_are_expected(tmp_path):
    path = tmp_path / "ADE_500files.npy"
    np.save(path, np.array(["ADE_train_1.jpg", {"x": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(ValueError, match="not a plain string array"):
        load_marked_files(path)


def test_plurals_npy_converts_to_json_without_running_code(tmp_path):
    from pipelines.cli import main

    plurals = {"aerosol can": "aerosol cans", "bus (vehicle)": "buses", "café chair": "café chairs"}
    source = tmp_path / "plurals.npy"
    np.save(source, np.array(plurals, dtype=object), allow_pickle=True)  # the reference's format: a 0-d object array
    assert read_plurals_npy(source) == plurals
    assert main(["convert-plurals", str(source)]) == 0
    assert json.loads((tmp_path / "plurals.json").read_text(encoding="utf-8")) == plurals

    class Payload:  # a pickle that would run os.system when loaded
        def __reduce__(self):
            import os
            return (os.system, ("echo pwned",))

    evil = tmp_path / "evil.npy"
    header = source.read_bytes()[:source.read_bytes().index(b"\n") + 1]
    evil.write_bytes(header + pickle.dumps(Payload(), protocol=3))
    with pytest.raises(UnsafePickleError, match="refused to unpickle global"):
        read_plurals_npy(evil)
