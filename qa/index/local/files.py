"""Files of a local index: OS locks between processes, durable replaces, and one mapping of the
errors a disk can raise (OSError, sqlite3.Error, FAISS's RuntimeError) to the project's own."""

from __future__ import annotations

import errno
import fcntl
import json
import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from qa.errors import StorageError

WRITE_LOCK = "write.lock"  # held by a writer from its first read of the state to its commit
COMPACT_LOCK = "compact.lock"  # held while a new vector checkpoint is written and old ones removed

_NEARLY_FULL_BYTES = 1 << 20
_FULL_ERRNOS = (errno.ENOSPC, errno.EDQUOT)
_READ_ONLY_ERRNOS = (errno.EROFS, errno.EACCES, errno.EPERM)


@contextmanager
def file_lock(path: Path, *, blocking: bool = True) -> Iterator[bool]:
    """An exclusive flock on `path`; yields whether it was taken (always, when blocking).

    The OS frees it when the holder exits, even by SIGKILL, so a killed writer never leaves
    the index locked.
    """
    descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX if blocking else fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(descriptor, fcntl.LOCK_UN)
    finally:
        os.close(descriptor)


def fsync_dir(path: Path) -> None:
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def write_json_atomically(path: Path, data: dict[str, Any]) -> None:
    """Replace `path` with `data`: readers see the old file or the new one, never half."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(temporary, "w", encoding="utf-8") as handle:
            json.dump(data, handle, ensure_ascii=False, indent=2)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
    fsync_dir(path.parent)


def _cause(exc: BaseException) -> str:
    if isinstance(exc, OSError):
        return exc.strerror or str(exc)
    return str(exc)


def _is_full(exc: BaseException) -> bool:
    if isinstance(exc, OSError):
        return exc.errno in _FULL_ERRNOS
    if isinstance(exc, sqlite3.Error):
        return getattr(exc, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL or "disk is full" in str(exc)
    return "No space left" in str(exc)


def _out_of_space(exc: BaseException, location: Path) -> bool:
    """A full disk, said outright, or an I/O error on a disk with (almost) no room left: SQLite
    reports a -shm file it could not extend as an I/O error."""
    if _is_full(exc):
        return True
    io_error = isinstance(exc, sqlite3.Error) and (getattr(exc, "sqlite_errorcode", 0) or 0) & 0xFF == (
        sqlite3.SQLITE_IOERR
    )
    if not io_error:
        return False
    try:
        stats = os.statvfs(location)
    except OSError:
        return False
    return stats.f_bavail * stats.f_frsize < _NEARLY_FULL_BYTES


def _is_read_only(exc: BaseException) -> bool:
    if isinstance(exc, OSError):
        return exc.errno in _READ_ONLY_ERRNOS
    if isinstance(exc, sqlite3.Error):
        return getattr(exc, "sqlite_errorcode", None) in (
            sqlite3.SQLITE_READONLY,
            sqlite3.SQLITE_CANTOPEN,
        ) or ("readonly" in str(exc))
    return "Read-only" in str(exc)


@contextmanager
def storage_errors(location: Path, doing: str) -> Iterator[None]:
    """Disk and database failures inside the block, as one `StorageError` saying the cause.

    Only the errors of storage: OSError, sqlite3.Error, and the RuntimeError FAISS raises from
    C++ for a failed read or write.
    """
    try:
        yield
    except (OSError, sqlite3.Error, RuntimeError) as exc:
        if isinstance(exc, RuntimeError) and not _is_full(exc) and "Error" not in str(exc):
            raise
        if _out_of_space(exc, location):
            reason, full = f"the disk is full ({_cause(exc)})", True
        elif _is_read_only(exc):
            reason, full = f"{_cause(exc)} (is its disk read-only, or are its permissions wrong?)", False
        else:
            reason, full = _cause(exc), False
        raise StorageError(
            f"could not {doing} the index at {location}: {reason}. The previous version is intact",
            disk_full=full,
        ) from exc
