"""Crash-safe file writes and an inter-process file lock (standard library only: the datasets use it too).

A file written here appears under its final name complete or not at all: the bytes go to a temporary
file in the same folder, are flushed and fsynced, the temporary file is renamed over the target (an
atomic replace on POSIX and Windows), and the folder is fsynced so that the rename itself survives a
power cut. A process killed mid-write leaves at most a hidden ``.<name>.*.tmp`` file beside the target.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None  # type: ignore[assignment]

__all__ = ["atomic_open", "atomic_write_bytes", "fsync_dir", "fsync_file", "folder_lock"]


def _read_umask() -> int:
    """The process umask (the only way to read it is to set it, so do that once, at import)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


_UMASK = _read_umask()


def fsync_dir(folder: str | os.PathLike[str]) -> None:
    """Make renames and creations in `folder` durable (POSIX); nothing to do where folders can't be opened."""
    try:
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:  # Windows cannot open a folder; its renames are journalled by NTFS
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some file systems refuse fsync on a folder; the rename is atomic all the same
    finally:
        os.close(fd)


def fsync_file(path: str | os.PathLike[str]) -> None:
    """Flush a finished file's content to disk before it is renamed into place."""
    with open(path, "rb+") as f:
        os.fsync(f.fileno())


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike[str], mode: str = "wb", **kwargs: Any) -> Iterator[IO[Any]]:
    """A temporary file beside `path` to write to; on a clean exit it durably replaces `path`.

    On an error (a full disk, say) the temporary file is deleted and `path` keeps its old content.
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, mode, **kwargs) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        # mkstemp creates the file private (0600); give it the permissions a normal open() would.
        os.chmod(tmp, 0o666 & ~_UMASK)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    fsync_dir(path.parent)


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Write `data` to `path` so that the file is either the old one or entirely the new one."""
    with atomic_open(path, "wb") as f:
        f.write(data)


@contextlib.contextmanager
def folder_lock(folder: str | os.PathLike[str]) -> Iterator[None]:
    """Hold an exclusive lock on `folder` against other processes until the block ends.

    The operating system releases it when the holder exits or is killed, so a crash never leaves a
    stale lock. On POSIX the folder itself is locked and no file is created; Windows cannot lock a
    folder, so there an empty ``.zerograd.lock`` file inside it is locked instead (and stays).
    """
    if fcntl is not None:
        fd = os.open(folder, os.O_RDONLY)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing the descriptor releases the lock
        return
    import msvcrt  # pragma: no cover - Windows

    with open(Path(folder) / ".zerograd.lock", "a+b") as f:  # pragma: no cover
        while True:  # msvcrt gives up after 10 s of waiting: keep waiting
            try:
                f.seek(0)
                msvcrt.locking(f.fileno(), msvcrt.LK_LOCK, 1)
                break
            except OSError:
                time.sleep(0.1)
        try:
            yield
        finally:
            f.seek(0)
            msvcrt.locking(f.fileno(), msvcrt.LK_UNLCK, 1)
