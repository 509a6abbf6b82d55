"""trainer.compile: the model is trained through torch.compile, falls back to eager, and saves the same weights."""

from __future__ import annotations

import logging
from collections.abc import Callable

import pytest
import torch
import torch._dynamo
from torch import fx

from scenesense.config import ConfigError
from scenesense.training.checkpoint import load_checkpoint
from scenesense.training.trainer import Trainer
from tests.training.test_trainer import ToyDataset, collate, config, make_model, without_time

GRAPHS: list[fx.GraphModule] = []


def _counting(gm: fx.GraphModule, example_inputs: list[torch.Tensor]) -> Callable[..., object]:
    """A backend that records each graph and runs it as traced (eager semantics)."""
    GRAPHS.append(gm)
    return gm.forward


def _failing(gm: fx.GraphModule, example_inputs: list[torch.Tensor]) -> Callable[..., object]:
    raise RuntimeError("this backend cannot compile anything")


torch._dynamo.register_backend(_counting, name="scenesense_test_counting")
torch._dynamo.register_backend(_failing, name="scenesense_test_failing")


@pytest.fixture
def data() -> tuple[ToyDataset, ToyDataset]:
    return ToyDataset(48, seed=1), ToyDataset(24, seed=2)


@pytest.fixture(autouse=True)
def fresh_dynamo():
    torch._dynamo.reset()
    GRAPHS.clear()
    yield
    torch._dynamo.reset()


def _fit(tmp_path, data, name, **overrides):
    model = make_model(dropout=0.3)
    result = Trainer(config(epochs=3, **overrides), run_dir=tmp_path / name).fit(model, *data, collate)
    return result, model, load_checkpoint(tmp_path / name / "last.pt")["model"]


def test_compiled_training_runs_the_traced_graphs_and_saves_the_eager_weights(tmp_path, data):
    eager, eager_model, eager_saved = _fit(tmp_path, data, "eager")
    compiled, compiled_model, compiled_saved = _fit(tmp_path, data, "compiled", compile=True,
                                                    compile_backend="scenesense_test_counting")
    assert GRAPHS, "the backend was never called: the model was not compiled"
    assert without_time(compiled.history) == without_time(eager.history)
    assert compiled_saved.keys() == eager_saved.keys()  # no "_orig_mod." prefix in checkpoints
    for key, value in eager_saved.items():
        assert torch.equal(compiled_saved[key], value), key
    for key, value in eager_model.state_dict().items():  # best weights restored into the original module
        assert torch.equal(compiled_model.state_dict()[key], value), key


def test_a_backend_that_fails_falls_back_to_eager_with_a_warning(tmp_path, data, caplog):
    eager, _, eager_saved = _fit(tmp_path, data, "eager")
    with caplog.at_level(logging.WARNING):
        failed, _, failed_saved = _fit(tmp_path, data, "failed", compile=True,
                                       compile_backend="scenesense_test_failing")
    assert "this backend cannot compile anything" in caplog.text
    assert without_time(failed.history) == without_time(eager.history)
    for key, value in eager_saved.items():
        assert torch.equal(failed_saved[key], value), key
    assert not torch._dynamo.config.suppress_errors  # the fallback ends with the fit


def test_no_dynamo_on_this_platform_trains_eagerly_with_a_warning(tmp_path, data, caplog, monkeypatch):
    monkeypatch.setattr(torch._dynamo, "is_dynamo_supported", lambda: False)
    eager, _, _ = _fit(tmp_path, data, "eager")
    with caplog.at_level(logging.WARNING):
        result, _, _ = _fit(tmp_path, data, "unsupported", compile=True, compile_backend="scenesense_test_counting")
    assert "torch.compile is not supported" in caplog.text
    assert not GRAPHS
    assert without_time(result.history) == without_time(eager.history)


def test_unknown_backend_is_a_config_error_before_training():
    with pytest.raises(ConfigError, match="unknown trainer.compile_backend 'no-such-backend'.*inductor"):
        Trainer(config(compile=True, compile_backend="no-such-backend"))
    Trainer(config(compile=False, compile_backend="no-such-backend"))  # only checked when compiling
