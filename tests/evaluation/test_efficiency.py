"""Efficiency profile: exact FLOP counts, the timed loop, peak memory, the run profile and its CLI."""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from scenesense.evaluation import efficiency
from scenesense.evaluation.efficiency import PeakMemory, count_flops, profile_run, time_calls

KEYS = {"device", "parameters", "trainable_parameters", "macs_per_sample", "flops_per_sample", "latency_ms",
        "throughput_per_s", "peak_memory_mb", "epoch_seconds", "threads", "batch_source", "torch"}


class FakeClock:
    """Each timed call lasts the next of ``durations_ms`` (start and stop read the clock once each)."""

    def __init__(self, durations_ms: list[float]) -> None:
        self.durations = list(durations_ms)
        self.calls = 0
        self.now = 100.0
        self.started = False

    def __call__(self) -> float:
        self.calls += 1
        if self.started:
            self.now += self.durations.pop(0) / 1000.0
        self.started = not self.started
        return self.now


@pytest.fixture(scope="module")
def run_dir(synthetic_run: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """This module's copy of the session's synthetic run (the tests write reports into it)."""
    return Path(shutil.copytree(synthetic_run, tmp_path_factory.mktemp("eff") / "run"))


def test_linear_flops_are_exact():
    lin = nn.Linear(8, 4)
    assert count_flops(lambda: lin(torch.randn(1, 8))) == 64  # 2 * 1 * 8 * 4
    assert count_flops(lambda: lin(torch.randn(3, 8))) == 192


@pytest.mark.parametrize("fastpath_switch", [True, False])
def test_transformer_layer_flops_include_attention_despite_fast_paths(fastpath_switch, monkeypatch):
    if not fastpath_switch:  # an older torch without the switch: counted with grad enabled instead
        monkeypatch.delattr(torch.backends.mha, "set_fastpath_enabled")
    b, t, d, ff = 2, 10, 16, 32
    layer = nn.TransformerEncoderLayer(d, 4, ff, dropout=0.1, batch_first=True)
    encoder = nn.TransformerEncoder(layer, 1, enable_nested_tensor=False).eval()
    x = torch.randn(b, t, d)
    pad = torch.zeros(b, t, dtype=torch.bool)
    pad[1, 5:] = True
    projections = 2 * b * t * (4 * d * d + 2 * d * ff)  # q, k, v, out; two feed-forward layers
    attention = 2 * 2 * b * t * t * d  # Q K^T and A V over all (padded) steps
    fastpath = torch.backends.mha.get_fastpath_enabled()
    assert torch.is_grad_enabled()
    assert count_flops(lambda: encoder(x, src_key_padding_mask=pad)) == projections + attention
    mha = nn.MultiheadAttention(d, 4, batch_first=True).eval()  # need_weights=False: the SDPA path
    assert count_flops(lambda: mha(x, x, x, need_weights=False)) == 2 * b * t * 4 * d * d + attention
    assert torch.backends.mha.get_fastpath_enabled() == fastpath
    assert torch.is_grad_enabled()


def test_time_calls_times_only_the_repeats(monkeypatch):
    clock = FakeClock([5.0, 1.0, 3.0, 2.0, 4.0])
    monkeypatch.setattr(efficiency, "_clock", clock)
    calls, syncs = [], []
    times = time_calls(lambda: calls.append(1), repeats=5, warmup=2, sync=lambda: syncs.append(1))
    np.testing.assert_allclose(times, [5.0, 1.0, 3.0, 2.0, 4.0])
    assert len(calls) == 7
    assert clock.calls == 10
    assert len(syncs) == 10


@pytest.mark.skipif(not Path("/proc/self/clear_refs").exists(), reason="needs Linux /proc peak reset")
def test_cpu_peak_memory_sees_an_allocation():
    with PeakMemory(torch.device("cpu")) as small:
        pass
    with PeakMemory(torch.device("cpu")) as big:
        block = torch.ones(64 * 2**20 // 4)  # 64 MiB, touched
        del block
    assert small.mb is not None and small.mb < 16
    assert big.mb is not None and 60 <= big.mb < 200


def test_profile_schema_and_file(run_dir):
    result = profile_run(run_dir, batch_sizes=(1, 4), repeats=3, warmup=1, threads=1)
    assert set(result) == KEYS
    assert json.loads((run_dir / "efficiency.json").read_text()) == result
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert result["parameters"] == result["trainable_parameters"] == metrics["parameters"]
    assert result["epoch_seconds"] == pytest.approx(np.mean([h["epoch_time"] for h in metrics["history"]]))
    assert result["device"] == "cpu" and result["threads"] == 1 and result["batch_source"] == "dev"
    assert result["torch"] == torch.__version__
    assert result["flops_per_sample"] == 2 * result["macs_per_sample"] > 0
    assert set(result["latency_ms"]) == {"1", "4"}
    for stats in result["latency_ms"].values():
        assert set(stats) == {"median", "p90"}
        assert 0 < stats["median"] <= stats["p90"]
    assert result["throughput_per_s"] == pytest.approx(4 / (result["latency_ms"]["4"]["median"] / 1000))
    assert result["peak_memory_mb"] is None or result["peak_memory_mb"] >= 0


def test_profile_uses_repeats_and_warmup(run_dir, monkeypatch):
    clock = FakeClock([float(k) for k in range(1, 21)] + [10.0] * 20)
    monkeypatch.setattr(efficiency, "_clock", clock)
    result = profile_run(run_dir, batch_sizes=(1, 2), repeats=20, warmup=2)
    assert clock.calls == 2 * 20 * 2
    assert result["latency_ms"]["1"] == {"median": pytest.approx(10.5), "p90": pytest.approx(18.1)}
    assert result["latency_ms"]["2"] == {"median": pytest.approx(10.0), "p90": pytest.approx(10.0)}
    assert result["throughput_per_s"] == pytest.approx(200.0)  # 2 samples in 10 ms


def test_threads_set_and_restored_even_on_error(run_dir, monkeypatch):
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        assert profile_run(run_dir, batch_sizes=(2,), repeats=1, warmup=0, threads=1)["threads"] == 1
        assert torch.get_num_threads() == 2

        def boom(fn):
            raise RuntimeError("count failed")

        monkeypatch.setattr(efficiency, "count_flops", boom)
        with pytest.raises(RuntimeError, match="count failed"):
            profile_run(run_dir, batch_sizes=(2,), repeats=1, warmup=0, threads=1)
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


def test_synthetic_inputs_when_the_store_is_gone(run_dir, tmp_path):
    spec = json.loads((run_dir / "model_spec.json").read_text())
    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy)
    store = tmp_path / "store"
    shutil.copytree(spec["store"], store)
    (copy / "model_spec.json").write_text(json.dumps({**spec, "store": str(store)}))
    assert profile_run(copy, batch_sizes=(2,), repeats=1, warmup=0)["batch_source"] == "dev"
    shutil.rmtree(store)
    short = profile_run(copy, batch_sizes=(2,), repeats=1, warmup=0, synthetic_length=5)
    long = profile_run(copy, batch_sizes=(2,), repeats=1, warmup=0, synthetic_length=10)
    assert set(long) == KEYS and long["batch_source"] == "synthetic"
    assert long["flops_per_sample"] > short["flops_per_sample"] > 0
    with pytest.raises(FileNotFoundError, match="no such store"):
        profile_run(copy, store=tmp_path / "missing")


def test_bad_arguments_raise(run_dir):
    with pytest.raises(ValueError, match="batch sizes"):
        profile_run(run_dir, batch_sizes=())
    with pytest.raises(ValueError, match="repeats"):
        profile_run(run_dir, repeats=0)
    with pytest.raises(FileNotFoundError, match="not a finished run"):
        profile_run(run_dir.parent)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_profile_on_cuda(run_dir):
    result = profile_run(run_dir, device="cuda", batch_sizes=(1, 4), repeats=3, warmup=1)
    assert result["device"] == "cuda" and result["peak_memory_mb"] > 0
    assert set(result) == KEYS


def test_cli_table_has_latency_ratios(run_dir, tmp_path, monkeypatch, capsys):
    from scenesense.cli import profile

    second = tmp_path / "second"
    shutil.copytree(run_dir, second)
    parser = argparse.ArgumentParser()
    profile.add_parser(parser.add_subparsers())
    args = parser.parse_args(["profile", str(run_dir), str(second), "--batch-sizes", "1", "2",
                              "--repeats", "2", "--warmup", "0", "--threads", "1"])
    monkeypatch.setattr(efficiency, "_clock", FakeClock([2.0] * 4 + [5.0] * 4))
    assert profile.run(args) == 0
    lines = capsys.readouterr().out.splitlines()
    header = lines[1].split()
    assert header[:7] == ["run", "params", "MFLOPs", "ms@1", "ms@2", "ratio@1", "ratio@2"]
    first, other = lines[3].split(), lines[4].split()
    assert first[0] == "run" and other[0] == "second"
    assert first[3:7] == ["2.000", "2.000", "1.000", "1.000"]
    assert other[3:7] == ["5.000", "5.000", "2.500", "2.500"]
    saved = json.loads((second / "efficiency.json").read_text())
    assert saved["latency_ms"]["2"]["median"] == pytest.approx(5.0)
    args.json = True
    monkeypatch.setattr(efficiency, "_clock", FakeClock([1.0] * 8))
    assert profile.run(args) == 0
    printed = json.loads(capsys.readouterr().out)
    assert list(printed) == [str(run_dir), str(second)]
    assert set(printed[str(second)]) == KEYS
