from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import h5py
import numpy as np
import pytest

from scenesense.data.dataset import FeatureStoreDataset
from scenesense.data.labels import LabelSpace
from scenesense.data.store import open_store_split
from scenesense.extraction.base import FeatureExtractor, ItemError, OutputSpec
from scenesense.extraction.journal import PARTIAL_DIR
from scenesense.extraction.manifest import ManifestItem, read_folder_manifest, read_manifest_csv
from scenesense.extraction.pipeline import extract_manifest
from scenesense.extraction.pipeline_run import extract_batch_safely
from scenesense.extraction.text import MiniLMTextExtractor


class FakeAudio(FeatureExtractor):
    """Reads a file's bytes: ``frames`` [T, 3] (bytes / 255) and ``stats`` [2] (size, mean).

    Content starting with ``BAD`` -> ItemError; ``BOOM`` -> RuntimeError (unexpected);
    ``SHAPE`` -> a wrong-shaped output. ``delay`` (seconds per batch) and ``interrupt_at``
    (raise KeyboardInterrupt on that batch) do not change outputs, so they are not in params.
    """

    modality: ClassVar[str] = "audio"
    input_kind: ClassVar[str] = "audio"

    def __init__(self, scale: float = 1.0, delay: float = 0.0, interrupt_at: int | None = None) -> None:
        self.scale = scale
        self.delay = delay
        self.interrupt_at = interrupt_at
        self.seen: list[str] = []
        self.batches = 0

    def outputs(self) -> dict[str, OutputSpec]:
        return {"frames": OutputSpec("sequence", 3), "stats": OutputSpec("vector", 2)}

    def provenance(self) -> dict[str, Any]:
        return {"extractor": "fake_audio", "params": {"scale": self.scale}, "note": "test double"}

    def extract_batch(self, items: Sequence[str]) -> list[dict[str, np.ndarray] | ItemError]:
        if self.interrupt_at is not None and self.batches == self.interrupt_at:
            raise KeyboardInterrupt
        self.batches += 1
        time.sleep(self.delay)
        return super().extract_batch(items)

    def extract_one(self, item: str) -> dict[str, np.ndarray]:
        self.seen.append(Path(item).name)
        raw = Path(item).read_bytes()
        if raw.startswith(b"BAD"):
            raise ItemError(f"{item}: unreadable audio")
        if raw.startswith(b"BOOM"):
            raise RuntimeError(f"decoder crashed on\n{item}")
        if raw.startswith(b"SHAPE"):
            return {"frames": np.zeros((2, 5)), "stats": np.zeros(2)}
        values = np.frombuffer(raw + b"\0" * (-len(raw) % 3), dtype=np.uint8).astype(np.float32)
        return {"frames": self.scale * values.reshape(-1, 3) / 255,  # [T, 3]
                "stats": np.array([len(raw), values.mean()], dtype=np.float32) * self.scale}


class FakeVision(FeatureExtractor):
    """Reads a video file's bytes: ``faces`` [4]."""

    modality: ClassVar[str] = "vision"
    input_kind: ClassVar[str] = "video"

    def outputs(self) -> dict[str, OutputSpec]:
        return {"faces": OutputSpec("vector", 4)}

    def provenance(self) -> dict[str, Any]:
        return {"extractor": "fake_vision", "params": {}}

    def extract_one(self, item: str) -> dict[str, np.ndarray]:
        raw = Path(item).read_bytes()
        if raw.startswith(b"BAD"):
            raise ItemError(f"{item}: no face found")
        return {"faces": np.array([len(raw), raw[0], raw[-1], sum(raw) % 97], dtype=np.float32)}


@pytest.fixture(scope="module")
def minilm() -> MiniLMTextExtractor:
    return MiniLMTextExtractor(max_tokens=8, batch_size=8)


def write_clips(folder: Path, contents: dict[str, bytes]) -> dict[str, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    for name, data in contents.items():
        (folder / name).write_bytes(data)
        out[name] = folder / name
    return out


def audio_items(folder: Path, n: int, split: str = "test") -> list[ManifestItem]:
    rng = np.random.default_rng(0)
    clips = write_clips(folder, {f"c{i:02d}.wav": rng.integers(1, 255, 3 + i, dtype=np.uint8).tobytes()
                                 for i in range(n)})
    return [ManifestItem(id=f"c{i:02d}", split=split, label="a" if i % 2 else "b",
                         audio=clips[f"c{i:02d}.wav"]) for i in range(n)]


def store_arrays(path: Path) -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {}
    with h5py.File(path, "r") as f:
        f.visititems(lambda name, obj: out.update({name: obj[()]}) if isinstance(obj, h5py.Dataset) else None)
    return out


def assert_same_store(a: Path, b: Path) -> None:
    left, right = store_arrays(a), store_arrays(b)
    assert sorted(left) == sorted(right)
    for name in left:
        np.testing.assert_array_equal(left[name], right[name], err_msg=name)


def read_errors(out: Path) -> list[dict[str, str]]:
    with (out / "errors.csv").open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def test_multimodal_manifest_store(tmp_path, minilm):
    clips = write_clips(tmp_path / "media", {
        "u1.wav": b"\x10\x20\x30\x40\x50", "u2.mp4": b"\x01\x02\x03\x04\x05\x06\x07",
        "u3.wav": b"BAD header", "u4.mp4": b"BAD video", "u5.mp4": b"\x09\x08",
    })
    manifest = tmp_path / "manifest.csv"
    manifest.write_text(
        "id,split,label,text,audio,video,media,dialogue_id,speaker,position\n"
        "u1,train,happy,I am so happy today,media/u1.wav,,,d1,Ann,0\n"
        "u2,train,sad,,,,media/u2.mp4,d1,Bob,1\n"
        "u3,train,sad,,media/u3.wav,,,,,\n"          # audio fails, nothing else: dropped
        "u4,dev,happy,Fine.,,media/u4.mp4,,,,\n"      # vision fails, text present
        "u5,dev,,What?,media/missing.wav,media/u5.mp4,,,,\n"  # missing audio file, unlabelled
        "u6,dev,sad,Oh no,,,,,,\n", encoding="utf-8")
    items = read_manifest_csv(manifest)
    out = tmp_path / "store"
    extractors = {"text": minilm, "audio": FakeAudio(), "vision": FakeVision()}
    report = extract_manifest(items.items, extractors, out, batch_size=2, progress=False, source=items.source)

    assert report.files == {"train": out / "train.h5", "dev": out / "dev.h5"}
    assert report.rows == {"train": 2, "dev": 3}
    assert report.dropped == ("u3",)
    assert report.unlabelled == 1
    assert report.extracted == 4 + 3 + 3  # text u1 u4 u5 u6; audio u1 u2 u3; vision u2 u4 u5
    assert report.no_input == 18 - 10 - 1  # 6 items x 3 extractors, minus attempts, minus u5's missing file
    assert [(f.id, f.feature_set) for f in report.failures] == [("u3", "audio"), ("u4", "vision"),
                                                               ("u5", "audio")]
    assert report.failures[2].message == f"{clips['u1.wav'].parent / 'missing.wav'}: no such file"
    assert [(r["id"], r["split"], r["feature_set"]) for r in read_errors(out)] == [
        ("u3", "train", "audio"), ("u4", "dev", "vision"), ("u5", "dev", "audio")]
    assert not (out / PARTIAL_DIR).exists()

    train, dev = open_store_split(out / "train.h5"), open_store_split(out / "dev.h5")
    assert train.label_space.names == dev.label_space.names == ("happy", "sad")
    assert train.ids == ("u1", "u2") and dev.ids == ("u4", "u5", "u6")
    assert list(dev.labels) == [0, -1, 1]
    assert train.dialogue_ids == ("d1", "d1") and train.speakers == ("Ann", "Bob")
    assert list(train.positions) == [0, 1]
    assert {k: (v.modality, v.kind, v.dim) for k, v in train.features.items()} == {
        "text": ("text", "sequence", 384), "text_sentence": ("text", "vector", 384),
        "audio": ("audio", "sequence", 3), "audio_stats": ("audio", "vector", 2),
        "vision": ("vision", "vector", 4)}
    text = train.features["text"].provenance
    assert text["extractor"] == "minilm" and text["params"] == {"model_path": None, "max_tokens": 8}
    assert text["extraction"]["manifest"]["path"] == str(manifest.resolve())
    assert text["extraction"]["counts"] == {"items": 3, "present": 1, "failed": 0, "no_input": 2}
    assert dev.features["audio"].provenance["extraction"]["counts"] == {
        "items": 3, "present": 0, "failed": 1, "no_input": 2}
    assert dev.source["unlabelled"] == 1 and train.source["dropped"] == 1

    with h5py.File(out / "dev.h5", "r") as f:
        assert list(f["features/vision/present"][:]) == [False, True, False]
        assert list(f["features/audio/present"][:]) == [False, False, False]
        assert list(f["features/text/present"][:]) == [True, True, True]
        np.testing.assert_array_equal(f["features/vision/data"][1], [2, 9, 8, 17])
        direct = minilm.extract(["Fine.", "What?", "Oh no"])
        np.testing.assert_allclose(f["features/text_sentence/data"][:], direct.sentence, atol=1e-5)
        lengths = f["features/text/lengths"][:]
        assert list(lengths) == [t.shape[0] for t in direct.tokens]
        np.testing.assert_allclose(f["features/text/data"][0, : lengths[0]], direct.tokens[0], atol=1e-4)
    with h5py.File(out / "train.h5", "r") as f:
        np.testing.assert_allclose(f["features/audio/data"][0, :2], [[16 / 255, 32 / 255, 48 / 255],
                                                                     [64 / 255, 80 / 255, 0]], rtol=1e-6)
        assert list(f["features/audio/lengths"][:]) == [2, 3]
    sample = FeatureStoreDataset(out / "dev.h5", ["text", "vision"])[0]
    assert sample["present"] == {"text": True, "vision": False}


def test_unexpected_errors_are_isolated_and_one_line(tmp_path):
    clips = write_clips(tmp_path, {"a.wav": b"abc", "b.wav": b"BOOM!", "c.wav": b"SHAPE", "d.wav": b"xyz"})
    extractor = FakeAudio()
    results = extract_batch_safely(extractor, [str(clips[n]) for n in ("a.wav", "b.wav", "c.wav", "d.wav")])
    assert isinstance(results[0], dict) and isinstance(results[3], dict)
    assert results[1] == f"RuntimeError: decoder crashed on {clips['b.wav']}"
    assert results[2] == f"{clips['c.wav']}: output 'frames' has shape [2, 5], expected [T >= 1, 3]"
    assert results[0]["stats"].dtype == np.float32


def test_interrupted_run_resumes_with_only_the_rest(tmp_path):
    items = audio_items(tmp_path / "media", 11)
    fresh = tmp_path / "fresh"
    extract_manifest(items, {"audio": FakeAudio()}, fresh, batch_size=3, progress=False)

    out = tmp_path / "store"
    with pytest.raises(KeyboardInterrupt):
        extract_manifest(items, {"audio": FakeAudio(interrupt_at=2)}, out, batch_size=3, progress=False)
    assert not (out / "test.h5").exists()
    shards = list((out / PARTIAL_DIR / "test").glob("audio-*/*.npz"))
    assert len(shards) == 2  # two finished batches of 3 items journaled

    again = FakeAudio()
    report = extract_manifest(items, {"audio": again}, out, batch_size=3, progress=False)
    assert sorted(again.seen) == [f"c{i:02d}.wav" for i in range(6, 11)]
    assert (report.extracted, report.resumed) == (5, 6)
    assert_same_store(out / "test.h5", fresh / "test.h5")
    assert not (out / PARTIAL_DIR).exists()


def test_changed_params_or_files_are_not_resumed(tmp_path):
    items = audio_items(tmp_path / "media", 4)
    out = tmp_path / "store"
    with pytest.raises(KeyboardInterrupt):
        extract_manifest(items, {"audio": FakeAudio(interrupt_at=1)}, out, batch_size=2, progress=False)
    other = FakeAudio(scale=2.0, interrupt_at=1)  # other parameters: the journal of scale=1 is discarded
    with pytest.raises(KeyboardInterrupt):
        extract_manifest(items, {"audio": other}, out, batch_size=2, progress=False)
    assert other.seen == ["c00.wav", "c01.wav"]
    assert len(list((out / PARTIAL_DIR / "test").iterdir())) == 1
    items[0].audio.write_bytes(b"\x05\x06\x07\x08")  # a changed file is extracted again
    os.utime(items[0].audio, ns=(1, 1))
    last = FakeAudio(scale=2.0)
    extract_manifest(items, {"audio": last}, out, batch_size=2, progress=False)
    assert sorted(last.seen) == ["c00.wav", "c02.wav", "c03.wav"]
    with h5py.File(out / "test.h5", "r") as f:
        np.testing.assert_allclose(f["features/audio_stats/data"][0], [8.0, 2 * 26 / 6], rtol=1e-6)


_KILL_SCRIPT = """
import sys
from tests.extraction.test_pipeline import FakeAudio
from scenesense.extraction.manifest import read_manifest_csv
from scenesense.extraction.pipeline import extract_manifest
m = read_manifest_csv(sys.argv[1])
extract_manifest(m.items, {"audio": FakeAudio(delay=0.25)}, sys.argv[2], batch_size=2, progress=False)
"""


def test_sigkilled_run_resumes(tmp_path):
    items = audio_items(tmp_path / "media", 16)
    manifest = tmp_path / "m.csv"
    manifest.write_text("id,label,audio\n" + "".join(f"{i.id},{i.label},{i.audio}\n" for i in items))
    out = tmp_path / "store"
    journal = out / PARTIAL_DIR / "test"
    argv = [sys.executable, "-c", _KILL_SCRIPT, str(manifest), str(out)]
    proc = subprocess.Popen(argv, stderr=subprocess.PIPE, cwd=Path(__file__).parents[2])  # the repo root
    deadline = time.monotonic() + 60
    while len(list(journal.glob("audio-*/*.npz"))) < 2:
        assert proc.poll() is None, proc.stderr.read().decode()
        assert time.monotonic() < deadline, "no journal shard within 60 s"
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    assert not (out / "test.h5").exists()
    done = sum(len(np.load(p)["ids"]) for p in journal.glob("audio-*/*.npz"))
    assert 4 <= done < 16

    again = FakeAudio()
    report = extract_manifest(read_manifest_csv(manifest).items, {"audio": again}, out, batch_size=2,
                              progress=False)
    assert len(again.seen) == 16 - done == report.extracted
    fresh = tmp_path / "fresh"
    extract_manifest(read_manifest_csv(manifest).items, {"audio": FakeAudio()}, fresh, batch_size=5,
                     progress=False)
    assert_same_store(out / "test.h5", fresh / "test.h5")


def test_worker_processes_give_the_same_store(tmp_path):
    items = audio_items(tmp_path / "media", 9)
    for i in range(len(items)):
        (tmp_path / "media" / f"v{i}.mp4").write_bytes(bytes([i + 1, 2, 3]) if i != 4 else b"BAD")
    items = [ManifestItem(id=it.id, label=it.label, audio=it.audio, video=tmp_path / "media" / f"v{i}.mp4")
             for i, it in enumerate(items)]
    one, two = tmp_path / "one", tmp_path / "two"
    extract_manifest(items, {"audio": FakeAudio(), "vision": FakeVision()}, one, batch_size=2, progress=False)
    report = extract_manifest(items, {"audio": FakeAudio(), "vision": FakeVision()}, two, batch_size=2,
                              workers=2, progress=False)
    assert [(f.id, f.feature_set) for f in report.failures] == [("c04", "vision")]
    assert_same_store(one / "test.h5", two / "test.h5")


def test_unlabelled_folder_and_label_space(tmp_path):
    write_clips(tmp_path / "clips", {"x.wav": b"\x01\x02\x03", "y.mp4": b"\x04\x05"})
    manifest = read_folder_manifest(tmp_path / "clips")
    report = extract_manifest(manifest.items, {"audio": FakeAudio()}, tmp_path / "s", progress=False)
    split = open_store_split(report.files["test"])
    assert split.ids == ("x", "y") and list(split.labels) == [-1, -1]
    assert split.label_space.names == ("unlabelled",) and split.source["unlabelled"] == 2
    space = LabelSpace(("neutral", "happy"))
    report = extract_manifest(manifest.items, {"audio": FakeAudio()}, tmp_path / "t", label_space=space,
                              progress=False)
    assert open_store_split(report.files["test"]).label_space == space
    bad = [ManifestItem(id="x", label="angry", audio=tmp_path / "clips" / "x.wav", where="m.csv: line 2")]
    with pytest.raises(ValueError, match=r"m.csv: line 2: label 'angry' is not in the label set"):
        extract_manifest(bad, {"audio": FakeAudio()}, tmp_path / "u", label_space=space, progress=False)


def test_nothing_extracted_is_a_runtime_error(tmp_path):
    write_clips(tmp_path / "clips", {"x.wav": b"BAD", "y.wav": b"BAD too"})
    items = read_folder_manifest(tmp_path / "clips").items
    with pytest.raises(RuntimeError, match="no item could be extracted"):
        extract_manifest(items, {"audio": FakeAudio()}, tmp_path / "s", progress=False)
    assert len(read_errors(tmp_path / "s")) == 2


@pytest.mark.parametrize(("extractors", "kwargs", "message"), [
    ({"audio": FakeAudio(), "audio_stats": FakeVision()}, {}, "'audio_stats' .* is also made by"),
    ({"a/b": FakeAudio()}, {}, "feature set name 'a/b'"),
    ({}, {}, "no extractors"),
    ({"audio": FakeAudio()}, {"workers": 0}, "workers must be a positive int"),
    ({"audio": FakeAudio()}, {"batch_size": 0}, "batch_size must be a positive int"),
    ({"audio": ("minilm", {"max_tokens": 0})}, {}, "max_tokens must be a positive int"),
])
def test_bad_arguments(tmp_path, extractors, kwargs, message):
    items = audio_items(tmp_path, 1)
    with pytest.raises(ValueError, match=message):
        extract_manifest(items, extractors, tmp_path / "s", progress=False, **kwargs)


def test_unrebuildable_extractor_needs_one_worker(tmp_path):
    class Opaque(FakeVision):
        def provenance(self) -> dict[str, Any]:
            return {"what": "no params"}

    items = [ManifestItem(id="a", video=write_clips(tmp_path, {"a.mp4": b"\x01"})["a.mp4"])]
    with pytest.raises(ValueError, match="worker processes cannot rebuild it"):
        extract_manifest(items, {"vision": Opaque()}, tmp_path / "s", workers=2, progress=False)
    assert extract_manifest(items, {"vision": Opaque()}, tmp_path / "s", progress=False).rows == {"test": 1}


def test_a_finished_store_with_the_same_inputs_is_reused(tmp_path):
    items = audio_items(tmp_path / "media", 5)
    items[2].audio.write_bytes(b"BAD clip")
    out = tmp_path / "store"
    first = extract_manifest(items, {"audio": FakeAudio()}, out, batch_size=2, progress=False)
    stamp = (out / "test.h5").stat().st_mtime_ns

    again = FakeAudio()
    report = extract_manifest(items, {"audio": again}, out, batch_size=3, progress=False)
    assert (again.batches, again.seen) == (0, [])  # no extraction work at all
    assert report.reused and (report.extracted, report.resumed) == (0, 0)
    assert (report.files, report.rows, report.failures, report.dropped, report.feature_sets) == (
        first.files, first.rows, first.failures, first.dropped, first.feature_sets)
    assert (out / "test.h5").stat().st_mtime_ns == stamp and not first.reused


@pytest.mark.parametrize("change", ["params", "input", "label", "store"])
def test_a_store_made_from_other_inputs_is_extracted_again(tmp_path, change):
    items = audio_items(tmp_path / "media", 4)
    out = tmp_path / "store"
    extract_manifest(items, {"audio": FakeAudio()}, out, progress=False)
    scale = 2.0 if change == "params" else 1.0
    if change == "input":
        items[1].audio.write_bytes(b"\x01\x02")
    elif change == "label":
        items[0] = ManifestItem(id=items[0].id, split="test", label="a", audio=items[0].audio)
    elif change == "store":
        os.utime(out / "test.h5", ns=(1, 1))
    extractor = FakeAudio(scale=scale)
    report = extract_manifest(items, {"audio": extractor}, out, progress=False)
    assert not report.reused and len(extractor.seen) == 4
