"""A run as one file: a ``.tar.gz`` of what loading and predicting need, with a SHA-256 checksum.

`pack_run` writes ``<name>.tar.gz`` holding ``<name>/`` with `ARCHIVE_FILES` (the training
log, figures, evaluations and the resume file ``last.pt`` stay out) and ``<name>.tar.gz.sha256``
beside it, in the format ``sha256sum -c`` checks. `opened_run` gives the folder of a run given as
a folder or as such an archive: the archive's checksum is verified first, then it is unpacked
safely (`scenesense.data.archives.safe_extract`) into a temporary folder that is removed
afterwards.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import tarfile
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from scenesense.data.archives import archive_kind, safe_extract
from scenesense.runs import CHECKPOINT_FILE, CONFIG_FILE, FINISHED_FILES, METRICS_FILE, SPEC_FILE
from scenesense.utils.io import atomic_write_text, temp_beside

ARCHIVE_FILES = (CONFIG_FILE, SPEC_FILE, CHECKPOINT_FILE, METRICS_FILE)
"""The files of a run folder an archive holds (``metrics.json`` only where the run has one)."""

CHECKSUM_SUFFIX = ".sha256"


def file_sha256(path: str | Path) -> str:
    """The SHA-256 of a file's bytes, as 64 hex digits."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def checksum_path(archive: str | Path) -> Path:
    """The checksum file of ``archive``: ``<archive>.sha256`` beside it."""
    archive = Path(archive)
    return archive.with_name(archive.name + CHECKSUM_SUFFIX)


def _reset_owner(info: tarfile.TarInfo) -> tarfile.TarInfo:
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


def pack_run(run_dir: str | Path, archive: str | Path | None = None) -> tuple[Path, Path]:
    """Write a finished run's `ARCHIVE_FILES` as a ``.tar.gz`` and its checksum file (both atomically).

    Args:
        run_dir: a finished run folder.
        archive: the archive to write (default: ``<run_dir>.tar.gz`` beside the folder); it must end in
            ``.tar.gz`` or ``.tgz``.

    Returns:
        The archive and its checksum file (`checksum_path`).

    Raises:
        FileNotFoundError: ``run_dir`` is not a finished run.
        ValueError: ``archive`` does not end in ``.tar.gz`` or ``.tgz``.
    """
    run_path = Path(run_dir)
    for name in FINISHED_FILES:
        if not (run_path / name).is_file():
            raise FileNotFoundError(f"{run_path}: not a finished run (missing {name})")
    target = Path(archive) if archive is not None else run_path.resolve().with_name(run_path.resolve().name + ".tar.gz")
    if archive_kind(target.name) != "tar.gz":
        raise ValueError(f"{target}: an archive's name must end in .tar.gz or .tgz")
    top = run_path.resolve().name
    fd, tmp = temp_beside(target)
    try:
        with os.fdopen(fd, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as packed, \
                tarfile.open(fileobj=packed, mode="w", format=tarfile.PAX_FORMAT) as tar:
            for name in ARCHIVE_FILES:
                if (run_path / name).is_file():
                    tar.add(run_path / name, arcname=f"{top}/{name}", recursive=False, filter=_reset_owner)
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    checksum = atomic_write_text(checksum_path(target), f"{file_sha256(target)}  {target.name}\n")
    return target, checksum


def verify_archive(archive: str | Path) -> str:
    """Check ``archive`` against its checksum file (`checksum_path`); returns the SHA-256.

    Raises:
        FileNotFoundError: no archive, or no checksum file beside it.
        ValueError: the checksum file is malformed, or the archive's SHA-256 differs from it.
    """
    archive = Path(archive)
    if not archive.is_file():
        raise FileNotFoundError(f"{archive}: no such archive")
    checksum = checksum_path(archive)
    if not checksum.is_file():
        raise FileNotFoundError(f"{archive}: no checksum file {checksum.name} beside it; put it there, or "
                                f"unpack the archive (tar xzf) and give the run folder")
    fields = checksum.read_text(encoding="utf-8").split()
    expected = fields[0].lower() if fields else ""
    if len(expected) != 64 or any(c not in "0123456789abcdef" for c in expected):
        raise ValueError(f"{checksum}: not a SHA-256 checksum file (expected '<64 hex digits>  {archive.name}')")
    actual = file_sha256(archive)
    if actual != expected:
        raise ValueError(f"{archive}: SHA-256 {actual} differs from {expected} in {checksum.name}; the archive "
                         "is damaged or was changed, copy it again")
    return actual


def _run_folder(root: Path, archive: Path) -> Path:
    """The one folder under ``root`` (itself or a child) that holds a run's spec."""
    found = [p for p in (root, *sorted(p for p in root.iterdir() if p.is_dir())) if (p / SPEC_FILE).is_file()]
    if len(found) != 1:
        raise ValueError(f"{archive}: not a run archive (expected one folder with {SPEC_FILE}, found {len(found)})")
    return found[0]


@contextmanager
def opened_run(path: str | Path) -> Iterator[Path]:
    """The run folder of ``path``: the folder itself, or a run archive unpacked for the ``with`` block.

    An archive (a file named ``.tar.gz`` or ``.tgz``) is verified (`verify_archive`), unpacked
    into a temporary folder and removed with it when the block ends.

    Raises:
        FileNotFoundError, ValueError: as `verify_archive`; an archive that holds no run.
        scenesense.data.archives.ArchiveError: a damaged or unsafe archive.
    """
    path = Path(path)
    if not (path.is_file() and archive_kind(path.name) == "tar.gz"):
        yield path
        return
    verify_archive(path)
    with tempfile.TemporaryDirectory(prefix="scenesense-run-") as tmp:
        root = safe_extract(path, Path(tmp) / "run", "tar.gz")
        yield _run_folder(root, path)
