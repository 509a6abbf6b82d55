"""A store split is validated when opened: labels, sequence lengths, shapes and dims, malformed files.

Each defect is shown twice: :func:`open_store_split` refuses the file with a :class:`StoreError`
naming the row, and ``scenesense train`` on it exits 1 with one ``scenesense: error:`` line
instead of an ``IndexError`` traceback or a silent run. A ``hypothesis`` property test then
corrupts stores at random: every one opens (and reads) cleanly, or is refused with a StoreError.
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

import h5py
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scenesense.cli import main
from scenesense.data.dataset import FeatureStoreDataset
from scenesense.data.labels import LabelSpace
from scenesense.data.store import FeatureSpec, StoreError, StoreWriter, open_store_split
from scenesense.data.store_identity import stale_reason

TINY_TRAIN = ["--set", "model.out_dim=8", "--set", "model.head_hidden_dim=8",
              "--set", "model.sequence_encoder.params.num_layers=1",
              "--set", "model.sequence_encoder.params.dim_feedforward=16",
              "--set", "trainer.progress=false", "--set", "trainer.batch_size=8", "--epochs", "1"]


def _set(path: Path, name: str, index: int, value: object) -> None:
    with h5py.File(path, "r+") as f:
        f[name][index] = value


def _train(store: Path, run_dir: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = main(["train", "--dataset", "store", "--root", str(store), "--modalities", "text",
                 "--run-dir", str(run_dir), *TINY_TRAIN])
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.startswith("scenesense: error:")]
    return code, lines[0] if len(lines) == 1 else err


# --- labels (defect 3) ---------------------------------------------------------------------------

def test_class_id_outside_the_label_space_is_refused_at_open(tiny_store):
    _set(tiny_store / "train.h5", "meta/label", 2, 99)
    with pytest.raises(StoreError, match=r"^train\.h5: id 'train2': class id 99 outside \[0, 3\) for "
                                         r"\['a', 'b', 'c'\] \(or -1 = unlabelled\)$"):
        open_store_split(tiny_store / "train.h5")
    _set(tiny_store / "train.h5", "meta/label", 2, -2)
    with pytest.raises(StoreError, match="class id -2 outside"):
        open_store_split(tiny_store / "train.h5")
    _set(tiny_store / "train.h5", "meta/label", 2, -1)  # unlabelled is a valid store row
    assert open_store_split(tiny_store / "train.h5").labels.tolist() == [0, 1, -1, 0, 1]


def test_train_on_a_label_outside_the_label_space_is_a_one_line_error(tiny_store, tmp_path, capsys):
    _set(tiny_store / "train.h5", "meta/label", 2, 99)
    code, line = _train(tiny_store, tmp_path / "run", capsys)
    assert code == 1 and "train.h5: id 'train2': class id 99 outside [0, 3)" in line


def test_non_finite_regression_target_is_refused_at_open(tmp_path):
    path = tmp_path / "r.h5"
    with StoreWriter(path, label_space=LabelSpace(("valence",), "regression"),
                     features={"audio": FeatureSpec("audio", "vector", 2)}, source={}) as w:
        w.append(["a", "b"], [0.5, -1.0], {"audio": [np.ones(2), np.zeros(2)]})
    for bad in (np.nan, np.inf, -np.inf):
        _set(path, "meta/label", 1, bad)
        with pytest.raises(StoreError, match=r"id 'b': non-finite target"):
            open_store_split(path)


def test_float_class_ids_are_refused(tiny_store):
    path = tiny_store / "dev.h5"
    with h5py.File(path, "r+") as f:
        del f["meta/label"]
        f["meta/label"] = np.array([0.0, 1.5, 2.0])
    with pytest.raises(StoreError, match="class ids must be integers, got dtype float64"):
        open_store_split(path)


# --- sequence lengths (defect 4) -----------------------------------------------------------------

@pytest.mark.parametrize(("length", "expected"), [(-5, "1..4"), (0, "1..4"), (5, "1..4"), (1000, "1..4")])
def test_sequence_length_outside_one_to_the_padded_length_is_refused(tiny_store, length, expected):
    _set(tiny_store / "train.h5", "features/text/lengths", 3, length)
    with pytest.raises(StoreError, match=rf"^train\.h5: feature set 'text': id 'train3': length {length}, "
                                         rf"expected {expected} \(the padded length\)$"):
        open_store_split(tiny_store / "train.h5")


@pytest.mark.parametrize("length", [-5, 0, 1000])
def test_train_on_an_invalid_sequence_length_is_a_one_line_error(tiny_store, tmp_path, capsys, length):
    _set(tiny_store / "train.h5", "features/text/lengths", 3, length)
    code, line = _train(tiny_store, tmp_path / "run", capsys)
    assert code == 1 and f"feature set 'text': id 'train3': length {length}, expected 1..4" in line


def _store_with_an_absent_sequence(path: Path) -> Path:
    with StoreWriter(path, label_space=LabelSpace(("x", "y")),
                     features={"text": FeatureSpec("text", "sequence", 2, max_len=3)}, source={}) as w:
        w.append(["a", "b"], [0, 1], {"text": [np.ones((2, 2)), None]})
    return path


def test_length_zero_is_valid_only_where_the_modality_is_absent(tmp_path):
    path = _store_with_an_absent_sequence(tmp_path / "s.h5")
    split = open_store_split(path)  # row b: absent, length 0
    dataset = FeatureStoreDataset(path, ["text"])
    assert [s["inputs"]["text"].shape for s in dataset.__getitems__([0, 1])] == [(2, 2), (0, 2)]
    assert [s["present"]["text"] for s in dataset.__getitems__([0, 1])] == [True, False]
    dataset.close()
    _set(path, "features/text/lengths", 1, 2)
    with pytest.raises(StoreError, match=r"id 'b': length 2, expected 0 \(the modality is absent\)"):
        open_store_split(path)
    assert split.n == 2


# --- shapes, dims, malformed files --------------------------------------------------------------

def test_feature_dim_different_from_the_header_is_refused(tiny_store):
    with h5py.File(tiny_store / "dev.h5", "r+") as f:
        f["features/audio"].attrs["dim"] = 5
    with pytest.raises(StoreError, match=r"feature set 'audio': data is float32 \[3, 3\], "
                                         r"expected float \[3, 5\]"):
        open_store_split(tiny_store / "dev.h5")


@pytest.mark.parametrize("remove", ["meta/label", "meta/speaker", "features/text/lengths",
                                    "features/audio/present", "features/text/data", "features"])
def test_a_missing_part_is_a_store_error_not_a_raw_h5py_error(tiny_store, remove):
    with h5py.File(tiny_store / "dev.h5", "r+") as f:
        del f[remove]
    with pytest.raises(StoreError, match=r"^dev\.h5: malformed store \(KeyError: .*\)$"):
        open_store_split(tiny_store / "dev.h5")


def test_meta_columns_of_the_wrong_length_are_refused(tiny_store):
    with h5py.File(tiny_store / "dev.h5", "r+") as f:
        f["meta/position"].resize((2,))
    with pytest.raises(StoreError, match=r"/meta column shape\(s\) \{'position': \[2\]\} do not match "
                                         r"the 3 ids"):
        open_store_split(tiny_store / "dev.h5")


def test_bad_attributes_are_store_errors(tiny_store):
    path = tiny_store / "dev.h5"
    with h5py.File(path, "r+") as f:
        f["features/audio"].attrs["kind"] = "matrix"
    with pytest.raises(StoreError, match=r"feature set 'audio': kind 'matrix' / modality 'audio'"):
        open_store_split(path)
    with h5py.File(path, "r+") as f:
        f["features/audio"].attrs["kind"] = "vector"
        f.attrs["label_names"] = "[not json"
    with pytest.raises(StoreError, match=r"^dev\.h5: malformed store \(JSONDecodeError"):
        open_store_split(path)


# --- property: random corruption is opened cleanly or refused with a StoreError -------------------

N_ROWS, T_MAX, DIM = 4, 3, 2


def _valid_store(path: Path) -> Path:
    specs = {"text": FeatureSpec("text", "sequence", DIM, max_len=T_MAX),
             "audio": FeatureSpec("audio", "vector", DIM)}
    rows = {"text": [np.ones((1 + i % T_MAX, DIM)) for i in range(N_ROWS - 1)] + [None],
            "audio": [np.full(DIM, float(i)) for i in range(N_ROWS)]}
    with StoreWriter(path, label_space=LabelSpace(("a", "b", "c")), features=specs, source={}) as w:
        w.append([f"u{i}" for i in range(N_ROWS)], [i % 3 for i in range(N_ROWS)], rows)
    return path


_values = st.sampled_from([0.0, 1.0, -1e30, np.nan, np.inf, -np.inf])
_corruption = st.one_of(
    st.tuples(st.just("label"), st.integers(0, N_ROWS - 1), st.integers(-5, 10)),
    st.tuples(st.just("length"), st.integers(0, N_ROWS - 1), st.integers(-3, T_MAX + 3)),
    st.tuples(st.just("present"), st.integers(0, N_ROWS - 1), st.booleans()),
    st.tuples(st.just("dim"), st.sampled_from(["text", "audio"]), st.integers(-1, 4)),
    st.tuples(st.just("text value"), st.tuples(st.integers(0, N_ROWS - 1), st.integers(0, T_MAX - 1)),
              _values),
    st.tuples(st.just("audio value"), st.integers(0, N_ROWS - 1), _values),
    st.tuples(st.just("delete"), st.sampled_from(["meta/ids", "meta/label", "meta/position",
                                                  "features/text/lengths", "features/audio/present"]),
              st.just(None)),
    st.tuples(st.just("attr"), st.sampled_from(["label_names", "task", "source"]),
              st.sampled_from(["[]", "{", '["a", "a"]', "nonsense", '"x"'])),
)


def _corrupt(path: Path, what: str, where: object, value: object) -> None:
    """One corruption; skipped where an earlier one deleted its target."""
    with h5py.File(path, "r+") as f, contextlib.suppress(KeyError):
        if what == "label":
            f["meta/label"][where] = value
        elif what == "length":
            f["features/text/lengths"][where] = value
        elif what == "present":
            f["features/text/present"][where] = value
        elif what == "dim":
            f[f"features/{where}"].attrs["dim"] = value
        elif what == "text value":
            f["features/text/data"][where[0], where[1], 0] = value
        elif what == "audio value":
            f["features/audio/data"][where, 0] = value
        elif what == "delete":
            del f[where]
        else:
            f.attrs[where] = value


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(corruptions=st.lists(_corruption, min_size=1, max_size=3))
def test_a_randomly_corrupted_store_opens_cleanly_or_is_refused_with_a_store_error(tmp_path, corruptions):
    path = _valid_store(tmp_path / "p.h5")  # overwritten in place by each example
    for corruption in corruptions:
        _corrupt(path, *corruption)
    assert isinstance(stale_reason(path, {"csv": "other"}), str)  # never raises either
    try:
        split = open_store_split(path)
        dataset = FeatureStoreDataset(path, ["audio", "text"])
        samples = dataset.__getitems__(range(len(dataset)))
        dataset.close()
    except StoreError as err:
        assert "\n" not in str(err) and str(err).startswith("p.h5")
        return
    with h5py.File(path, "r") as f:
        lengths, present = f["features/text/lengths"][:], f["features/text/present"][:]
        label_names = json.loads(f.attrs["label_names"])
    assert all(-1 <= label < len(label_names) for label in split.labels.tolist())
    for sample, length, here in zip(samples, lengths.tolist(), present.tolist()):
        assert sample["inputs"]["text"].shape == (length, DIM) and (length > 0) == here
        assert sample["inputs"]["audio"].shape == (DIM,)
        for array in sample["inputs"].values():
            assert np.isfinite(array).all()
