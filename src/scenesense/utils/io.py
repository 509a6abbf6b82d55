"""Atomic file writes: a reader never sees a half-written file, even if the process is killed.

Every writer renders into a temporary file in the destination folder (same file system), flushes
and fsyncs it, then ``os.replace``-s it over the destination, which is atomic on POSIX and Windows.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

import numpy as np
import torch


def default_file_mode() -> int:
    """Permission bits a plain ``open(path, "w")`` would give a new file (0o666 minus the umask)."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


@contextmanager
def _atomic_file(path: str | Path) -> Iterator[IO[bytes]]:
    """Yield a binary file handle whose content replaces ``path`` only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, default_file_mode())  # mkstemp makes 0600; the result follows the umask
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
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
        ``path`` as a :class:`~pathlib.Path`.
    """
    with _atomic_file(path) as handle:
        handle.write(data)
    return Path(path)


def atomic_write_text(path: str | Path, text: str, encoding: str = "utf-8") -> Path:
    """Write ``text`` to ``path`` atomically (parent folders are created).

    Returns:
        ``path`` as a :class:`~pathlib.Path`.
    """
    return atomic_write_bytes(path, text.encode(encoding))


def atomic_save_with(path: str | Path, writer: Callable[[IO[bytes]], Any]) -> Path:
    """Atomically write ``path`` with ``writer(handle)``, for libraries that write to a file object.

    Returns:
        ``path`` as a :class:`~pathlib.Path`.
    """
    with _atomic_file(path) as handle:
        writer(handle)
    return Path(path)


def atomic_torch_save(obj: Any, path: str | Path) -> Path:  # noqa: ANN401
    """``torch.save(obj, path)`` atomically: a killed save leaves the previous file intact.

    Returns:
        ``path`` as a :class:`~pathlib.Path`.
    """
    return atomic_save_with(path, lambda handle: torch.save(obj, handle))


def _to_jsonable(value: Any) -> Any:  # noqa: ANN401
    """Numpy/torch scalars and arrays to Python values; non-finite floats to ``None``."""
    if isinstance(value, dict):
        return {str(k): _to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_to_jsonable(v) for v in value]
    if isinstance(value, torch.Tensor):
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
        ``path`` as a :class:`~pathlib.Path`.
    """
    text = json.dumps(_to_jsonable(obj), indent=indent, allow_nan=False, ensure_ascii=False)
    return atomic_write_text(path, text + "\n")
