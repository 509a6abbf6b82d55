"""Unpacking archives safely: nothing lands outside the target, nothing half-unpacked is left.

Archives (`safe_extract`) are unpacked into a hidden folder inside the target
and moved into place only when complete; on any error that folder is removed and the target is left
as it was. Every problem is an `ArchiveError` (``UnsafeArchiveError`` for the refusals below),
never a raw ``tarfile``/``zipfile``/``gzip`` exception. Refused:

- members with an absolute path, a drive letter or a ``..`` step (``/`` or ``\\`` separators);
- devices and fifos; a member whose name is the target itself; a name given twice with different
  kinds, or a link name given twice; a member lying under a file or link of the archive;
- links, judged lexically against the archive's final tree (all members, whatever their order),
  never against what happens to be on disk. Tar links are made after every file and folder, so no
  write goes through one. A symlink's target must be relative, may not climb above the target with
  ``..``, and every step but the last must be a folder of the archive (so it never passes through
  another link); the last step may be anything, another link included, which is checked the same way.
  Hence every path resolves inside the target, and chains and loops need no special case. A hard link
  must name a regular file of the archive. Zip members are always written as plain files
  (``zipfile`` makes no links), so only their names are checked;
- a file or link that would replace a folder already in the target (links installed earlier may pass
  through that folder). Files and links already there are replaced, folders are merged.
"""

from __future__ import annotations

import gzip
import os
import shutil
import tarfile
import tempfile
import zipfile
import zlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

ArchiveKind = Literal["none", "zip", "tar.gz"]
_TAR_FILTER: dict[str, Any] = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}


class ArchiveError(ValueError):
    """An archive cannot be unpacked: not an archive of the expected kind, or a damaged one.

    ``path`` is the archive (or the file shown in its place), ``reason`` what is wrong with it.
    """

    def __init__(self, path: str | Path, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path, self.reason = str(path), reason


class UnsafeArchiveError(ArchiveError):
    """An archive member would land outside the target folder (path traversal, links, devices)."""


# What a damaged archive raises inside tarfile, zipfile, gzip and zlib (reported as ArchiveError).
_DAMAGED = (tarfile.TarError, zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, zlib.error,
            gzip.BadGzipFile, NotImplementedError, NotADirectoryError, IsADirectoryError, FileExistsError)
_LINKS = ("symlink", "hardlink")

Steps = tuple[str, ...]  # a member's path inside the archive, split at "/", without "." or empty steps


def _plain(path: str) -> Steps:
    return tuple(s for s in path.split("/") if s not in ("", "."))


def _steps(archive: Path, name: str) -> Steps:
    """Member ``name`` as path steps; refuses absolute paths and ``..`` (also with a backslash separator)."""
    if name.startswith(("/", "\\")) or name[1:2] == ":" or ".." in name.replace("\\", "/").split("/"):
        raise UnsafeArchiveError(archive, f"member {name!r} has an absolute path or '..' (path traversal); "
                                          f"refusing to extract")
    return _plain(name)


def _follow(archive: Path, name: Steps, target: str, folders: set[Steps]) -> None:
    """Refuse symlink ``name -> target`` unless it resolves lexically inside the archive's tree."""
    steps, where = _plain(target), list(name[:-1])
    problem = "an absolute path" if target.startswith("/") or not target else None
    for i, step in enumerate(steps):
        if problem is not None:
            break
        if step != "..":
            where.append(step)
            if i + 1 < len(steps) and tuple(where) not in folders:
                problem = f"a path through {'/'.join(where)!r}, which is not a folder of the archive"
        elif where:
            where.pop()
        else:
            problem = "a path outside the target folder"
    if problem is not None:
        raise UnsafeArchiveError(archive, f"member {'/'.join(name)!r} links to {target!r}, {problem}; "
                                          f"refusing to extract")


def _clash(name: Steps, kind: str, kinds: Mapping[Steps, str], folders: set[Steps]) -> str | None:
    """Why member ``name`` of ``kind`` cannot join the tree built so far (``None``: it can)."""
    before = kinds.get(name)
    if not name and kind != "dir":
        return "names the target folder itself"
    if before is not None and (before != kind or kind in _LINKS):
        return f"appears twice, as a {before} and as a {kind}"
    if kind != "dir" and name in folders:
        return f"is a {kind}, but other members lie under it"
    return next((f"lies under {'/'.join(name[:i])!r}, which is a {kinds[name[:i]]}"
                 for i in range(1, len(name)) if kinds.get(name[:i], "dir") != "dir"), None)


def _check_links(archive: Path, kinds: Mapping[Steps, str], folders: set[Steps],
                 links: Sequence[tuple[Steps, str]]) -> None:
    """Every symlink resolves inside through folders only; every hard link names a regular file."""
    for name, target in links:
        if kinds[name] == "symlink":
            _follow(archive, name, target, folders)
        elif target.startswith("/") or kinds.get(_plain(target)) != "file":
            raise UnsafeArchiveError(archive, f"member {'/'.join(name)!r} is a hard link to {target!r}, "
                                              f"which is not a regular file of the archive; "
                                              f"refusing to extract")


def _unpack_zip(archive: Path, root: Path) -> None:
    try:
        zf = zipfile.ZipFile(archive)
    except zipfile.BadZipFile:
        raise ArchiveError(archive, "not a zip archive") from None
    with zf:
        for info in zf.infolist():  # zipfile writes links as plain files: only names can escape
            _steps(archive, info.filename)
            zf.extract(info, root)


def _open_tar(archive: Path) -> tarfile.TarFile:
    try:
        return tarfile.open(archive, "r:*")
    except tarfile.TarError:
        raise ArchiveError(archive, "not a tar archive (or one damaged at its start)") from None


def _unpack_tar(archive: Path, root: Path) -> None:
    """Files and folders are written in one streaming pass; links once the whole tree is known and checked."""
    kinds: dict[Steps, str] = {}
    folders: set[Steps] = set()  # every folder the tree has so far, explicit or implied by a member's name
    links: list[tuple[Steps, str]] = []
    with _open_tar(archive) as tf:
        for member in tf:
            kind = ("dir" if member.isdir() else "file" if member.isfile() else "symlink" if member.issym()
                    else "hardlink" if member.islnk() else "device or fifo")
            if kind == "device or fifo":
                raise UnsafeArchiveError(archive, f"member {member.name!r} is a device or fifo; "
                                                  f"refusing to extract")
            name = _steps(archive, member.name)
            problem = _clash(name, kind, kinds, folders)
            if problem is not None:
                raise UnsafeArchiveError(archive, f"member {member.name!r} {problem}; refusing to extract")
            kinds[name] = kind
            folders.update(name[:i] for i in range(len(name) + (kind == "dir")))
            if kind in _LINKS:
                links.append((name, member.linkname))
            else:  # folders get default permissions: a read-only folder would block its own files
                tf.extract(member, root, set_attrs=kind == "file", **_TAR_FILTER)
    _check_links(archive, kinds, folders, links)
    for name, target in sorted(links, key=lambda link: kinds[link[0]]):  # hard links before symlinks
        path = root.joinpath(*name)
        path.parent.mkdir(parents=True, exist_ok=True)
        if kinds[name] == "hardlink":
            os.link(root.joinpath(*_plain(target)), path)  # a regular file of the archive, checked above
        else:
            os.symlink(target, path)


def archive_kind(name: str) -> ArchiveKind:
    """The archive kind a file name says: ``"zip"``, ``"tar.gz"`` (``.tar.gz``, ``.tgz``) or ``"none"``."""
    return "zip" if name.endswith(".zip") else "tar.gz" if name.endswith((".tar.gz", ".tgz")) else "none"


def _check_merge(archive: Path, src: Path, dst: Path, root: Path) -> None:
    """Refuse to replace a folder already in ``dst`` by a file or link: older links may pass through it."""
    for child in src.iterdir():
        there = dst / child.name
        if not there.is_dir() or there.is_symlink():
            continue
        if not child.is_dir() or child.is_symlink():
            member = child.relative_to(root).as_posix()
            raise UnsafeArchiveError(archive, f"member {member!r} would replace the folder {there}; "
                                              f"refusing to extract")
        _check_merge(archive, child, there, root)


def _merge_move(src: Path, dst: Path) -> None:
    for child in sorted(src.iterdir()):
        there = dst / child.name
        if child.is_dir() and not child.is_symlink() and there.is_dir() and not there.is_symlink():
            _merge_move(child, there)
        else:  # _check_merge ruled out a folder at ``there``
            there.unlink(missing_ok=True)
            os.replace(child, there)


def safe_extract(archive: str | Path, target: str | Path, kind: ArchiveKind | None = None,
                 inner_archives: Sequence[str] = ()) -> Path:
    """Unpack ``archive`` into ``target`` (created), refusing anything that would escape it.

    Everything is unpacked into a hidden folder inside ``target`` first, and moved into place only
    when the whole archive (inner archives included) unpacked and passed the checks of the module
    docstring; on any error that folder is removed and ``target`` is left as it was.

    Args:
        archive: a ``.zip`` or ``.tar.gz`` file (any compression tarfile reads).
        target: the folder to unpack into; existing files and links with the same names are replaced,
            folders are merged.
        kind: ``"zip"`` or ``"tar.gz"`` (default: from the file name).
        inner_archives: names of archives inside that are unpacked where they lie, then removed.

    Returns:
        ``target``.

    Raises:
        ArchiveError: not an archive of that kind, or a damaged one.
        UnsafeArchiveError: (an ArchiveError) a member with an absolute path or ``..``, a link that
            leaves the target or passes through anything but a folder of the archive, a device, or a
            file that would replace a folder already in ``target``.
    """
    archive, target = Path(archive), Path(target)
    kind = kind or archive_kind(archive.name)
    if kind == "none":
        raise ArchiveError(archive, "not a .zip or .tar.gz archive (judged by its name)")
    target.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{archive.name}.", suffix=".extract", dir=target)).resolve()
    try:
        try:
            (_unpack_zip if kind == "zip" else _unpack_tar)(archive, tmp)
        except _DAMAGED as err:
            reason = " ".join(str(err).split()) or type(err).__name__
            raise ArchiveError(archive, f"damaged {kind} archive ({reason})") from None
        for name in inner_archives:
            for nested in sorted(tmp.rglob(name)):
                try:
                    safe_extract(nested, nested.parent, archive_kind(name))
                except ArchiveError as err:
                    raise type(err)(archive, f"{nested.relative_to(tmp).as_posix()}: {err.reason}") from None
                nested.unlink()
        _check_merge(archive, tmp, target, tmp)
        _merge_move(tmp, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target
