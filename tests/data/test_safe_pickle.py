from __future__ import annotations

import collections
import os
import pickle

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scenesense.data.safe_pickle import UnsafePickleError, load_pickle


@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
def test_feature_containers_round_trip_at_every_protocol(tmp_path, protocol):
    obj = {"train": {"vision": np.arange(6, dtype=np.float32).reshape(1, 2, 3), "ids": np.array(["a", "b"]),
                     "labels": [np.int64(3), np.float64(-0.5)], "raw": b"\x00\xff", "tags": {"x"},
                     "ordered": collections.OrderedDict(k=1), "lists": collections.defaultdict(list, a=[1])}}
    path = tmp_path / "f.pkl"
    path.write_bytes(pickle.dumps(obj, protocol=protocol))
    out = load_pickle(path)
    np.testing.assert_array_equal(out["train"]["vision"], obj["train"]["vision"])
    assert out["train"]["vision"].dtype == np.float32
    assert out["train"]["ids"].tolist() == ["a", "b"]
    assert out["train"]["labels"] == [3, -0.5]
    assert out["train"]["lists"]["a"] == [1] and out["train"]["raw"] == b"\x00\xff"


class _Exploit:
    def __init__(self, target):
        self.target = target

    def __reduce__(self):
        return (os.system, (f"touch {self.target}",))


class _EvalExploit:
    def __reduce__(self):
        return (eval, ("__import__('os')",))


@pytest.mark.parametrize("payload", ["system", "eval", "nested"])
def test_crafted_pickles_raise_and_execute_nothing(tmp_path, payload):
    marker = tmp_path / "pwned"
    obj = {"system": _Exploit(marker), "eval": _EvalExploit(), "nested": {"train": [np.zeros(2), _Exploit(marker)]}}
    path = tmp_path / "evil.pkl"
    path.write_bytes(pickle.dumps(obj[payload]))
    with pytest.raises(UnsafePickleError, match=r"evil.pkl: refusing to load (posix\.system|builtins\.eval)"):
        load_pickle(path)
    assert not marker.exists()


def test_python2_strings_fall_back_to_latin1(tmp_path):
    # Protocol 2 written by Python 2: a dict whose key is a py2 str (SHORT_BINSTRING) with byte 0xe9.
    raw = b"\x80\x02}q\x00U\x04caf\xe9q\x01K\x01s."
    path = tmp_path / "py2.p"
    path.write_bytes(raw)
    assert load_pickle(path) == {"café": 1}
    with pytest.raises(UnsafePickleError, match="cannot decode the pickle's strings as ASCII"):
        load_pickle(path, encoding="ASCII")


def test_not_a_pickle_and_missing_file(tmp_path):
    path = tmp_path / "junk.pkl"
    path.write_bytes(b"this is a CSV, not a pickle\n")
    with pytest.raises(UnsafePickleError, match="junk.pkl: not a valid pickle"):
        load_pickle(path)
    path.write_bytes(pickle.dumps({"a": 1})[:-3])
    with pytest.raises(UnsafePickleError, match="junk.pkl: not a valid pickle"):
        load_pickle(path)
    with pytest.raises(FileNotFoundError, match="no such file"):
        load_pickle(tmp_path / "absent.pkl")


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(raw=st.one_of(st.binary(max_size=200),
                     st.binary(max_size=60).map(lambda b: b"\x80\x04\x95" + b),  # protocol-4 frame
                     st.binary(max_size=60).map(lambda b: pickle.dumps([1, "a", 2.0])[:-1] + b)))
def test_any_bytes_load_or_raise_the_one_error(tmp_path_factory, raw):
    path = tmp_path_factory.mktemp("p") / "any.pkl"
    path.write_bytes(raw)
    try:
        load_pickle(path)
    except UnsafePickleError as err:
        assert str(err).startswith("any.pkl: ")


def test_the_refusal_is_a_value_error_so_the_cli_reports_it_in_one_line():
    assert issubclass(UnsafePickleError, ValueError) and issubclass(UnsafePickleError, pickle.UnpicklingError)
