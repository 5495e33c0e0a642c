"""One curriculum sample: a question, an answer and the ids that lead back to pixels."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

TASKS = (
    "depth_atomic",
    "depth_cot",
    "depth_direct",
    "count_atomic",
    "count_cot",
    "count_direct",
    "ground_atomic",
    "ground_depth",
    "refer_segment",
    "vpt_region",
    "vpt_reencode",
    "vpt_plain",
)
VPT_TASKS = ("vpt_region", "vpt_reencode", "vpt_plain")
Kind = Literal["atomic", "cot", "direct"]
KINDS = ("atomic", "cot", "direct")
TASK_KIND: dict[str, str] = {
    "depth_atomic": "atomic",
    "depth_cot": "cot",
    "depth_direct": "direct",
    "count_atomic": "atomic",
    "count_cot": "cot",
    "count_direct": "direct",
    "ground_atomic": "atomic",
    "ground_depth": "cot",
    # Perceptio: [SEG], the depth span, then the answer: perception before the answer, like a CoT
    "refer_segment": "cot",
    # VPT: a perception action, then the answer (cot); a plain answer (direct)
    "vpt_region": "cot",
    "vpt_reencode": "cot",
    "vpt_plain": "direct",
}


class SkipSample(Exception):
    """The inputs cannot make this sample (e.g. >15 instances); ``reason`` goes to the rejects table."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class ImageRef:
    """The image a sample shows: its source and its file relative to the exported image folder."""

    dataset: str
    image_id: str
    file_name: str  # e.g. "ade20k/ADE_train_00000001.png" or "marked/<sample id>.png"

    def __post_init__(self) -> None:
        name = self.file_name
        if not name or name.startswith(("/", "\\")) or ".." in name.replace("\\", "/").split("/"):
            raise ValueError(f"image file name {name!r} must be relative and stay inside the image folder")


@dataclass(frozen=True)
class Sample:
    """A single-turn conversation plus lineage.

    ``question`` is the human text without LLaVA's ``"<image>\\n"`` prefix; ``answer`` is
    the gpt text. ``target`` is the short ground truth (letter, count, expression) that
    evaluation and checks compare against. ``annotation_ids``/``ref_id`` point at the
    source annotations; ``depth_token_version`` identifies the depth tokenizer whose
    codes appear in the answer (None when the answer has no depth tokens). VPT samples carry
    their training stage (``vpt_stage`` 1: align, 2: fine-tune) and, for a region sample, the
    target region: its cells ``(x0, y0, x1, y1)`` on the ``region_grid`` x ``region_grid`` grid and
    their pixel box ``(left, top, right, bottom)`` (right/bottom exclusive) on the original image.
    """

    sample_id: str
    task: str
    kind: str
    image: ImageRef
    question: str
    answer: str
    target: str
    dataset: str
    image_id: str
    annotation_ids: tuple[int, ...] = field(default_factory=tuple)
    ref_id: int | None = None
    depth_token_version: str | None = None
    # the referred object's mask as COCO compressed RLE {size: [h, w], counts} (Perceptio's refer_segment)
    mask_rle: dict[str, Any] | None = field(default=None, hash=False)
    vpt_stage: int | None = None
    region_grid: int | None = None
    region_cells: tuple[int, ...] | None = None
    region_box_px: tuple[int, ...] | None = None

    def __post_init__(self) -> None:
        if self.task not in TASK_KIND:
            raise ValueError(f"unknown task {self.task!r}; expected one of {TASKS}")
        if self.kind != TASK_KIND[self.task]:
            raise ValueError(f"task {self.task} has kind {TASK_KIND[self.task]!r}, not {self.kind!r}")
        if "<image>" in self.question:
            raise ValueError(f"sample {self.sample_id}: question must not contain '<image>' (added on export)")
        object.__setattr__(self, "annotation_ids", tuple(int(a) for a in self.annotation_ids))
        for name in ("region_cells", "region_box_px"):
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, tuple(int(v) for v in value))

    def to_row(self) -> dict[str, Any]:
        """Flat dict for a Parquet row (image fields prefixed ``image_``)."""
        row = asdict(self)
        image = row.pop("image")
        row["image_dataset"] = image["dataset"]
        row["image_image_id"] = image["image_id"]
        row["image_file"] = image["file_name"]
        row["annotation_ids"] = list(self.annotation_ids)
        for name in ("region_cells", "region_box_px"):
            row[name] = None if row[name] is None else list(row[name])
        return row

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> "Sample":
        """Inverse of :meth:`to_row`."""
        data = dict(row)
        image = ImageRef(data.pop("image_dataset"), str(data.pop("image_image_id")), data.pop("image_file"))
        ids = data.get("annotation_ids")  # list, numpy array (from Parquet) or None
        data["annotation_ids"] = () if ids is None else tuple(int(a) for a in ids)
        for name in ("region_cells", "region_box_px"):
            data[name] = None if data.get(name) is None else tuple(int(v) for v in data[name])
        return cls(image=image, **data)


def make_sample_id(task: str, dataset: str, image_id: str, *parts: object) -> str:
    """Deterministic id: ``task:dataset:image_id[:part...]`` (same inputs, same id)."""
    return ":".join([task, dataset, str(image_id), *(str(p) for p in parts)])
