"""A dataset root's version: cheap to take, exact about what changed.

Every observation lists the files under a root with their size, modification time, change
time and inode (one ``stat`` each, no reading). Files whose size, mtime, ctime or inode differ
from the previous observation, and new files, are hashed (sha256); files that did not move keep
what the previous observation recorded. The ctime and inode catch what size and mtime miss: a
rewrite that keeps the size and sets the mtime back (``touch -d``, ``cp -p``, ``rsync -t``) still
moves the ctime (no user can set it), and a replaced file has a new inode.
The version is a hash over (path, sha256-or-stat) of every file, so a replaced,
added or deleted file changes it, and a file merely touched (same bytes) changes it at most
once: its entry moves from stat to content and stays there. The first observation of a large
root (COCO) hashes nothing, so it is as cheap as a directory listing.
Names are taken as bytes (a name that is not UTF-8 cannot crash it), and only regular files
are ever opened: a FIFO, socket or device is versioned by type and stat and listed in
``not_read`` with the reason.
No Dagster here; the observable source assets in ``assets/sources.py`` call it.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path

from perception_tokens.paths import file_sha256, kind_of_mode, printable_name


@dataclass
class Fingerprint:
    version: str
    files: int
    hashed: list[str]  # files whose content was hashed in this observation (they moved or are new)
    removed: list[str]
    # files counted by type only, never opened, with the reason: a FIFO, socket or device (reading
    # one blocks or never ends), or a name that is not UTF-8 (shown as its bytes); the source
    # readers reject them in their ``<asset>_rejects`` tables
    not_read: dict[str, str] = field(default_factory=dict)


def _listing(root: Path) -> dict[str, tuple[int, int, str | None, int, int]]:
    """``relative name -> (size, mtime, why not read, ctime, inode)``, names as the file system holds them
    (a non-UTF-8 name keeps its bytes through surrogateescape). One ``stat`` each, following
    symlinks: a link to a regular file is data, a link to a FIFO is not."""
    out: dict[str, tuple[int, int, str | None, int, int]] = {}
    broot = os.fsencode(root)
    for dirpath, dirnames, filenames in os.walk(broot, followlinks=False):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith(b"."))
        for name in filenames:
            if name.startswith(b"."):
                continue  # lock files, editors' swap files
            path = os.path.join(dirpath, name)
            try:
                st = os.stat(path)
            except OSError:  # a dangling link or a file removed while listing: not part of the data
                continue
            rel = os.fsdecode(os.path.relpath(path, broot))
            why = None
            if not stat.S_ISREG(st.st_mode):
                why = f"not a regular file ({kind_of_mode(st.st_mode)}): never opened"
            elif printable_name(rel) != rel:
                why = "file name is not valid UTF-8"
            out[rel] = (st.st_size, st.st_mtime_ns, why, st.st_ctime_ns, st.st_ino)
    return out


def _same_file(old: list, ctime: int, inode: int) -> bool:
    """Same ctime and inode as recorded; an entry of a state file written before they were
    recorded (three fields) has nothing to compare and counts as the same."""
    return len(old) < 5 or (old[3] == ctime and old[4] == inode)


def fingerprint_tree(root: str | Path, state_file: str | Path, *, record: bool = True) -> Fingerprint:
    """Observe ``root``; ``state_file`` keeps per-file (size, mtime, sha256) between observations.
    ``record=False`` computes the same version without writing the state (a look before deciding
    whether to observe: ``ptok`` skips the observation run when no root moved)."""
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
    hashed, not_read = [], {}
    # an entry is [size, mtime, sha256 or None, ctime, inode]; the version reads the first three only
    for rel, (size, mtime, why, ctime, inode) in sorted(now.items()):
        old = before.get(rel)
        if why is not None and why.startswith("not a regular file"):
            files[rel] = [size, mtime, None, ctime, inode]  # its type and stat are its version; never opened
            not_read[printable_name(rel)] = why
            continue
        if why is not None:
            not_read[printable_name(rel)] = why  # hashed like any file, but the readers reject it
        if old is not None and old[:2] == [size, mtime] and _same_file(old, ctime, inode):
            files[rel] = [*old[:3], ctime, inode]
        elif old is None and not before:
            files[rel] = [size, mtime, None, ctime, inode]  # first observation: stat only
        else:
            try:
                files[rel] = [size, mtime, file_sha256(root / rel), ctime, inode]
            except OSError:
                files[rel] = [size, mtime, None, ctime, inode]
            hashed.append(printable_name(rel))
    removed = sorted(printable_name(rel) for rel in set(before) - set(now))
    h = hashlib.sha256()
    for rel, (size, mtime, sha, *_) in files.items():
        # the name as bytes: a name that is not UTF-8 is still a name on disk
        h.update(os.fsencode(rel) + f"\0{sha or f'stat:{size}:{mtime}'}\n".encode())
    if not record:
        return Fingerprint(h.hexdigest()[:24], len(files), hashed, removed, not_read)
    state_file.parent.mkdir(parents=True, exist_ok=True)
    tmp = state_file.with_name(f".{state_file.name}.{os.getpid()}.tmp")
    # json escapes the lone surrogates of a non-UTF-8 name (\udcff) and reads them back unchanged
    tmp.write_text(json.dumps({"root": str(root.resolve()), "files": files}))
    os.replace(tmp, state_file)
    return Fingerprint(h.hexdigest()[:24], len(files), hashed, removed, not_read)
