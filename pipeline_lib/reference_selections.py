"""Where the reference's shipped selection files are, and whether they are there.

``curriculum.reference_repo`` (aurora: ``Aurora-perception``, a clone of the reference beside
the config) names the repository; each file is at its path there (``REPO_PATHS``) unless its
own setting names another path. A file given by its own setting must exist (a clear error
names it); a file expected in ``reference_repo`` that is absent falls back to the seeded draw
(plurals: the rule-based ones), and the assets say so in their metadata. The files' sha256
enters the assets' code versions, so a replaced file marks them stale.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from perception_tokens.paths import file_sha256

# setting -> its path inside the reference repository (README: "Data and selections")
REPO_PATHS = {
    "marked_images_file": "AiT/vae/ADE_500files.npy",  # add_marks_ade.ipynb cell 0
    "marked_points_file": "AiT/vae/point_label_mappings.json",  # add_marks_ade.ipynb cell 4
    "count_image_ids": "Bbox",  # train_ids.npy, cot_ids.npy: create_bbox_annealing_data.ipynb cell 3
    "plurals_file": "Bbox/plurals.json",  # Bbox/plurals.npy converted by `ptok convert-plurals`
}
# a folder setting: the files it must hold
FOLDER_FILES = {"count_image_ids": ("train_ids.npy", "cot_ids.npy")}
FALLBACK = {"marked_images_file": "seeded draw", "marked_points_file": "seeded draw", "count_image_ids": "seeded draw",
            "plurals_file": "rule-based plurals"}


@dataclass(frozen=True)
class Selection:
    """One selection file: ``path`` (None: not configured) and whether it is there to use."""

    name: str
    path: str | None
    present: bool

    @property
    def usable_path(self) -> str | None:
        return self.path if self.present else None

    def files(self) -> list[Path]:
        if self.path is None:
            return []
        names = FOLDER_FILES.get(self.name)
        return [Path(self.path) / n for n in names] if names else [Path(self.path)]

    def describe(self) -> str:
        if self.path is None:
            return f"not configured: {FALLBACK[self.name]}"
        if self.present:
            return f"reference file {self.path}"
        return f"{self.path} absent: {FALLBACK[self.name]}"

    def fingerprint(self) -> str:
        return ",".join(file_sha256(f)[:16] for f in self.files()) if self.present else "absent"


def selection(settings, name: str) -> Selection:
    """The ``curriculum.<name>`` selection file of ``settings``; raises FileNotFoundError for a
    file named by its own setting that does not exist."""
    cs = settings.curriculum
    explicit = getattr(cs, name)
    if explicit:
        path = settings.resolve(explicit)
    elif cs.reference_repo:
        path = str(Path(settings.resolve(cs.reference_repo)) / REPO_PATHS[name])
    else:
        return Selection(name, None, False)
    found = Selection(name, path, True)
    present = all(f.is_file() for f in found.files())
    if explicit and not present:
        missing = [str(f) for f in found.files() if not f.is_file()]
        raise FileNotFoundError(f"curriculum.{name} names {path}, but {', '.join(missing)} does not exist")
    return Selection(name, path, present)


def selections(settings, names=tuple(REPO_PATHS)) -> dict[str, Selection]:
    return {n: selection(settings, n) for n in names}
