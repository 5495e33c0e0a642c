"""Bad curriculum files at the training stage (``training.llava.data``): the same LLaVA
JSON cases as ``test_bad_input.py``, read by the fine-tuning loader. Kept apart because
it imports torch."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("torch")
from test_bad_input import corpus, fails_naming  # noqa: E402  (the corpus module, loaded by path there)
from training.llava.data import RecordError, load_records, safe_image_path  # noqa: E402


@pytest.fixture(scope="module")
def corpus_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("bad_corpus_training")


TRAINING_ERRORS = {
    "llava_missing_gpt_turn": ["record 1 (x2)", "no assistant ('gpt') turn"],
    "llava_malformed_json": ["malformed JSON"],
}


@pytest.mark.parametrize("name", list(TRAINING_ERRORS))
def test_training_loader_refuses_bad_curriculum_naming_file(corpus_dir, name):
    case_dir, info = corpus.make_case(name, corpus_dir)
    fails_naming(RecordError, load_records, case_dir / info["file"], TRAINING_ERRORS[name])


def test_training_loader_never_opens_an_image_outside_its_folder(corpus_dir):
    case_dir, info = corpus.make_case("llava_image_escapes", corpus_dir)
    (record,) = load_records(case_dir / info["file"])  # structure is fine; the path is checked on use
    with pytest.raises(RecordError) as err:
        safe_image_path(case_dir / "images", record["image"])
    assert "escapes the image folder" in str(err.value) and "../../etc/passwd" in str(err.value)


def test_training_loader_non_utf8_file_fails_naming_it(corpus_dir):
    case_dir, info = corpus.make_case("llava_not_utf8", corpus_dir)
    fails_naming(RecordError, load_records, case_dir / info["file"])
