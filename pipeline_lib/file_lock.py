"""An exclusive lock between processes on one machine: ``fcntl.flock`` on a lock file.

Used where a read-modify-rename must not interleave with another process doing the same
(history appends, catalog rebuilds). The kernel drops the lock when its holder exits, so a
killed process never leaves the lock held.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path
from typing import Iterator


@contextlib.contextmanager
def exclusive(lock_path: Path) -> Iterator[None]:
    """Hold ``lock_path`` exclusively for the block; waits for another holder to finish."""
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock
