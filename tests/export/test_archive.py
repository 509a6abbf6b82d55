"""Run archives: what goes in, the checksum file, and what `opened_run` refuses."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest

from scenesense.data.archives import UnsafeArchiveError
from scenesense.export.archive import file_sha256, opened_run, pack_run, verify_archive

RUN_FILES = {"config.yaml": "name: x\n", "model_spec.json": "{}", "checkpoint.pt": "weights",
             "metrics.json": "{}", "last.pt": "resume", "train.log": "log", "predictions.csv": "id\n"}


def _run(folder: Path) -> Path:
    folder.mkdir(parents=True)
    for name, text in RUN_FILES.items():
        (folder / name).write_text(text)
    (folder / "eval").mkdir()
    (folder / "eval" / "metrics.json").write_text("{}")
    return folder


def test_pack_holds_the_run_files_only_and_is_reproducible(tmp_path):
    run = _run(tmp_path / "my-run")
    archive, checksum = pack_run(run)
    assert (archive, checksum) == (tmp_path / "my-run.tar.gz", tmp_path / "my-run.tar.gz.sha256")
    with tarfile.open(archive) as tar:
        members = tar.getmembers()
    assert sorted(m.name for m in members) == [f"my-run/{n}" for n in
                                               ("checkpoint.pt", "config.yaml", "metrics.json", "model_spec.json")]
    assert all(m.uid == 0 and m.uname == "" for m in members)
    assert checksum.read_text() == f"{file_sha256(archive)}  my-run.tar.gz\n"
    first = archive.read_bytes()
    pack_run(run, tmp_path / "again.tgz")
    assert (tmp_path / "again.tgz").read_bytes() == first  # same files, same bytes
    assert list(tmp_path.glob(".*.tmp")) == []


def test_pack_needs_a_finished_run(tmp_path):
    run = _run(tmp_path / "r")
    (run / "checkpoint.pt").unlink()
    with pytest.raises(FileNotFoundError, match="not a finished run \\(missing checkpoint.pt\\)"):
        pack_run(run)


def test_opened_run_gives_a_folder_as_is_and_unpacks_an_archive_for_the_block(tmp_path):
    run = _run(tmp_path / "my-run")
    with opened_run(run) as folder:
        assert folder == run
    archive, _ = pack_run(run)
    with opened_run(archive) as folder:
        assert folder.name == "my-run" and (folder / "checkpoint.pt").read_text() == "weights"
        assert not (folder / "last.pt").exists()
        unpacked = folder
    assert not unpacked.exists()  # removed after the block


def test_checksum_problems(tmp_path):
    archive, checksum = pack_run(_run(tmp_path / "r"))
    assert verify_archive(archive) == file_sha256(archive)
    checksum.write_text("not a checksum\n")
    with pytest.raises(ValueError, match="not a SHA-256 checksum file"):
        verify_archive(archive)
    checksum.write_text("0" * 64 + "  r.tar.gz\n")
    with pytest.raises(ValueError, match="differs from 0000"):
        verify_archive(archive)
    with pytest.raises(FileNotFoundError, match="no such archive"):
        verify_archive(tmp_path / "nope.tar.gz")


def _tar(path: Path, members: dict[str, bytes], links: dict[str, str] | None = None) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        for name, target in (links or {}).items():
            info = tarfile.TarInfo(name)
            info.type, info.linkname = tarfile.SYMTYPE, target
            tar.addfile(info)
    path.with_name(path.name + ".sha256").write_text(f"{file_sha256(path)}  {path.name}\n")
    return path


def test_an_archive_without_a_run_or_with_an_escaping_member_is_refused(tmp_path):
    with pytest.raises(ValueError, match="not a run archive"), opened_run(_tar(tmp_path / "a.tar.gz", {"x/y": b""})):
        pass
    unsafe = _tar(tmp_path / "b.tar.gz", {"r/model_spec.json": b"{}"}, {"r/evil": "../../../etc/passwd"})
    with pytest.raises(UnsafeArchiveError), opened_run(unsafe):
        pass
