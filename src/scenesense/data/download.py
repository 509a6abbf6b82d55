"""``scenesense data download``: fetch published datasets, verify them, unpack them safely.

The registry (`REGISTRY`) is a small typed table: dataset name -> `RemoteFile` entries
(URL, SHA-256 or ``None``, size when known, archive kind, target folder, what it unpacks to):

- ``meld``: the three ``{train,dev,test}_sent_emo.csv`` from the declare-lab/MELD GitHub repository
  (``data/MELD/``, raw URLs; formats.md 1.2).
- ``meld_raw`` / ``meld_features``: ``MELD.Raw.tar.gz`` (its inner ``{train,dev,test}.tar.gz`` are
  unpacked too) and ``MELD.Features.Models.tar.gz`` from the umich "mihalcea/downloads" host
  (formats.md 1.1).
- ``ravdess`` / ``ravdess_song``: ``Audio_Speech_Actors_01-24.zip`` -> ``audio/Actor_XX/`` and
  ``Audio_Song_Actors_01-24.zip`` -> ``song/Actor_XX/`` from Zenodo record 1188976 (formats.md 7).
  Sizes and MD5s are the ones Zenodo publishes; the SHA-256s were computed by independent users of
  the same archives (quoted in several public repositories). Both hashes are always verified.

Where no checksum is published (``sha256=None``) the first download computes it, prints it and
records it in ``<dest>/checksums.json``; later runs verify against that record.

Integrity and robustness:

- Downloads go to ``<dest>/<file>.part`` and resume with an HTTP ``Range`` request (a transfer that
  stops early is resumed a few times in the same run; a kept ``.part`` is resumed by the next run;
  a server that ignores ``Range`` restarts the file from zero).
- The final name appears only after the checksum matches (``os.replace``). A mismatch deletes the
  part file and raises `ChecksumError`: one line naming the file, expected and actual hash.
- An unreachable host or an HTTP error raises `DownloadError`: one line with the URL, the
  reason and the hint to fetch the file another way and pass ``--from-file PATH``, which verifies
  and installs a local copy exactly as a download would.
- An archive is unpacked before it is installed or recorded: a file that is not an archive of the
  expected kind, is damaged, or is unsafe raises `ArchiveError` (one line naming the file),
  and is deleted rather than kept under its final name, with no checksum recorded for it (a file
  already installed that fails to unpack is deleted with its record). The next run fetches it again.

Unpacking is `scenesense.data.archives.safe_extract` (its module docstring says what it refuses).
"""

from __future__ import annotations

import hashlib
import http.client
import json
import logging
import os
import shutil
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from functools import partial
from pathlib import Path
from typing import Any, Literal

from tqdm import tqdm

from scenesense.data.archives import ArchiveError, ArchiveKind, safe_extract
from scenesense.utils.io import atomic_write_text

logger = logging.getLogger(__name__)

CHECKSUMS = "checksums.json"
HINT = "fetch it another way (browser, another machine) and pass --from-file PATH"
_BLOCK = 1 << 20
_ATTEMPTS = 5  # transfers that stop early are resumed this many times within one run
_USER_AGENT = "scenesense-download/1 (python-urllib)"


class DownloadError(OSError):
    """A host is unreachable, answers with an HTTP error, or a transfer keeps failing."""


class ChecksumError(ValueError):
    """A file's size or hash differs from the published or recorded one."""


@dataclass(frozen=True)
class RemoteFile:
    """One downloadable file.

    Fields: ``name`` (file name in the destination folder); ``url``; ``sha256`` (``None``: not
    published, recorded on first download); ``size`` in bytes (``None``: unknown); ``archive``
    (``"none"``, ``"zip"``, ``"tar.gz"``); ``extract_to`` (folder relative to the destination);
    ``unpacks_to`` (what appears there, for ``--list``); ``inner_archives`` (names of archives
    inside it that are unpacked in place and then removed); ``md5`` (the provider's hash, if any).
    """

    name: str
    url: str
    sha256: str | None
    size: int | None = None
    archive: ArchiveKind = "none"
    extract_to: str = "."
    unpacks_to: str = ""
    inner_archives: tuple[str, ...] = ()
    md5: str | None = None


@dataclass(frozen=True)
class DatasetEntry:
    """A downloadable dataset: ``name``, one-line ``description``, ``homepage``, ``license``, ``files``."""

    name: str
    description: str
    homepage: str
    license: str
    files: tuple[RemoteFile, ...]


_MELD_CSV = "https://raw.githubusercontent.com/declare-lab/MELD/master/data/MELD/{}"
_UMICH = "https://web.eecs.umich.edu/~mihalcea/downloads/{}"
_ZENODO = "https://zenodo.org/records/1188976/files/{}?download=1"

REGISTRY: dict[str, DatasetEntry] = {
    "meld": DatasetEntry(
        "meld", "MELD annotations: {train,dev,test}_sent_emo.csv", "https://github.com/declare-lab/MELD",
        "GPL-3.0",
        tuple(RemoteFile(f"{s}_sent_emo.csv", _MELD_CSV.format(f"{s}_sent_emo.csv"), None,
                         unpacks_to=f"{s}_sent_emo.csv") for s in ("train", "dev", "test")),
    ),
    "meld_raw": DatasetEntry(
        "meld_raw", "MELD raw release: videos and CSVs (about 10 GB)", "https://github.com/declare-lab/MELD",
        "GPL-3.0",
        (RemoteFile("MELD.Raw.tar.gz", _UMICH.format("MELD.Raw.tar.gz"), None, archive="tar.gz",
                    unpacks_to="MELD.Raw/ with train_splits/, dev_splits_complete/, "
                               "output_repeated_splits_test/ (*.mp4) and the CSVs",
                    inner_archives=("train.tar.gz", "dev.tar.gz", "test.tar.gz")),),
    ),
    "meld_features": DatasetEntry(
        "meld_features", "MELD feature release: pickles and baseline weights",
        "https://github.com/declare-lab/MELD", "GPL-3.0",
        (RemoteFile("MELD.Features.Models.tar.gz", _UMICH.format("MELD.Features.Models.tar.gz"), None,
                    archive="tar.gz", unpacks_to="MELD.Features.Models/features/*.p[kl] and models/"),),
    ),
    "ravdess": DatasetEntry(
        "ravdess", "RAVDESS audio-only speech, 24 actors x 60 clips", "https://zenodo.org/records/1188976",
        "CC BY-NC-SA 4.0",
        (RemoteFile("Audio_Speech_Actors_01-24.zip", _ZENODO.format("Audio_Speech_Actors_01-24.zip"),
                    "5d208e01632cc3e5242106fa2af3273e6dc5239fb8143131979ac74c4aa40657", 208_468_073,
                    archive="zip", extract_to="audio", unpacks_to="audio/Actor_01..24/03-01-*.wav (1,440)",
                    md5="bc696df654c87fed845eb13823edef8a"),),
    ),
    "ravdess_song": DatasetEntry(
        "ravdess_song", "RAVDESS audio-only song, 23 actors x 44 clips", "https://zenodo.org/records/1188976",
        "CC BY-NC-SA 4.0",
        (RemoteFile("Audio_Song_Actors_01-24.zip", _ZENODO.format("Audio_Song_Actors_01-24.zip"),
                    "89f3df66cc67ebb70c8af6f72f3f359bee497f6f763a9d863b6477619716d428", 225_505_317,
                    archive="zip", extract_to="song",
                    unpacks_to="song/Actor_XX/03-02-*.wav (1,012; no actor 18)",
                    md5="5411230427d67a21e18aa4d466e6d1b9"),),
    ),
}


@dataclass(frozen=True)
class FileResult:
    """What happened to one file.

    Fields: ``name``; ``path`` (the verified file); ``sha256``; ``size``; ``action``
    (``downloaded``, ``resumed``, ``installed`` from ``--from-file``, or ``present`` and verified);
    ``checked_against`` (``registry``, ``recorded``, or ``recorded now`` on a first download);
    ``extracted_to`` (folder, or ``None`` for plain files).
    """

    name: str
    path: Path
    sha256: str
    size: int
    action: Literal["downloaded", "resumed", "installed", "present"]
    checked_against: Literal["registry", "recorded", "recorded now"]
    extracted_to: Path | None


@dataclass(frozen=True)
class DownloadResult:
    """A finished ``download_dataset``: the ``dataset`` name, its ``dest`` folder and per-file ``files``."""

    dataset: str
    dest: Path
    files: tuple[FileResult, ...]

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form."""
        return {"dataset": self.dataset, "dest": str(self.dest),
                "files": [{k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(f).items()}
                          for f in self.files]}


def registry_table(registry: Mapping[str, DatasetEntry] | None = None) -> list[dict[str, Any]]:
    """One row per file of every dataset: name, file, size, sha256, archive, url, unpacks_to."""
    reg = REGISTRY if registry is None else registry
    return [{"dataset": e.name, "file": f.name, "size": f.size, "sha256": f.sha256, "archive": f.archive,
             "url": f.url, "unpacks_to": f.unpacks_to, "description": e.description, "license": e.license}
            for e in reg.values() for f in e.files]


# ---- checksums ------------------------------------------------------------------------------------


def _hashes(path: Path, md5: bool) -> tuple[str, str | None]:
    sha, mh = hashlib.sha256(), (hashlib.md5(usedforsecurity=False) if md5 else None)
    with path.open("rb") as f:
        for block in iter(lambda: f.read(_BLOCK), b""):
            sha.update(block)
            if mh is not None:
                mh.update(block)
    return sha.hexdigest(), (mh.hexdigest() if mh is not None else None)


def _read_records(dest: Path) -> dict[str, dict[str, Any]]:
    path = dest / CHECKSUMS
    if not path.exists():
        return {}
    try:
        records = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise ChecksumError(f"{path}: not a readable checksum record ({err})") from None
    if not isinstance(records, dict):
        raise ChecksumError(f"{path}: not a checksum record (expected a JSON object)")
    return records


def _write_records(dest: Path, records: Mapping[str, Any]) -> None:
    atomic_write_text(dest / CHECKSUMS, json.dumps(records, indent=2, sort_keys=True) + "\n")


def _verify(file: RemoteFile, path: Path, expected: str | None, origin: str, *, discard: bool) -> str:
    """Check size, SHA-256 (and MD5); return the SHA-256. ``discard`` deletes ``path`` on a mismatch."""
    size = path.stat().st_size
    sha, md5 = _hashes(path, file.md5 is not None)
    problem = None
    if file.size is not None and size != file.size:
        problem = f"expected {file.size} bytes, got {size}"
    elif expected is not None and sha != expected:
        problem = f"expected sha256 {expected} ({origin}), got {sha}"
    elif file.md5 is not None and md5 != file.md5:
        problem = f"expected md5 {file.md5}, got {md5}"
    if problem is None:
        return sha
    if discard:
        path.unlink(missing_ok=True)
        raise ChecksumError(f"{file.name}: checksum mismatch: {problem}; the partial file was deleted, "
                            f"re-run to download it again")
    raise ChecksumError(f"{path}: checksum mismatch: {problem}; delete it to download it again")


# ---- transfer -------------------------------------------------------------------------------------


def _open(url: str, offset: int, timeout: float) -> http.client.HTTPResponse | None:
    """Open ``url`` from byte ``offset``; ``None`` when the server says the range is past the end."""
    headers = {"User-Agent": _USER_AGENT, **({"Range": f"bytes={offset}-"} if offset else {})}
    try:
        return urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=timeout)
    except urllib.error.HTTPError as err:
        if err.code == 416 and offset:
            return None
        raise DownloadError(f"{url}: HTTP {err.code} {err.reason}; {HINT}") from None
    except urllib.error.URLError as err:
        raise DownloadError(f"{url}: cannot reach host ({err.reason}); {HINT}") from None
    except (OSError, http.client.HTTPException) as err:
        raise DownloadError(f"{url}: cannot reach host ({err or type(err).__name__}); {HINT}") from None


def _start_and_total(resp: http.client.HTTPResponse, offset: int) -> tuple[int, int | None]:
    """Where this response starts (``offset`` for a matching 206, else 0) and the full file size."""
    length = resp.headers.get("Content-Length")
    content_range = resp.headers.get("Content-Range", "")  # "bytes 100-199/200"
    if offset and resp.status == 206 and content_range.startswith(f"bytes {offset}-"):
        total = content_range.rsplit("/", 1)[-1]
        return offset, int(total) if total.isdigit() else None
    return 0, int(length) if length and length.isdigit() else None


def _transfer(file: RemoteFile, part: Path, timeout: float, progress: bool) -> bool:
    """Fill ``part`` with the whole file, resuming with Range requests; True when it resumed."""
    resumed, got, total = False, 0, None
    for _ in range(_ATTEMPTS):
        offset = part.stat().st_size if part.exists() else 0
        if file.size is not None and offset > file.size:
            part.unlink()
            offset = 0
        resp = _open(file.url, offset, timeout)
        if resp is None:  # 416: the part already holds every byte; the checksum decides
            return True
        error = None
        with resp:
            start, total = _start_and_total(resp, offset)
            resumed = resumed or start > 0
            if offset and not start:
                logger.info("%s: the server ignored the Range request; starting again from 0", file.name)
            with part.open("ab" if start else "wb") as out, tqdm(
                    total=total, initial=start, unit="B", unit_scale=True, desc=file.name,
                    disable=None if progress else True, leave=False) as bar:
                try:
                    for block in iter(partial(resp.read, _BLOCK), b""):
                        out.write(block)
                        bar.update(len(block))
                except (OSError, http.client.HTTPException) as err:
                    error = str(err) or type(err).__name__
        got = part.stat().st_size
        if error is None and (total is None or got >= total):
            return resumed
        logger.info("%s: transfer stopped at %d of %s bytes (%s); resuming", file.name, got, total,
                    error or "connection closed")
    raise DownloadError(f"{file.url}: transfer kept stopping early ({got} of {total} bytes kept in {part}; "
                        f"re-run to resume); {HINT}")


def _check_space(folder: Path, needed: int | None, what: str) -> None:
    if needed is None:
        return
    free = shutil.disk_usage(folder).free
    if free < needed:
        raise DownloadError(f"{folder}: not enough free disk space for {what} "
                            f"({needed / 1e9:.2f} GB needed, {free / 1e9:.2f} GB free)")


def _copy(src: Path, part: Path) -> None:
    with src.open("rb") as fin, part.open("wb") as fout:
        shutil.copyfileobj(fin, fout, _BLOCK)


# ---- the command ----------------------------------------------------------------------------------


def _match_local(entry: DatasetEntry, from_files: Sequence[str | Path]) -> dict[str, Path]:
    """File name -> local copy; a single-file dataset takes any name, else names must match."""
    out: dict[str, Path] = {}
    names = [f.name for f in entry.files]
    for raw in from_files:
        path = Path(raw).expanduser()
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no such file (--from-file)")
        name = names[0] if len(names) == 1 else path.name
        if name not in names:
            raise ValueError(f"{path}: --from-file must be named like one of {names} "
                             f"for dataset {entry.name!r}")
        out[name] = path
    return out


def _fetch_one(file: RemoteFile, dest: Path, records: dict[str, Any], local: Path | None,
               timeout: float, progress: bool) -> FileResult:
    final, part = dest / file.name, dest / f"{file.name}.part"
    recorded = records.get(file.name, {}).get("sha256")
    expected = file.sha256 or recorded
    against = "registry" if file.sha256 else "recorded" if recorded else "recorded now"
    origin = "from the registry" if file.sha256 else f"recorded in {dest / CHECKSUMS}"
    if local is None and final.exists():
        source, action = final, "present"
        sha = _verify(file, final, expected, origin, discard=False)
        shown, undo = str(final), "deleted it and its record; re-run to download it again"
    else:
        if local is not None:
            _check_space(dest, local.stat().st_size, file.name)
            _copy(local, part)
            action = "installed"
        else:
            have = part.stat().st_size if part.exists() else 0
            _check_space(dest, None if file.size is None else file.size - have, file.name)
            logger.info("downloading %s from %s", file.name, file.url)
            action = "resumed" if _transfer(file, part, timeout, progress) else "downloaded"
        source = part
        sha = _verify(file, part, expected, origin, discard=True)
        shown = str(local) if local is not None else f"{file.name} from {file.url}"
        undo = "nothing was installed or recorded" + ("" if local else "; re-run to download it again")
    entry = records.get(file.name, {})
    if entry.get("sha256") != sha:
        entry = {}
    extracted = None
    if file.archive != "none":
        extracted = dest / file.extract_to
        if entry.get("extracted_to") != file.extract_to or not extracted.is_dir():
            logger.info("unpacking %s into %s", file.name, extracted)
            try:
                safe_extract(source, extracted, file.archive, file.inner_archives)
            except ArchiveError as err:  # never keep or record a file that does not unpack
                source.unlink(missing_ok=True)
                if records.pop(file.name, None) is not None:
                    _write_records(dest, records)
                raise type(err)(shown, f"{err.reason}; {undo}") from None
    if source == part:
        os.replace(part, final)
    if expected is None:
        logger.info("%s: no published checksum; recorded sha256 %s in %s (later runs verify against it)",
                    file.name, sha, dest / CHECKSUMS)
    if not entry:
        entry = {"sha256": sha, "size": final.stat().st_size, "url": file.url,
                 "source": "registry" if file.sha256 else "--from-file" if local else "first download",
                 "recorded_at": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    if extracted is not None:
        entry["extracted_to"] = file.extract_to
    records[file.name] = entry
    _write_records(dest, records)
    return FileResult(file.name, final, sha, final.stat().st_size, action,  # type: ignore[arg-type]
                      against, extracted)  # type: ignore[arg-type]


def download_dataset(name: str, dest: str | Path | None = None, *, from_files: Sequence[str | Path] = (),
                     registry: Mapping[str, DatasetEntry] | None = None, timeout: float = 60.0,
                     progress: bool = True) -> DownloadResult:
    """Download (or install from local copies), verify and unpack every file of dataset ``name``.

    Files already in ``dest`` are verified, not fetched again; archives already unpacked are not
    unpacked again.

    Args:
        name: a key of the registry (`REGISTRY` by default).
        dest: destination folder (default ``data/<name>``).
        from_files: local copies to install instead of downloading (a single-file dataset accepts
            any file name; otherwise names must match the registry's).
        registry: the table to use instead of `REGISTRY` (mirrors, tests).
        timeout: seconds to wait for a connection or a block of data.
        progress: show a progress bar on an interactive terminal.

    Returns:
        The `DownloadResult`.

    Raises:
        KeyError: unknown dataset (the message lists the valid names).
        DownloadError: unreachable host, HTTP error, repeated short transfers, not enough disk.
        ChecksumError: a size or hash mismatch (the part file is deleted).
        ArchiveError: a file that should be an archive is not one, or is damaged; it is deleted and
            not recorded. UnsafeArchiveError (an ArchiveError): a member would escape its folder.
    """
    reg = REGISTRY if registry is None else registry
    if name not in reg:
        raise KeyError(f"unknown dataset {name!r} to download; choose one of {sorted(reg)}")
    entry = reg[name]
    dest = Path(dest if dest is not None else Path("data") / name).expanduser()
    local = _match_local(entry, from_files)
    dest.mkdir(parents=True, exist_ok=True)
    records = _read_records(dest)
    files = tuple(_fetch_one(f, dest, records, local.get(f.name), timeout, progress) for f in entry.files)
    return DownloadResult(name, dest, files)
