"""Referring-expression segmentation (RES) on RefCOCO, RefCOCO+ and RefCOCOg, the benchmark
Perceptio reports (cIoU per split; arXiv 2603.18795, abstract and section 3.5).

Layout: the refer toolkit's ``data/`` folder (github.com/lichengunc/refer) as ``root``:
``refcoco/{refs(unc).p, instances.json}``, ``refcoco+/{refs(unc).p, instances.json}``,
``refcocog/{refs(umd).p, instances.json}``; the COCO ``train2014`` images apart (the images
folder, default ``<root>/images``; ``COCO_train2014_*.jpg`` directly in it or under
``train2014/``). The files are read by the dataset reader
(:mod:`perception_tokens.datasets.refcoco`: restricted unpickler, pycocotools), so a
malformed ref, annotation or polygon becomes a reject here as it does in training data.

One row per referring sentence of the evaluation splits: ``subset`` is ``<dataset>_<split>``
(``refcoco_testA``, ``refcocog_val``), ``question`` the sentence, ``gold`` the referred
object's mask as compressed-RLE JSON ``{"size": [h, w], "counts": str}`` and ``answer_type``
``"mask"``. The model's answer is a mask in the same form (``eval_predictions.pred_mask``),
scored by :mod:`evaluation.segmentation_metrics`.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Iterator, Sequence

from evaluation.benchmarks.records import BenchmarkFileError, MissingBenchmarkFile, Reject, read_image_file, reject
from perception_tokens.datasets.records import DatasetFormatError
from perception_tokens.datasets.refcoco import REFER_DATASETS, image_relative_path, iter_refcoco_refs, read_refer_dataset

BENCHMARK = "RefCOCO-RES"
# the splits each dataset is evaluated on (UNC for RefCOCO/RefCOCO+, UMD for RefCOCOg)
EVAL_SPLITS = {"refcoco": ("val", "testA", "testB"), "refcoco+": ("val", "testA", "testB"), "refcocog": ("val", "test")}
SUBSETS = tuple(f"{d}_{s}" for d, splits in EVAL_SPLITS.items() for s in splits)
# The paper gives no evaluation prompt (section 3.3: "lightweight prompt templates with special
# tokens"); this one is LISA's / Sa2VA's RES question. The curriculum may replace it.
RES_PROMPT = "Please segment the object this sentence refers to: {sentence}"


def _refs_file(root: Path, dataset: str) -> Path:
    folder, refs_name = REFER_DATASETS[dataset]
    return root / folder / refs_name


def present_subsets(root: Path) -> list[str]:
    """The subsets of every dataset whose refs file is under ``root``."""
    present = [s for d in EVAL_SPLITS if _refs_file(Path(root), d).is_file() for s in SUBSETS if s.startswith(f"{d}_")]
    if not present:
        raise MissingBenchmarkFile(BENCHMARK, "refs file of any of refcoco/refs(unc).p, refcoco+/refs(unc).p, "
                                   "refcocog/refs(umd).p", Path(root))
    return present


def _wanted(root: Path, subsets: Sequence[str] | None) -> dict[str, set[str]]:
    names = present_subsets(root) if subsets is None else list(subsets)
    wanted: dict[str, set[str]] = {}
    for name in names:
        if name not in SUBSETS:
            raise ValueError(f"{BENCHMARK} has no subset {name!r}; its subsets are {list(SUBSETS)}")
        dataset, split = name.rsplit("_", 1)
        wanted.setdefault(dataset, set()).add(split)
    return wanted


def read_refcoco_res(root: str | Path, subsets: Sequence[str] | None = None,
                     images: str | Path | None = None) -> Iterator[dict | Reject]:
    """Rows (or Rejects) of the RES evaluation splits named in ``subsets`` (default: every
    split of every dataset present under ``root``)."""
    root = Path(root)
    image_root = Path(images) if images is not None else root / "images"
    if not image_root.is_dir():
        raise MissingBenchmarkFile(BENCHMARK, "COCO train2014 image folder", image_root)
    for dataset, splits in _wanted(root, subsets).items():
        refs_file = _refs_file(root, dataset)
        if not refs_file.is_file():
            raise MissingBenchmarkFile(BENCHMARK, f"{dataset} refs file", refs_file)
        try:
            index = read_refer_dataset(refs_file.parent, dataset)
        except DatasetFormatError as exc:  # the message names the file
            raise BenchmarkFileError(f"{BENCHMARK}: {exc}") from exc
        # only the evaluation splits' refs; anything that is not a ref dict stays, to be rejected
        index = dataclasses.replace(index, refs=[r for r in index.refs
                                                 if not isinstance(r, dict) or r.get("split") in splits])
        yield from _rows(dataset, index, image_root)


def _rows(dataset: str, index, image_root: Path) -> Iterator[dict | Reject]:
    cached: tuple[str, str, bytes | str] | None = None  # refs come grouped by image: keep the last one
    for item in iter_refcoco_refs(index):
        if isinstance(item, Reject):
            yield reject(BENCHMARK, item.file, f"{dataset} {item.record_id}", item.reason)
            continue
        if cached is None or cached[0] != item["image_id"]:
            img = index.coco.imgs[int(item["image_id"])]
            name = img["file_name"]
            rel = image_relative_path(image_root, name) if isinstance(name, str) else name
            cached = (item["image_id"], rel, read_image_file(image_root, rel))
        _, rel, image = cached
        qid = f"{dataset} ref {item['ref_id']} sentence {item['sentence_id']}"
        if isinstance(image, str):
            yield reject(BENCHMARK, str(index.refs_path), qid, image)
            continue
        yield {
            "benchmark": BENCHMARK,
            "subset": f"{dataset}_{item['split']}",
            "question_id": str(item["sentence_id"]),
            "question": item["sentence"],
            "prompt": RES_PROMPT.format(sentence=item["sentence"]),
            "choices": None,
            "valid_letters": [],
            "gold": json.dumps(item["mask_rle"], separators=(",", ":")),
            "image_bytes": image,
            "image_file": rel,
            "answer_type": "mask",
            "category": item["category_name"],
            "source": dataset,
            "task": "referring_segmentation",
        }
