"""Every subcommand over a corpus of malformed inputs, generated here.

Each case asserts what bad input gets: exit code 1 or 2, at most three lines on stderr starting
with ``scenesense: error:``, no traceback, nothing left behind in the output location, and nothing
executed (payloads that would create a marker file if they ran). A few cases also run in a real
child process, to see the stderr a user sees.
"""

from __future__ import annotations

import io
import os
import pickle
import shutil
import subprocess
import sys
import tarfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

from scenesense.cli import main
from scenesense.data.labels import LabelSpace
from scenesense.data.store import FeatureSpec, StoreWriter
from tests.support.meld import MELD_HEADER, MELD_ROWS, render_meld_csv
from tests.support.runs import TINY_MODEL_ARGS

TINY = ["--modalities", "audio", "text", *TINY_MODEL_ARGS]
SYNTH = ["--set", "data.params={n_train: 24, n_dev: 8, n_test: 8}"]
MARKER = "EXECUTED"  # file a payload would create in the case folder if it ran


class _System:
    """Pickles as ``os.system("touch <marker>")``."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple:
        return (os.system, (f"touch {self.marker}",))


# --- builders of malformed files (each takes the case folder, returns a path) -----------------------


def evil_pickle(d: Path, name: str = "unaligned_50.pkl") -> Path:
    (d / "in").mkdir(exist_ok=True)
    path = d / "in" / name
    path.write_bytes(pickle.dumps({"train": {"text": _System(d / MARKER)}}))
    return path


def random_bytes(d: Path, name: str, n: int = 4096) -> Path:
    path = d / name
    path.write_bytes(np.random.default_rng(len(name)).bytes(n))
    return path


def meld_dir(
    d: Path, rows: list[list[object]] | None = None, header: list[str] | None = None, raw: bytes | None = None
) -> Path:
    root = d / "MELD"
    root.mkdir()
    kwargs = {"header": header} if header else {}
    for split in ("train", "dev"):
        data = raw if raw is not None else render_meld_csv(rows or MELD_ROWS, **kwargs)
        (root / f"{split}_sent_emo.csv").write_bytes(data)
    return root


def meld_unknown_label(d: Path) -> Path:
    rows = [list(r) for r in MELD_ROWS]
    rows[2][3] = "boredom"
    return meld_dir(d, rows)


def meld_missing_column(d: Path) -> Path:
    header = [h for h in MELD_HEADER if h != "Utterance"]
    return meld_dir(d, [[v for i, v in enumerate(r) if i != 1] for r in MELD_ROWS], header)


def meld_binary(d: Path) -> Path:
    return meld_dir(d, raw=np.random.default_rng(0).bytes(3000))


def meld_empty(d: Path) -> Path:
    return meld_dir(d, raw=b"")


def store(d: Path, tamper: Callable[[h5py.File], None] | None = None) -> Path:
    """A valid two-split store (audio vector, text sequence, 3 classes), then ``tamper`` on train."""
    root = d / "store"
    specs = {
        "audio": FeatureSpec("audio", "vector", 3),
        "text": FeatureSpec("text", "sequence", 4, max_len=12),
    }
    rng = np.random.default_rng(0)
    for split, n in (("train", 12), ("dev", 6)):
        with StoreWriter(
            root / f"{split}.h5",
            label_space=LabelSpace(("a", "b", "c")),
            features=specs,
            source={"dataset": "corpus"},
        ) as w:
            w.append(
                [f"{split}{i}" for i in range(n)],
                [i % 3 for i in range(n)],
                {
                    "audio": list(rng.normal(size=(n, 3)).astype(np.float32)),
                    "text": [rng.normal(size=(1 + i % 12, 4)).astype(np.float32) for i in range(n)],
                },
            )
    if tamper is not None:
        with h5py.File(root / "train.h5", "r+") as f:
            tamper(f)
    return root


def _set(path: str, index: int, value: float) -> Callable[[h5py.File], None]:
    def tamper(f: h5py.File) -> None:
        data = f[path][()]
        data.flat[index] = value
        f[path][...] = data

    return tamper


def not_hdf5_store(d: Path) -> Path:
    root = d / "store"
    root.mkdir()
    random_bytes(root, "train.h5")
    random_bytes(root, "dev.h5")
    return root


def tampered_run(d: Path, run: Path, payload: str) -> Path:
    """A copy of ``run`` whose ``checkpoint.pt`` is replaced by ``payload``."""
    copy = d / "run"
    shutil.copytree(run, copy)
    target = copy / "checkpoint.pt"
    if payload == "pickle":
        target.write_bytes(pickle.dumps(_System(d / MARKER)))
    elif payload == "torch_zip":
        torch.save({"model": _System(d / MARKER)}, target)
    elif payload == "random":
        random_bytes(copy, "checkpoint.pt")
    else:
        target.write_bytes(b"")
    return copy


def archive(d: Path, kind: str) -> Path:
    path = d / ("MELD.Features.Models.tar.gz" if kind != "zip_abs" else "MELD.Features.Models.zip")
    if kind == "csv":
        path.write_bytes(render_meld_csv(MELD_ROWS))
    elif kind == "truncated":
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w:gz") as tar:
            data = np.random.default_rng(0).bytes(20000)
            info = tarfile.TarInfo("features/a.bin")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        path.write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    elif kind == "link_chain":
        with tarfile.open(path, "w:gz") as tar:
            for name, target in (("L", "a/b/s/../../.."), ("a/b/s", "../..")):
                info = tarfile.TarInfo(name)
                info.type, info.linkname = tarfile.SYMTYPE, target
                tar.addfile(info)
    elif kind == "zip_abs":
        with zipfile.ZipFile(path, "w") as z:
            z.writestr("/tmp/escape.txt", "x")
    return path


def wav(path: Path, seconds: float = 0.5, truncate: bool = False) -> Path:
    import wave

    samples = (0.3 * np.sin(np.arange(int(16000 * seconds)) * 0.1) * 32767).astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes(samples.tobytes())
    if truncate:
        path.write_bytes(path.read_bytes()[:2000])
    return path


# --- the corpus ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    """One malformed input: ``argv(d, run)`` for a case folder ``d`` and a finished run; ``out`` is
    the output location (relative to ``d``) that must stay absent."""

    argv: Callable[[Path, Path], list[str]]
    codes: tuple[int, ...] = (1,)
    out: str = "out"


def _yaml(d: Path, text: str) -> str:
    path = d / "config.yaml"
    path.write_text(text)
    return str(path)


def _folder(path: Path) -> Path:
    path.mkdir()
    return path


def _file(path: Path) -> Path:
    path.write_text("a file, not a folder")
    return path


def _broken_metrics(d: Path, run: Path) -> Path:
    copy = d / "run"
    shutil.copytree(run, copy)
    (copy / "metrics.json").write_text("{not json")
    return copy


# a YAML file whose aliases expand to 9**9 leaves
BOMB = (
    "a: &a [x, x, x, x, x, x, x, x, x]\n"
    + "".join(f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join([f'*{chr(97 + i)}'] * 9)}]\n" for i in range(8))
    + "data: {params: *i}\n"
)
SYSTEM_TAG = "!!python/object/apply:os.system ['touch {marker}']"


def _fill(arg: str, d: Path) -> str:
    return arg.replace("{d}", str(d)).replace("{marker}", str(d / MARKER))


def _train(*args: str) -> Callable[[Path, Path], list[str]]:
    """``train ARGS --run-dir <case>/out``; ``{d}`` and ``{marker}`` in an argument are filled in."""
    return lambda d, r: [
        "train",
        *(_fill(a, d) for a in args),
        "--run-dir",
        str(d / "out"),
    ]


def _train_store(tamper: Callable[[h5py.File], None] | None) -> Callable[[Path, Path], list[str]]:
    return lambda d, r: [
        "train",
        *TINY,
        "--dataset",
        "store",
        "--root",
        str(store(d, tamper)),
        "--epochs",
        "1",
        "--run-dir",
        str(d / "out"),
    ]


def _convert(dataset: str, root: Callable[[Path], Path]) -> Callable[[Path, Path], list[str]]:
    return lambda d, r: ["data", "convert", dataset, "--root", str(root(d)), "--out", str(d / "out")]


def _download(kind: str) -> Callable[[Path, Path], list[str]]:
    return lambda d, r: [
        "data",
        "download",
        "meld_features",
        "--from-file",
        str(archive(d, kind)),
        "--dest",
        str(d / "out"),
    ]


def _extract(
    source: str, path: Callable[[Path], Path], features: str, *extra: str
) -> Callable[[Path, Path], list[str]]:
    return lambda d, r: [
        "extract",
        source,
        str(path(d)),
        "--features",
        features,
        *extra,
        "--out",
        str(d / "out"),
    ]


def _on_run(
    command: str, *args: str, run: Callable[[Path, Path], Path] | None = None
) -> Callable[[Path, Path], list[str]]:
    """``COMMAND RUN ARGS``; ``{d}`` in an argument is the case folder."""
    return lambda d, r: [command, str(run(d, r) if run else r), *(_fill(a, d) for a in args)]


def _dev_csv(build: Callable[[Path], Path]) -> Callable[[Path], Path]:
    return lambda d: build(d) / "dev_sent_emo.csv"


CASES: dict[str, Case] = {
    # configuration: YAML files and --set values (exit 2)
    "train config not YAML": Case(lambda d, r: _train("-c", _yaml(d, "trainer: [1,\n"))(d, r), (2,)),
    "train config python tag": Case(lambda d, r: _train("-c", _yaml(d, f"name: {SYSTEM_TAG}\n"))(d, r), (2,)),
    "train config alias bomb": Case(lambda d, r: _train("-c", _yaml(d, BOMB))(d, r), (2,)),
    "train config a list": Case(lambda d, r: _train("-c", _yaml(d, "- 1\n- 2\n"))(d, r), (2,)),
    "train config binary": Case(lambda d, r: _train("-c", str(random_bytes(d, "c.yaml")))(d, r), (2,)),
    "train --set python tag": Case(_train("--set", "name=" + SYSTEM_TAG), (2,)),
    "train --set broken list": Case(_train("--set", "trainer.lr=[1,"), (2,)),
    "train --set unknown key": Case(_train("--set", "trainer.lrr=1"), (2,)),
    "train bad precision": Case(_train(*SYNTH, "--set", "trainer.precision=fp13"), (2,)),
    "train zero devices": Case(_train(*SYNTH, "--set", "trainer.devices=0"), (2,)),
    "train negative seed": Case(_train(*SYNTH, "--seed", "-3"), (2,)),
    "train bad synthetic params": Case(_train("--set", "data.params={n_train: -4}"), (2,)),
    "experiment config not YAML": Case(
        lambda d, r: ["experiment", "-c", _yaml(d, "a: {b\n"), "--output-dir", str(d / "out")], (2,)
    ),
    "extract --param broken": Case(
        _extract("--ravdess", lambda d: d, "audio=egemaps", "--param", "audio.x=[1,"), (2,)
    ),
    # stores: train on them, inspect them, export them
    "train store label 99": Case(_train_store(_set("meta/label", 3, 99))),
    "train store length -5": Case(_train_store(_set("features/text/lengths", 2, -5))),
    "train store length 1000": Case(_train_store(_set("features/text/lengths", 4, 1000))),
    "train store length 0 present": Case(_train_store(_set("features/text/lengths", 5, 0))),
    "train store NaN feature": Case(_train_store(_set("features/audio/data", 7, np.nan))),
    "train store not HDF5": Case(
        lambda d, r: [
            "train",
            *TINY,
            "--dataset",
            "store",
            "--root",
            str(not_hdf5_store(d)),
            "--run-dir",
            str(d / "out"),
        ]
    ),
    "train store empty folder": Case(
        lambda d, r: [
            "train",
            *TINY,
            "--dataset",
            "store",
            "--root",
            str(_folder(d / "e")),
            "--run-dir",
            str(d / "out"),
        ]
    ),
    "inspect not HDF5": Case(lambda d, r: ["data", "inspect", str(not_hdf5_store(d))]),
    "inspect a CSV": Case(lambda d, r: ["data", "inspect", str(meld_dir(d) / "dev_sent_emo.csv")]),
    "export bad store": Case(
        lambda d, r: [
            "data",
            "export",
            str(not_hdf5_store(d)),
            "--format",
            "mmsa",
            "--split",
            "test=dev",
            "--out",
            str(d / "out"),
        ]
    ),
    # feature files and CSVs converted into a store
    "convert mmsa evil pickle": Case(_convert("mmsa", evil_pickle)),
    "convert mmsa random bytes": Case(_convert("mmsa", lambda d: random_bytes(d, "aligned_50.pkl"))),
    "convert mult evil pickle": Case(
        _convert("mult", lambda d: evil_pickle(d, "mosei_senti_data.pkl").parent)
    ),
    "convert csd random bytes": Case(_convert("csd", lambda d: random_bytes(d, "x.csd").parent)),
    "convert meld unknown label": Case(_convert("meld", meld_unknown_label)),
    "convert meld missing column": Case(_convert("meld", meld_missing_column)),
    "convert meld binary CSV": Case(_convert("meld", meld_binary)),
    "convert meld empty CSV": Case(_convert("meld", meld_empty)),
    "convert table random bytes": Case(_convert("table", lambda d: random_bytes(d, "f.csv").parent), (1, 2)),
    "convert ravdess empty": Case(_convert("ravdess", lambda d: _folder(d / "r")), (1, 2)),
    "validate mmsa evil pickle": Case(
        lambda d, r: ["data", "validate", "mmsa", "--root", str(evil_pickle(d))]
    ),
    # archives
    "download a CSV": Case(_download("csv")),
    "download truncated gzip": Case(_download("truncated")),
    "download link chain": Case(_download("link_chain")),
    # runs and raw inputs
    "evaluate no run": Case(
        lambda d, r: ["evaluate", str(d / "absent"), "--root", str(d), "--output-dir", str(d / "out")]
    ),
    "evaluate store label 99": Case(
        lambda d, r: [
            "evaluate",
            str(r),
            "--store",
            str(store(d, _set("meta/label", 0, 99))),
            "--split",
            "train",
            "--output-dir",
            str(d / "out"),
        ]
    ),
    "evaluate meld CSV binary": Case(
        _on_run(
            "evaluate",
            "--csv",
            "{d}/MELD/dev_sent_emo.csv",
            "--output-dir",
            "{d}/out",
            run=lambda d, r: meld_binary(d) and r,
        )
    ),
    "report no run": Case(lambda d, r: ["report", str(d / "absent"), "--output-dir", str(d / "out")]),
    "report broken metrics": Case(_on_run("report", "--output-dir", "{d}/out", run=_broken_metrics)),
    "predict truncated WAV": Case(
        lambda d, r: ["predict", str(r), str(wav(d / "t.wav", truncate=True)), "--out", str(d / "out")]
    ),
    "predict manifest binary": Case(
        lambda d, r: ["predict", str(r), "--manifest", str(random_bytes(d, "m.csv")), "--out", str(d / "out")]
    ),
    "predict conversation no columns": Case(
        lambda d, r: [
            "predict",
            str(r),
            "--conversation",
            str(_dev_csv(meld_missing_column)(d)),
            "--out",
            str(d / "out"),
        ]
    ),
    "extract manifest binary": Case(
        _extract("--manifest", lambda d: random_bytes(d, "m.csv"), "audio=egemaps")
    ),
    "extract ravdess empty": Case(_extract("--ravdess", lambda d: _folder(d / "r"), "audio=egemaps")),
    "extract meld CSV binary": Case(_extract("--meld-csv", _dev_csv(meld_binary), "text=minilm")),
    "demo output is a file": Case(
        lambda d, r: ["demo", "--quick", "--output-dir", str(_file(d / "out"))], out=""
    ),
    "demo no workers": Case(lambda d, r: ["demo", "--quick", "--workers", "0", "--output-dir", str(d / "out")],
                            codes=(2,)),
}
for _payload in ("pickle", "torch_zip", "random", "empty"):

    def _tampered(d: Path, r: Path, p: str = _payload) -> Path:
        return tampered_run(d, r, p)

    CASES[f"evaluate checkpoint {_payload}"] = Case(
        _on_run("evaluate", "--root", "{d}", "--output-dir", "{d}/out", run=_tampered)
    )
    CASES[f"predict checkpoint {_payload}"] = Case(
        _on_run("predict", "hello", "--out", "{d}/out", run=_tampered)
    )
    CASES[f"robustness checkpoint {_payload}"] = Case(
        _on_run("robustness", run=_tampered), out="run/robustness"
    )
    CASES[f"profile checkpoint {_payload}"] = Case(_on_run("profile", run=_tampered), out="run/profile")


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny synthetic run, trained once for the module."""
    root = tmp_path_factory.mktemp("corpus_run")
    os.environ.setdefault("SCENESENSE_CACHE", str(root / "cache"))
    run = root / "run"
    assert main(["train", "--recipe", "concat", "--epochs", "1", "--run-dir", str(run), *SYNTH, *TINY]) == 0
    return run


def _error_lines(err: str) -> list[str]:
    lines = err.rstrip("\n").splitlines()
    starts = [i for i, line in enumerate(lines) if line.startswith("scenesense: error:")]
    assert starts, f"no 'scenesense: error:' line in stderr:\n{err}"
    return lines[starts[0] :]


@pytest.mark.parametrize("name", sorted(CASES))
def test_malformed_input_gets_one_line_and_leaves_nothing(name, finished_run, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("SCENESENSE_CACHE", str(tmp_path / "cache"))
    case = CASES[name]
    d = tmp_path / "case"
    d.mkdir()
    argv = case.argv(d, finished_run)
    before = {p for p in d.rglob("*")}
    try:
        code = main(argv)
    except BaseException as err:  # noqa: BLE001 - an escape is the failure this test looks for
        pytest.fail(f"{name}: {type(err).__name__} escaped main(): {err}")
    err = capsys.readouterr().err
    assert code in case.codes, f"{name}: exit {code}, stderr:\n{err}"
    assert "Traceback" not in err
    error = _error_lines(err)
    assert len(error) <= 3, error
    assert not (d / MARKER).exists(), f"{name}: a payload ran"
    if case.out:
        out = d / case.out
        assert not out.exists() or not any(out.iterdir()) if out.is_dir() else not out.exists(), (
            f"{name}: left {sorted(p.name for p in out.rglob('*')) if out.is_dir() else out}"
        )
    left = sorted(str(p.relative_to(d)) for p in set(d.rglob("*")) - before if p.name.endswith(".tmp"))
    assert not left, f"{name}: temporary files left: {left}"


@pytest.mark.parametrize(
    "argv",
    [
        ["train", "--set", "trainer.lr=[1,"],
        ["data", "inspect", "{root}/absent"],
        ["evaluate", "{root}/absent", "--root", "{root}"],
    ],
)
def test_a_real_process_prints_one_line_and_no_traceback(argv, tmp_path):
    argv = [a.format(root=tmp_path) for a in argv]
    proc = subprocess.run(
        [sys.executable, "-m", "scenesense", *argv],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
        env={**os.environ, "SCENESENSE_DEBUG": ""},
    )
    assert proc.returncode in (1, 2), proc.stderr
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) <= 3 and lines[-1].startswith("scenesense: error:"), proc.stderr


def test_a_bug_is_named_as_one_and_debug_shows_the_traceback(monkeypatch, capsys):
    from scenesense.cli import listing

    def broken(args):  # an unexpected exception inside the library
        return [][1]

    monkeypatch.setattr(listing, "run", broken)
    parser_handler = main(["list"])
    err = capsys.readouterr().err
    assert parser_handler == 1 and "Traceback" not in err
    assert err.strip() == (
        "scenesense: error: internal error IndexError: list index out of range. This is a bug "
        "in scenesense: re-run with --debug (or SCENESENSE_DEBUG=1) for the traceback and "
        "report it"
    )
    assert main(["--debug", "list"]) == 1
    err = capsys.readouterr().err
    assert "Traceback (most recent call last)" in err and "return [][1]" in err
    monkeypatch.setenv("SCENESENSE_DEBUG", "1")
    assert main(["list"]) == 1
    assert "Traceback (most recent call last)" in capsys.readouterr().err


def test_an_error_without_a_message_still_says_what_it_is(monkeypatch, capsys):
    from scenesense.cli import listing

    def silent(args):
        raise RuntimeError()

    monkeypatch.setattr(listing, "run", silent)
    assert main(["list"]) == 1
    assert capsys.readouterr().err.strip() == "scenesense: error: RuntimeError (no message)"


def test_a_binary_extract_manifest_is_named_in_the_error(tmp_path, capsys):
    path = random_bytes(tmp_path, "m.csv")
    assert (
        main(
            ["extract", "--manifest", str(path), "--features", "audio=egemaps", "--out", str(tmp_path / "o")]
        )
        == 1
    )
    assert capsys.readouterr().err.strip() == (
        f"scenesense: error: {path}: manifest is not UTF-8 text (invalid start byte at byte 0)"
    )
