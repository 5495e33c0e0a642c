"""The benchmark registry: the one list of benchmarks the project evaluates on.

Every other place derives from it: the ``evaluation.roots`` / ``evaluation.images``
settings are validated against :func:`names`, ``ptok eval/score --benchmark`` take their
choices from it, the Dagster graph has one ``benchmark_<name>`` asset per entry (the
evaluation asset reads them all), the demo mode finds each set's folder here, and
``ptok score`` reads subsets through :func:`read_subsets`.

Adding a benchmark: write its reader (a module in this package yielding rows and
:func:`~evaluation.benchmarks.records.reject` records) and add one :class:`BenchmarkSpec`
to :data:`BUILTIN` below (or call :func:`register` from your own code). See CONTRIBUTING.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Iterator, Literal, Sequence

from evaluation.benchmarks import blink, counting, cvbench, hardblink, refcoco_res, zoom
from evaluation.benchmarks.records import MissingBenchmarkFile, Reject
from perception_tokens.named_registry import NamedRegistry

# (root, subsets or None, images folder or None) -> rows and rejects. ``subsets=None`` reads
# what the pipeline evaluates by default; a subset named must be present.
Reader = Callable[[Path, "Sequence[str] | None", "Path | None"], Iterator["dict | Reject"]]


@dataclass(frozen=True)
class BenchmarkSpec:
    """One benchmark: how it is laid out on disk, read, split and answered."""

    name: str  # key in config, CLI and asset names (benchmark_<name>)
    title: str  # the ``benchmark`` value on its rows, e.g. "HardBLINK"
    read: Reader
    subsets: tuple[str, ...]  # every subset name its rows can carry
    # "mask": the answer is a segmentation mask (gold: RLE JSON), scored by cIoU/gIoU
    # (evaluation.segmentation_metrics), not by the text answer parser
    answer_type: Literal["letter", "number", "mask"]
    layout: str  # the published on-disk layout, one line (help texts, docs)
    demo_dir: str | None = None  # its folder under the demo benchmarks root; None: no demo set
    # released without images (Aurora's counting sets): evaluation also needs an image folder
    # (evaluation.images.<name>, --images), defaulting to <root>/images
    needs_image_folder: bool = False
    demo_images_dir: str | None = None  # the demo's image folder, when needs_image_folder
    # question ids restart in every subset: an answers file must say which subset it is for
    ids_repeat_across_subsets: bool = False
    # subsets ``ptok score`` reads when none is named; None: the reader's default
    present_subsets: Callable[[Path], list[str]] | None = None

    def __post_init__(self) -> None:
        if not self.name.isidentifier() or self.name != self.name.lower():
            raise ValueError(f"benchmark name {self.name!r} must be a lower-case identifier (it names an asset)")
        if self.demo_images_dir is not None and not self.needs_image_folder:
            raise ValueError(f"{self.name}: demo_images_dir is only for a benchmark that needs an image folder")


def _read_hardblink(root: Path, subsets: Sequence[str] | None, images: Path | None):
    counts = None if subsets is None else [int(s.removesuffix("points")) for s in subsets]
    return hardblink.read_hardblink(root, point_counts=counts)


def _read_blink(root: Path, subsets: Sequence[str] | None, images: Path | None):
    return blink.read_blink(root, subtasks=subsets)


def _blink_present(root: Path) -> list[str]:
    present = blink.present_subtasks(root)
    if not present:
        raise MissingBenchmarkFile(blink.BENCHMARK, "val split of any subtask (<Subtask>/val-*.parquet)", root)
    return present


def _read_cvbench(root: Path, subsets: Sequence[str] | None, images: Path | None):
    return cvbench.read_cvbench(root, tasks=subsets)


def _read_refcoco_res(root: Path, subsets: Sequence[str] | None, images: Path | None):
    return refcoco_res.read_refcoco_res(root, subsets, images)


def _read_zoom(root: Path, subsets: Sequence[str] | None, images: Path | None):
    return zoom.read_zoom(root, subsets)


def _counting_reader(title: str, prefix: str) -> Reader:
    def read(root: Path, subsets: Sequence[str] | None, images: Path | None):
        return counting.read_counting_jsonl(root, title, prefix, images=images)
    return read


BUILTIN: tuple[BenchmarkSpec, ...] = (
    BenchmarkSpec(
        "hardblink", hardblink.BENCHMARK, _read_hardblink,
        tuple(hardblink.subset_name(n) for n in hardblink.POINT_COUNTS), "letter",
        "questions/blink_{3,4,5}pointscenter_questions.jsonl, answers/..._answers.jsonl, images/blink{n}pointscenter/",
        demo_dir="hardblink", ids_repeat_across_subsets=True),
    BenchmarkSpec(
        "blink", blink.BENCHMARK, _read_blink, blink.BLINK_SUBTASKS, "letter",
        "<Subtask>/val-*.parquet (Hugging Face BLINK-Benchmark/BLINK)",
        demo_dir="blink", present_subsets=_blink_present),
    BenchmarkSpec(
        "cvbench", cvbench.BENCHMARK, _read_cvbench, cvbench.TASKS, "letter",
        "test_2d.parquet, test_3d.parquet (Hugging Face nyu-visionx/CV-Bench)",
        demo_dir="cvbench"),
    BenchmarkSpec(
        "blink_counting", counting.BLINK_COUNT[0], _counting_reader(*counting.BLINK_COUNT), ("count",), "number",
        "blinkcounting_{questions,answers}.jsonl, images apart",
        demo_dir="blink_counting", needs_image_folder=True, demo_images_dir="counting_images/blink_counting"),
    BenchmarkSpec(
        "seed_counting", counting.SEED_COUNT[0], _counting_reader(*counting.SEED_COUNT), ("count",), "number",
        "seedbench_{questions,answers}.jsonl, images apart",
        demo_dir="seedbench", needs_image_folder=True, demo_images_dir="counting_images/seedbench"),
    BenchmarkSpec(
        "refcoco_res", refcoco_res.BENCHMARK, _read_refcoco_res, refcoco_res.SUBSETS, "mask",
        "refer data/: refcoco/refs(unc).p, refcoco+/refs(unc).p, refcocog/refs(umd).p, each beside its instances.json; "
        "COCO train2014 images apart",
        demo_dir="refcoco_res", needs_image_folder=True, demo_images_dir="refcoco_res/coco/train2014",
        ids_repeat_across_subsets=True, present_subsets=refcoco_res.present_subsets),
    BenchmarkSpec(
        "zoom", zoom.BENCHMARK, _read_zoom, zoom.SUBSETS, "letter",
        "questions.jsonl ({question_id, category, image, question, choices, answer, bbox [x, y, w, h]}) + images/ "
        "(the project's format: evaluation/benchmarks/zoom.py)",
        demo_dir="zoom"),
)

_REGISTRY: NamedRegistry[BenchmarkSpec] = NamedRegistry("benchmark", BUILTIN)
# Add a benchmark (before the graph or the CLI is built; once per name) / remove one (tests do).
register, unregister = _REGISTRY.register, _REGISTRY.unregister
names = _REGISTRY.names  # every registered benchmark name, in registration order
specs = _REGISTRY.values
get = _REGISTRY.get


def check_names(keys: Iterable[str], where: str, *, needs_image_folder: bool = False) -> None:
    """Raise naming ``where`` (a settings field) if a key is no registered benchmark (or, with
    ``needs_image_folder``, none released without images)."""
    valid = [s.name for s in specs() if s.needs_image_folder or not needs_image_folder]
    bad = [k for k in keys if k not in valid]
    if bad:
        raise ValueError(f"{where}: {bad} not among the benchmarks {valid}")


def require_text_answers(name: str) -> None:
    """Raise (naming the benchmark) when its answers are masks: text generation and answer files
    cannot answer it; its masks come from the segmentation head and are scored by cIoU/gIoU."""
    if get(name).answer_type == "mask":
        raise ValueError(f"{name}: the answers are masks, not text; they are scored by cIoU/gIoU from "
                         "eval_predictions.pred_mask (evaluation.segmentation_metrics), not by text answers")


def read_benchmark(name: str, root: str | Path, images: str | Path | None = None) -> Iterator[dict | Reject]:
    """Rows (or Rejects) of what the pipeline evaluates on ``name`` under ``root``."""
    spec = get(name)
    return _checked(spec, spec.read(Path(root), None, None if images is None else Path(images)))


def read_subsets(name: str, root: str | Path, subset: str | None = None,
                 images: str | Path | None = None) -> Iterator[dict | Reject]:
    """Rows (or Rejects) of ``subset`` only, or of every subset present when it is None."""
    spec = get(name)
    root, images = Path(root), None if images is None else Path(images)
    if subset is not None:
        if subset not in spec.subsets:
            raise ValueError(f"{name} has no subset {subset!r}; its subsets are {list(spec.subsets)}")
        return _checked(spec, spec.read(root, [subset], images))
    return _checked(spec, spec.read(root, spec.present_subsets(root) if spec.present_subsets else None, images))


def _checked(spec: BenchmarkSpec, items: Iterator[dict | Reject]) -> Iterator[dict | Reject]:
    """The reader's output, each row held to the spec: its ``benchmark`` and ``answer_type``
    (scoring parses answers by them); a mismatch is a reader bug, not a bad record."""
    for item in items:
        if isinstance(item, dict) and (item.get("benchmark"), item.get("answer_type")) != (spec.title, spec.answer_type):
            raise ValueError(f"the {spec.name} reader yielded a row of benchmark {item.get('benchmark')!r} with "
                             f"answer_type {item.get('answer_type')!r}; its spec says {spec.title!r}, {spec.answer_type!r}")
        yield item
