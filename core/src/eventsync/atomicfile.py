"""Files rewritten whole, safely: an exclusive lock and an atomic replace.

``locked(path)`` holds an ``fcntl`` lock on the sidecar ``PATH.lock`` file, so writers take turns
and none loses another's update; ``replace(path, text)`` writes a temporary file in the same
folder, fsyncs it and ``os.replace``-s it over the old one, so a reader sees the old file or the
new one, never a mix. The secrets store and the console's edits of the config file use both.
"""

from __future__ import annotations

import fcntl
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["locked", "replace"]


@contextmanager
def locked(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``path``'s sidecar ``.lock`` file (its folder is made)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path.with_name(path.name + ".lock"), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def replace(path: Path, text: str, mode: int) -> None:
    """Replace ``path`` with ``text`` atomically, the new file having permissions ``mode``."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
