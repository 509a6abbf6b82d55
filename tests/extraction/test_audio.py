"""openSMILE extractors (``egemaps``, ``compare``, ``egemaps_lld``, ``compare_lld``): the extractor
contract, measured dims, determinism, rate/channel invariance, video input and per-item errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("av")
pytest.importorskip("opensmile")

from scenesense.extraction import EXTRACTORS  # noqa: E402
from scenesense.extraction.audio import (  # noqa: E402
    LLD_HOP_MS,
    ComParEExtractor,
    ComParELLDExtractor,
    EGeMAPSExtractor,
    EGeMAPSLLDExtractor,
    pool_frames,
)
from scenesense.extraction.base import FeatureExtractor, ItemError, OutputSpec  # noqa: E402
from tests.extraction.audio_fixtures import voiced, write_video, write_wav  # noqa: E402

# name -> (class, output, kind, dim measured with opensmile 2.6.0)
EXPECTED = {
    "egemaps": (EGeMAPSExtractor, "functionals", "vector", 88),
    "compare": (ComParEExtractor, "functionals", "vector", 6373),
    "egemaps_lld": (EGeMAPSLLDExtractor, "lld", "sequence", 25),
    "compare_lld": (ComParELLDExtractor, "lld", "sequence", 65),
}
SECONDS = 1.0


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("clips")
    x16, x48 = voiced(SECONDS, 16000), voiced(SECONDS, 48000)
    return {
        "mono16": write_wav(d / "mono16.wav", x16, 16000),
        "stereo48": write_wav(d / "stereo48.wav", np.stack([x48, x48]), 48000),
        "other": write_wav(d / "other.wav", voiced(SECONDS, 16000, f0=260, amplitude=0.1), 16000),
        "video": write_video(d / "talk.mp4", SECONDS, x16),
        "mute_video": write_video(d / "mute.mp4", 0.5),
        "silent": write_wav(d / "silent.wav", np.zeros(16000), 16000),
        "too_short": write_wav(d / "blip.wav", voiced(0.05, 16000), 16000),
    }


@pytest.fixture(scope="module")
def extractors() -> dict[str, FeatureExtractor]:
    return {name: EXTRACTORS.create(name) for name in EXPECTED}


def test_importing_the_module_loads_neither_opensmile_nor_av():
    code = ("import sys, scenesense.extraction.audio as a; a.EGeMAPSExtractor(); "
            "print(sorted(m for m in ('opensmile', 'av', 'pandas') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize("name", list(EXPECTED))
def test_registered_with_modality_input_kind_and_measured_dims(extractors, name):
    cls, output, kind, dim = EXPECTED[name]
    extractor = extractors[name]
    assert type(extractor) is cls and EXTRACTORS.get(name) is cls
    assert (cls.modality, cls.input_kind) == ("audio", "audio")
    assert extractor.outputs() == {output: OutputSpec(kind, dim)}
    assert len(extractor.feature_names) == dim


@pytest.mark.parametrize("name", list(EXPECTED))
def test_outputs_are_finite_float32_of_the_declared_shape_and_deterministic(extractors, clips, name):
    _, output, kind, dim = EXPECTED[name]
    first = extractors[name].extract_one(str(clips["mono16"]))
    again = EXTRACTORS.create(name).extract_one(str(clips["mono16"]))
    assert set(first) == {output}
    values = first[output]
    assert values.dtype == np.float32 and np.isfinite(values).all()
    if kind == "vector":
        assert values.shape == (dim,)
    else:  # one frame per 10 ms, minus the analysis window
        assert values.shape[1] == dim and abs(values.shape[0] - SECONDS * 1000 / LLD_HOP_MS) <= 6
    np.testing.assert_array_equal(values, again[output])


@pytest.mark.parametrize("name", list(EXPECTED))
def test_stereo_48k_and_mono_16k_of_one_signal_give_close_features(extractors, clips, name):
    _, output, _, _ = EXPECTED[name]
    extractor = extractors[name]
    mono, stereo, other = (extractor.extract_one(str(clips[k]))[output] for k in ("mono16", "stereo48", "other"))
    assert stereo.shape == mono.shape

    def distance(a: np.ndarray, b: np.ndarray) -> float:
        return float(np.linalg.norm(a - b) / np.linalg.norm(b))

    # measured: same signal 1e-4..7e-4, a different voice (f0 260 Hz, -10 dB) 0.1..3
    assert distance(stereo, mono) < 0.005
    assert distance(other, mono) > 0.05


def test_video_file_audio_track_gives_close_egemaps(extractors, clips):
    from_video = extractors["egemaps"].extract_one(str(clips["video"]))["functionals"]
    from_wav = extractors["egemaps"].extract_one(str(clips["mono16"]))["functionals"]
    assert np.linalg.norm(from_video - from_wav) / np.linalg.norm(from_wav) < 0.02  # AAC is lossy; measured 0.002


@pytest.mark.parametrize("name", list(EXPECTED))
def test_a_batch_with_bad_items_keeps_the_good_ones(extractors, clips, tmp_path, name):
    _, output, _, _ = EXPECTED[name]
    text = tmp_path / "notes.wav"
    text.write_text("not audio\n" * 50, encoding="utf-8")
    items = [clips["mono16"], clips["silent"], tmp_path / "missing.wav", text, clips["mute_video"],
             clips["too_short"], clips["other"]]
    results = extractors[name].extract_batch([str(p) for p in items])
    assert len(results) == len(items)
    words = {1: "silent audio", 2: "no such audio file", 3: "not a readable audio or video file",
             4: "no audio stream", 5: "0.050 s long"}
    for i, needle in words.items():
        assert isinstance(results[i], ItemError), (i, results[i])
        message = str(results[i])
        assert str(items[i]) in message and needle in message and "\n" not in message
    for i in (0, 6):
        np.testing.assert_array_equal(results[i][output], extractors[name].extract_one(str(items[i]))[output])


def test_max_frames_pools_long_lld_sequences(clips):
    full = EGeMAPSLLDExtractor().extract_one(str(clips["mono16"]))["lld"]
    capped = EGeMAPSLLDExtractor(max_frames=10).extract_one(str(clips["mono16"]))["lld"]
    assert full.shape[0] > 10 and capped.shape == (10, 25)
    np.testing.assert_allclose(capped, pool_frames(full, 10), rtol=1e-6)
    assert EGeMAPSLLDExtractor(max_frames=1000).extract_one(str(clips["mono16"]))["lld"].shape == full.shape


def test_pool_frames_averages_contiguous_near_equal_groups():
    frames = np.arange(14, dtype=np.float32).reshape(7, 2)  # rows [0,1], [2,3], ..., [12,13]
    # 7 frames into 3 groups: bounds round(linspace(0, 7, 4)) = 0, 2, 5, 7
    np.testing.assert_allclose(pool_frames(frames, 3), [[1, 2], [6, 7], [11, 12]])
    assert pool_frames(frames, 7) is frames and pool_frames(frames, 50) is frames


@pytest.mark.parametrize("name", list(EXPECTED))
def test_provenance_rebuilds_the_extractor_and_names_versions(name):
    kwargs = {"sample_rate": 22050, **({"max_frames": 300} if "lld" in name else {})}
    extractor = EXTRACTORS.create(name, **kwargs)
    provenance = json.loads(json.dumps(extractor.provenance()))
    assert provenance["extractor"] == name
    assert provenance["feature_set"] in ("eGeMAPSv02", "ComParE_2016")
    assert provenance["feature_level"] in ("Functionals", "LowLevelDescriptors")
    assert provenance["versions"]["opensmile"] != "not installed" and "av" in provenance["versions"]
    assert "22050 Hz" in provenance["input"]
    rebuilt = EXTRACTORS.create(provenance["extractor"], **provenance["params"])
    assert type(rebuilt) is type(extractor) and rebuilt.params() == extractor.params()


def test_sample_rate_changes_the_analysis(clips):
    at16 = EGeMAPSExtractor().extract_one(str(clips["stereo48"]))["functionals"]
    at8 = EGeMAPSExtractor(sample_rate=8000).extract_one(str(clips["stereo48"]))["functionals"]
    assert np.isfinite(at8).all() and not np.allclose(at8, at16)


@pytest.mark.parametrize(("cls", "kwargs"), [
    (EGeMAPSExtractor, {"sample_rate": 4000}), (EGeMAPSExtractor, {"sample_rate": 16000.0}),
    (EGeMAPSExtractor, {"min_peak": -1}), (EGeMAPSLLDExtractor, {"max_frames": 0}),
    (ComParELLDExtractor, {"max_frames": 2.5}),
])
def test_bad_constructor_arguments_are_value_errors(cls, kwargs):
    with pytest.raises(ValueError):
        cls(**kwargs)
