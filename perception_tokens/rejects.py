"""The reject record: one input record (dataset or benchmark) that could not be turned into a
row, and why. Readers are generators yielding a row ``dict`` or a :class:`Reject`, so a caller
can stream a large input and still account for every record: rows out + rejects = records in.
Rejects land in the ``*_rejects`` tables (columns :data:`REJECT_COLUMNS`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Iterable

from perception_tokens.paths import printable_name

REJECT_COLUMNS = ("dataset", "stage", "file", "record_id", "reason")


@dataclass(frozen=True)
class Reject:
    """One input record that could not be turned into a row, and why."""

    dataset: str  # "ade20k" / "lvis" / "refcoco"; a benchmark's name ("HardBLINK")
    stage: str  # reader name, e.g. "lvis_instances"; "benchmark" for benchmark records
    file: str  # the file the record came from (image path or annotation file)
    record_id: str  # image id / annotation id / "ref 3 sentence 7"
    reason: str  # short, human readable

    def __post_init__(self) -> None:
        # A file name read from disk may not be UTF-8 (os.listdir hands it back with lone
        # surrogates); the reject must still be writable to the rejects table.
        for name in ("dataset", "stage", "file", "record_id", "reason"):
            value = getattr(self, name)
            if isinstance(value, str):
                object.__setattr__(self, name, printable_name(value))

    def as_row(self) -> dict[str, str]:
        return {k: str(v) for k, v in asdict(self).items()}


def split_rows(items: Iterable[dict | Reject]) -> tuple[list[dict], list[Reject]]:
    """Materialise a reader's output as (rows, rejects); for tests and small inputs."""
    rows: list[dict] = []
    rejects: list[Reject] = []
    for item in items:
        (rejects if isinstance(item, Reject) else rows).append(item)
    return rows, rejects
