"""The shared guards behind the hardening fixes: path lookup that never raises a bare
OSError, names that stay writable, ids that fit int64, numbers that are finite."""

from __future__ import annotations

import os
from pathlib import Path

import pyarrow as pa
import pytest

from evaluation.benchmarks.records import reject as bench_reject
from evaluation.benchmarks.records import read_image_file as bench_read_image_file
from perception_tokens import schemas
from perception_tokens.datasets.records import (
    Reject,
    box_problem,
    finite_number,
    int_problem,
    read_image_file,
    size_problem,
)
from perception_tokens.paths import UnsafePathError, UnusablePathError, file_kind, printable_name, safe_join

LONG = "9" * 300 + ".jpg"  # over NAME_MAX (255 bytes)


def test_file_kind_tells_apart_file_directory_missing_and_unusable(tmp_path):
    (tmp_path / "a.jpg").write_bytes(b"x")
    assert file_kind(tmp_path / "a.jpg") == "file"
    assert file_kind(tmp_path) == "directory"
    assert file_kind(tmp_path / "nope.jpg") == "missing"
    assert file_kind(tmp_path / "a.jpg" / "below") == "missing"  # a parent is a file (ENOTDIR)
    with pytest.raises(UnusablePathError) as err:
        file_kind(tmp_path / LONG)
    assert err.value.why == "File name too long"


def test_printable_name_shows_the_bytes_of_a_non_utf8_name():
    assert printable_name("caf\u00e9.jpg") == "caf\u00e9.jpg"
    on_disk = os.fsdecode(b"ADE_\xff.jpg")  # what os.listdir hands back
    assert printable_name(on_disk) == "b'ADE_\\xff.jpg'"
    assert printable_name("\ud800.jpg") == "b'\\xed\\xa0\\x80.jpg'"  # lone surrogate from a JSON escape


def test_safe_join_refuses_a_name_no_file_can_have(tmp_path):
    with pytest.raises(UnsafePathError) as err:
        safe_join(tmp_path, "\ud800.jpg")
    assert err.value.why == "name cannot be encoded for the file system"


@pytest.mark.parametrize(
    "relative, reason",
    [
        (LONG, "unusable image path: File name too long"),
        ("\ud800.jpg", "path escapes image root: name cannot be encoded for the file system"),
    ],
)
def test_dataset_image_reader_rejects_unusable_names_with_a_writable_reject(tmp_path, relative, reason):
    got = read_image_file(tmp_path, relative, dataset="lvis", stage="lvis_images", record_id="7")
    assert isinstance(got, Reject) and got.reason == reason
    pa.Table.from_pylist([got.as_row()], schema=schemas.REJECT_SCHEMA)


def test_benchmark_image_reader_rejects_a_long_name(tmp_path):
    assert bench_read_image_file(tmp_path, LONG).startswith("unusable image path: File name too long")
    (tmp_path / "d.png").mkdir()
    assert bench_read_image_file(tmp_path, "d.png") == "image 'd.png' is not a regular file"


def test_rejects_with_surrogates_are_made_writable():
    bad = os.fsdecode(b"/data/ADE_\xfe.jpg")
    rej = Reject("ade20k", "ade20k_images", bad, "ADE_\udcfe", "bad")
    assert rej.file == "b'/data/ADE_\\xfe.jpg'" and rej.record_id == "b'ADE_\\xfe'"
    pa.Table.from_pylist([rej.as_row()], schema=schemas.REJECT_SCHEMA)
    assert bench_reject("HardBLINK", bad, "1", "x").file == "b'/data/ADE_\\xfe.jpg'"


@pytest.mark.parametrize(
    "value, problem",
    [
        (2**63 - 1, None),
        (-(2**63), None),
        (2**63, "id 9223372036854775808 is outside the signed 64-bit range"),
        (-(2**63) - 1, "id -9223372036854775809 is outside the signed 64-bit range"),
        (True, "id True is not an integer"),
        ("3", "id '3' is not an integer"),
    ],
)
def test_int_problem_bounds_ids_to_int64(value, problem):
    assert int_problem("id", value) == problem


@pytest.mark.parametrize(
    "value, expected",
    [(3, 3.0), (2.5, 2.5), (float("nan"), None), (float("inf"), None), (10**400, None), ("1", None), (False, None)],
)
def test_finite_number(value, expected):
    assert finite_number(value) == expected


def test_box_with_an_int_too_big_for_a_float_is_a_problem_not_a_crash():
    assert box_problem([0, 0, 10**400, 5], 64, 48) == f"bbox {[0, 0, 10**400, 5]!r} has non-finite values"


def test_image_size_must_fit_the_int32_column():
    assert size_problem(2**31, 5) == f"width/height {2**31}x5 too large"
    assert size_problem(2**31 - 1, 5) is None


def test_ref_with_an_id_past_int64_is_rejected(tmp_path):
    """RefCOCO ref/ann/sentence ids land in int64 columns too."""
    import importlib.util
    import pickle
    import sys

    from perception_tokens.datasets.records import split_rows
    from perception_tokens.datasets.refcoco import iter_refcoco_refs, read_refcoco

    script = Path(__file__).resolve().parents[1] / "data" / "bad" / "make_bad_corpus.py"
    if "make_bad_corpus" not in sys.modules:
        spec = importlib.util.spec_from_file_location("make_bad_corpus", script)
        module = importlib.util.module_from_spec(spec)
        sys.modules["make_bad_corpus"] = module
        spec.loader.exec_module(module)
    corpus = sys.modules["make_bad_corpus"]
    demo = corpus.build_base(tmp_path) / "demo" / "refcoco"
    refs = pickle.loads((demo / "refs(unc).p").read_bytes())  # trusted: our own demo file
    refs[0]["ref_id"] = 2**64
    refs[1]["sentences"][0]["sent_id"] = -(2**70)
    refs_path = tmp_path / "refs.p"
    refs_path.write_bytes(pickle.dumps(refs, protocol=2))
    rows, rejects = split_rows(iter_refcoco_refs(read_refcoco(refs_path, demo / "instances.json")))
    assert sum(len(r["sentences"]) for r in refs) == len(rows) + len(rejects)
    reasons = sorted(r.reason for r in rejects)
    assert len(rejects) == len(refs[0]["sentences"]) + 1
    assert reasons[0] == f"malformed ref: ref_id {2**64} is outside the signed 64-bit range"
    assert f"malformed sentence: sent_id {-(2**70)} is outside the signed 64-bit range" in reasons
    pa.Table.from_pylist(rows, schema=schemas.REFCOCO_REF_SCHEMA)
