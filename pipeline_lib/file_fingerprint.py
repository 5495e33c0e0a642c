"""A dataset root's version: cheap to take, exact about what changed.

Every observation lists the files under a root with their size and modification time (one
``stat`` each, no reading). Files whose size or mtime differ from the previous observation, and
new files, are hashed (sha256); files that did not move keep what the previous observation
recorded. The version is a hash over (path, sha256-or-stat) of every file, so a replaced,
added or deleted file changes it, and a file merely touched (same bytes) changes it at most
once: its entry moves from stat to content and stays there. The first observation of a large
root (COCO) hashes nothing, so it is as cheap as a directory listing.
No Dagster here; the observable source assets in ``assets/sources.py`` call it.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

from perception_tokens.paths import file_sha256


@dataclass
class Fingerprint:
    version: str
    files: int
    hashed: list[str]  # files whose content was hashed in this observation (they moved or are new)
    removed: list[str]


def _listing(root: Path) -> dict[str, tuple[int, int]]:
    out: dict[str, tuple[int, int]] = {}
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in filenames:
            if name.startswith("."):
                continue  # lock files, editors' swap files
            path = Path(dirpath) / name
            try:
                st = path.stat()
            except OSError:  # a dangling link or a file removed while listing: not part of the data
                continue
            out[path.relative_to(root).as_posix()] = (st.st_size, st.st_mtime_ns)
    return out


def fingerprint_tree(root: str | Path, state_file: str | Path) -> Fingerprint:
    """Observe ``root``; ``state_file`` keeps per-file (size, mtime, sha256) between observations."""
    root, state_file = Path(root), Path(state_file)
    try:
        previous = json.loads(state_file.read_text()) if state_file.exists() else {}
    except (OSError, ValueError):
        previous = {}  # a broken state file costs one round of hashing, never a wrong version
    if previous.get("root") != str(root.resolve()):
        previous = {}
    before: dict[str, list] = previous.get("files", {})
    now = _listing(root) if root.exists() else {}
    files: dict[str, list] = {}
    hashed = []
    for rel, (size, mtime) in sorted(now.items()):
        old = before.get(rel)
        if old is not None and old[0] == size and old[1] == mtime:
            files[rel] = old
        elif old is None and not before:
            files[rel] = [size, mtime, None]  # first observation: stat only
        else:
            try:
                files[rel] = [size, mtime, file_sha256(root / rel)]
            except OSError:
                files[rel] = [size, mtime, None]
            hashed.append(rel)
    removed = sorted(set(before) - set(now))
    h = hashlib.sha256()
    for rel, (size, mtime, sha) in files.items():
        h.update(f"{rel}\0{sha or f'stat:{size}:{mtime}'}\n".encode())
    state_file.parent.mkdir(parents=True, exist_ok=True)
    tmp = state_file.with_name(f".{state_file.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps({"root": str(root.resolve()), "files": files}))
    os.replace(tmp, state_file)
    return Fingerprint(h.hexdigest()[:24], len(files), hashed, removed)
