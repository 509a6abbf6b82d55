"""File-system helpers: atomic writes, stale temporary files, folder locks, a link-following walk.

Every atomic writer renders into a temporary file ``.<name>.<random>.tmp`` in the destination
folder (same file system), flushes and fsyncs it, then ``os.replace``-s it over the destination,
which is atomic on POSIX and Windows. A process killed mid-write leaves its temporary file behind;
the next write to the same destination removes such leftovers once they are
`STALE_TEMP_SECONDS` old (`remove_stale_temps`), so a live writer's file is never touched.

`folder_lock` gives one process at a time a folder (a run directory, a store being
extracted); `walk_files` lists a user's folder, following symbolic links without looping.
"""

from __future__ import annotations

import glob
import json
import math
import os
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

import numpy as np
from filelock import FileLock, Timeout

LOCK_FILE = ".scenesense.lock"
STALE_TEMP_SECONDS = 3600.0  # a temp file untouched this long belongs to a dead writer


class FolderInUseError(OSError):
    """Another process holds the folder's lock (`folder_lock`)."""


def remove_stale_temps(folder: str | Path, prefix: str, older_than: float = STALE_TEMP_SECONDS) -> list[Path]:
    """Delete the files ``<folder>/<prefix>*.tmp`` last modified more than ``older_than`` seconds ago.

    Call it before creating a temporary file ``<prefix><random>.tmp`` there (as
    `tempfile.mkstemp` with that prefix and suffix does). A writer that is still alive keeps
    moving its file's modification time, so only the leftovers of killed writers are old enough.

    Returns:
        The removed files.
    """
    folder = Path(folder)
    if not folder.is_dir():
        return []
    now, removed = time.time(), []
    for tmp in folder.glob(f"{glob.escape(prefix)}*.tmp"):
        try:
            stat = tmp.lstat()
            if now - stat.st_mtime > older_than and tmp.is_file() and not tmp.is_symlink():
                tmp.unlink()
                removed.append(tmp)
        except FileNotFoundError:  # another process removed or renamed it meanwhile
            continue
    return removed


@contextmanager
def folder_lock(folder: str | Path) -> Iterator[Path]:
    """Hold an exclusive lock on ``folder`` (created if needed) for the ``with`` block.

    The lock is ``<folder>/.scenesense.lock`` (an OS file lock: released when the process ends,
    however it ends). It is not re-entrant: take it once per process.

    Yields:
        The lock file.

    Raises:
        FolderInUseError: another process holds the lock; it does not wait.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / LOCK_FILE
    lock = FileLock(path)
    try:
        lock.acquire(timeout=0)
    except Timeout:
        raise FolderInUseError(f"{folder} is in use by another scenesense process (lock file {path}); "
                               "wait for it to finish") from None
    try:
        yield path
    finally:
        lock.release()


def walk_files(root: str | Path) -> Iterator[Path]:
    """Every file under the folder ``root`` (each folder's in name order), following symbolic links
    to folders. Sort the result for one order over the whole tree.

    Each real folder is entered once (by its device and inode), so a link loop or two links to
    one folder cannot repeat or never end. Paths are spelled through the links, as found.
    """
    seen: set[tuple[int, int]] = set()
    for folder, dirs, files in os.walk(root, followlinks=True):
        try:
            stat = os.stat(folder)
        except OSError:
            dirs[:] = []
            continue
        if (stat.st_dev, stat.st_ino) in seen:
            dirs[:] = []
            continue
        seen.add((stat.st_dev, stat.st_ino))
        dirs.sort()
        for name in sorted(files):
            yield Path(folder) / name


def default_file_mode() -> int:
    """Permission bits a plain ``open(path, "w")`` would give a new file (0o666 minus the umask)."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def temp_beside(path: str | Path) -> tuple[int, Path]:
    """A new temporary file ``.<name>.<random>.tmp`` beside ``path`` (parent folders created), after
    removing the stale ones that killed writers of ``path`` left (`remove_stale_temps`).

    Returns:
        The open file descriptor (mode 0600, as `tempfile.mkstemp` makes it) and the file.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(path.parent, f".{path.name}.")
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    return fd, Path(tmp)


@contextmanager
def _atomic_file(path: str | Path) -> Iterator[IO[bytes]]:
    """Yield a binary file handle whose content replaces ``path`` only if the block succeeds."""
    path = Path(path)
    fd, tmp = temp_beside(path)
    try:
        with os.fdopen(fd, "wb") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, default_file_mode())  # mkstemp makes 0600; the result follows the umask
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def _fsync_dir(folder: Path) -> None:
    """Persist the rename itself (best effort: not every platform can open a directory)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (parent folders are created).

    Returns:
        ``path`` as a `pathlib.Path`.
    """
    with _atomic_file(path) as handle:
        handle.write(data)
    return Path(path)


def atomic_write_text(path: str | Path, text: str, encoding: str = "utf-8") -> Path:
    """Write ``text`` to ``path`` atomically (parent folders are created).

    Returns:
        ``path`` as a `pathlib.Path`.
    """
    return atomic_write_bytes(path, text.encode(encoding))


def atomic_save_with(path: str | Path, writer: Callable[[IO[bytes]], Any]) -> Path:
    """Atomically write ``path`` with ``writer(handle)``, for libraries that write to a file object.

    Returns:
        ``path`` as a `pathlib.Path`.
    """
    with _atomic_file(path) as handle:
        writer(handle)
    return Path(path)


def atomic_torch_save(obj: Any, path: str | Path) -> Path:  # noqa: ANN401
    """``torch.save(obj, path)`` atomically: a killed save leaves the previous file intact.

    Returns:
        ``path`` as a `pathlib.Path`.
    """
    import torch  # only here: the other helpers must not load torch (`scenesense --help` imports them)

    return atomic_save_with(path, lambda handle: torch.save(obj, handle))


def _to_jsonable(value: Any) -> Any:  # noqa: ANN401
    """Numpy/torch scalars and arrays to Python values; non-finite floats to ``None``."""
    if isinstance(value, dict):
        return {str(k): _to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_to_jsonable(v) for v in value]
    torch = sys.modules.get("torch")  # a tensor exists only once torch is loaded; never load it here
    if torch is not None and isinstance(value, torch.Tensor):
        return _to_jsonable(value.detach().cpu().tolist())
    if isinstance(value, (np.ndarray, np.generic)):
        return _to_jsonable(value.tolist())
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def write_json(path: str | Path, obj: Any, indent: int = 2) -> Path:  # noqa: ANN401
    """Write ``obj`` as JSON atomically, at full float precision (``repr`` round-trips).

    Numpy and torch values become plain Python values; NaN and infinities become ``null`` so the
    file stays standard JSON.

    Returns:
        ``path`` as a `pathlib.Path`.
    """
    text = json.dumps(_to_jsonable(obj), indent=indent, allow_nan=False, ensure_ascii=False)
    return atomic_write_text(path, text + "\n")
