"""Path safety and atomic writes.

Dataset files name other files (LVIS ``coco_url``, COCO ``file_name``); a hostile or
broken annotation file must not make us read ``/etc/passwd`` or ``../../secrets``.
``safe_join`` is the one gate every such path goes through. Writers use the atomic
helpers so a crash never leaves a half-written file under its final name.
"""

from __future__ import annotations

import hashlib
import os
import re
import stat
import tempfile
from pathlib import Path, PurePosixPath, PureWindowsPath

__all__ = [
    "UnsafePathError",
    "UnusablePathError",
    "safe_join",
    "file_kind",
    "printable_name",
    "atomic_write_bytes",
    "atomic_write_text",
    "file_sha256",
    "kind_of_mode",
    "NotARegularFileError",
]

_DRIVE_RE = re.compile(r"^[A-Za-z]:")


class UnsafePathError(ValueError):
    """A relative path from data that would leave its root (or is not relative at all)."""

    def __init__(self, relative: str, root: str | os.PathLike, why: str):
        super().__init__(f"unsafe path {relative!r} under root {str(root)!r}: {why}")
        self.relative = relative
        self.root = str(root)
        self.why = why


class UnusablePathError(ValueError):
    """A path the file system cannot even look up (name too long, a parent we may not
    enter, a symlink loop...): not missing, not a file, just unusable."""

    def __init__(self, path: str | os.PathLike, why: str):
        super().__init__(f"unusable path {printable_name(str(path))!r}: {why}")
        self.path = str(path)
        self.why = why


def safe_join(root: str | os.PathLike, relative: str) -> Path:
    """Join ``relative`` (a path taken from a data file) onto ``root``, refusing escapes.

    Refused: empty names, NUL bytes, names the file system encoding cannot hold, absolute paths (POSIX or Windows), drive letters,
    backslash paths, ``..`` that climbs above ``root``, and symlinks whose target lies
    outside ``root``. Returns the resolved path (it need not exist). A path that cannot
    be resolved at all (a symlink loop) raises :class:`UnusablePathError`.
    """
    rel = str(relative)
    if not rel or rel.strip() == "":
        raise UnsafePathError(rel, root, "empty path")
    if "\x00" in rel:
        raise UnsafePathError(rel, root, "NUL byte in path")
    try:
        os.fsencode(rel)
    except UnicodeEncodeError:
        # e.g. a JSON "\ud800" escape: no file can have this name, and os calls would raise.
        raise UnsafePathError(rel, root, "name cannot be encoded for the file system") from None
    if rel.startswith(("/", "\\")) or PurePosixPath(rel).is_absolute():
        raise UnsafePathError(rel, root, "absolute path")
    if _DRIVE_RE.match(rel) or PureWindowsPath(rel).drive:
        raise UnsafePathError(rel, root, "drive letter or UNC path")
    if "\\" in rel:
        # On POSIX a backslash is a legal name character, but data written on Windows
        # uses it as a separator; refuse rather than guess.
        raise UnsafePathError(rel, root, "backslash in path")

    root_resolved = Path(root).resolve()
    # Lexical check first: '..' that climbs out, even through names that do not exist.
    depth = 0
    for part in PurePosixPath(rel).parts:
        if part == "..":
            depth -= 1
            if depth < 0:
                raise UnsafePathError(rel, root, "'..' climbs above the root")
        elif part not in (".", ""):
            depth += 1

    try:
        candidate = (root_resolved / rel).resolve()  # follows symlinks that exist
    except (RuntimeError, OSError) as exc:
        # Python 3.11 raises RuntimeError("Symlink loop from ...") for a.jpg -> b.jpg -> a.jpg
        # (later versions OSError ELOOP): one unusable record, never a failed run.
        raise UnusablePathError(root_resolved / rel, "symlink loop" if "loop" in str(exc).lower()
                                else f"cannot resolve: {exc}") from exc
    if candidate != root_resolved and root_resolved not in candidate.parents:
        raise UnsafePathError(rel, root, f"resolves outside the root (to {str(candidate)!r})")
    return candidate


def file_kind(path: str | os.PathLike) -> str:
    """What ``path`` is, following symlinks: ``"file"``, ``"directory"``, ``"other"`` or ``"missing"``.

    Unlike ``Path.exists()``/``is_file()`` (which on Python 3.11 raise for e.g. a name
    over 255 bytes, and on later versions silently answer False), any other failure to
    look the path up raises :class:`UnusablePathError` with the OS's reason, so a reader
    can turn one bad record into a reject without mistaking it for a missing file.
    """
    try:
        st = os.stat(path)
    except (FileNotFoundError, NotADirectoryError):
        return "missing"
    except OSError as exc:
        raise UnusablePathError(path, exc.strerror or str(exc)) from exc
    except ValueError as exc:  # embedded NUL, or a str the file system encoding cannot hold
        raise UnusablePathError(path, f"not a valid file system path ({exc})") from exc
    if stat.S_ISREG(st.st_mode):
        return "file"
    if stat.S_ISDIR(st.st_mode):
        return "directory"
    return "other"


def printable_name(name: str) -> str:
    """``name`` itself if it is valid UTF-8 text, else ``repr`` of its bytes (``b'ADE_\\xff.jpg'``).

    ``os.listdir`` returns names that are not UTF-8 on disk with lone surrogates in them
    (PEP 383); such a str cannot be written to Arrow/Parquet/JSON. The bytes repr shows
    exactly what is on disk and always encodes.
    """
    try:
        name.encode("utf-8")
        return name
    except UnicodeEncodeError:
        pass
    try:
        raw = os.fsencode(name)  # undoes surrogateescape: the bytes as on disk
    except UnicodeEncodeError:  # a lone surrogate that did not come from a file name
        raw = name.encode("utf-8", "surrogatepass")
    return repr(raw)


def atomic_write_bytes(path: str | os.PathLike, data: bytes, *, fsync: bool = True) -> Path:
    """Write ``data`` to ``path`` via a temp file in the same directory and ``os.replace``.

    ``fsync=False`` skips flushing to disk (still atomic against crashes of this
    process, not against power loss); bulk writers of regenerable data use it.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            if fsync:
                fh.flush()
                os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; data files are meant to be shared
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    return path


def atomic_write_text(
    path: str | os.PathLike, text: str, encoding: str = "utf-8", *, fsync: bool = True
) -> Path:
    """Text flavour of :func:`atomic_write_bytes`."""
    return atomic_write_bytes(path, text.encode(encoding), fsync=fsync)


class NotARegularFileError(OSError):
    """A path that is a FIFO, socket, device or directory: reading it could block forever or never end."""


def file_sha256(path: str | os.PathLike[str] | bytes, chunk: int = 1 << 20) -> str:
    """sha256 of a regular file's bytes, read in chunks (memory stays flat for large checkpoints).

    Opened non-blocking and checked with ``fstat`` before any read: a FIFO put where a file
    was expected raises :class:`NotARegularFileError` instead of blocking on its writer, and
    a file swapped for a FIFO between a caller's ``stat`` and this open is caught too.
    """
    digest = hashlib.sha256()
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise NotARegularFileError(f"{printable_name(os.fsdecode(path))}: not a regular file ({kind_of_mode(mode)})")
        os.set_blocking(fd, True)
        with os.fdopen(fd, "rb", closefd=False) as handle:
            while block := handle.read(chunk):
                digest.update(block)
    finally:
        os.close(fd)
    return digest.hexdigest()


def kind_of_mode(mode: int) -> str:
    """A file type in words, from ``st_mode``: "regular file", "FIFO", "socket"..."""
    for test, name in ((stat.S_ISREG, "regular file"), (stat.S_ISDIR, "directory"), (stat.S_ISFIFO, "FIFO"),
                       (stat.S_ISSOCK, "socket"), (stat.S_ISCHR, "character device"), (stat.S_ISBLK, "block device"),
                       (stat.S_ISLNK, "symbolic link")):
        if test(mode):
            return name
    return "unknown file type"
