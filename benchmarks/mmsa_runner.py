"""Train MMSA 2.2.1 models on an exported pickle and write their test predictions (runs in MMSA's venv).

``benchmarks/mmsa_peer.py`` calls this file with the interpreter of a separate virtual environment
holding ``MMSA==2.2.1`` and a CPU ``torch`` (never scenesense's ``.venv``)::

    OMP_NUM_THREADS=1 .venv-mmsa/bin/python benchmarks/mmsa_runner.py job.json

It imports nothing from scenesense. ``job.json`` holds: ``pkl`` (the file from ``scenesense data
export --format mmsa``), ``models`` (MMSA names: tfn, lmf, mult, lf_dnn), ``seeds``, ``num_classes``
(0 = MMSA's regression mode, else ``train_mode="classification"``), ``seq_lens`` (modality -> the
pickle's ``T``), ``early_stop`` (MMSA's patience on the validation loss), ``max_epochs``,
``work_dir`` and ``result`` (the JSON to write).

Each model is trained by ``MMSA.MMSA_run`` with MMSA's own ``mosi`` hyper-parameters and only
these overrides: ``early_stop``; ``train_mode`` / ``num_classes`` for classification; and MulT's
``conv1d_kernel_size_{l,a,v}`` cut to the modality's ``T`` where it is shorter (MulT's unpadded
Conv1d needs ``T >= kernel``, and an exported vector modality has ``T = 1``). Three
changes are made from outside, without editing MMSA:

1. ``torch.cuda.set_device`` does nothing for a CPU device (MMSA_run calls it unconditionally);
2. ``ReduceLROnPlateau`` accepts and drops ``verbose`` (removed from PyTorch; MulT passes it);
3. each trainer's ``do_test`` is wrapped to time every epoch (the training pass plus the
   validation pass that ends it), to stop after ``max_epochs`` (MMSA has no epoch cap; its loop
   stops once ``epochs - best_epoch >= early_stop``, so the wrapper sets ``early_stop`` to 0 after
   the last allowed validation), and, on the test split, to record the best checkpoint's raw
   outputs per id before MMSA scores them itself.

The result holds, per (model, seed): ``epochs``, ``epoch_seconds``, ``parameters`` (trainable),
``ids``, ``outputs`` (logits ``[N, K]``, or ``[N]`` regression scores) and MMSA's own
``mmsa_metrics`` on the test split.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import torch
import torch.optim.lr_scheduler as lr_scheduler

SUPPORTED = ("tfn", "lmf", "mult", "lf_dnn")
"""MMSA models whose trainers call ``model(text, audio, vision)`` on unaligned, BERT-free data."""


def _install_cpu_shims() -> None:
    """Shims 1 and 2 of the module docstring; must run before MMSA is imported."""
    original_set_device = torch.cuda.set_device

    def set_device(device: Any) -> None:  # noqa: ANN401
        if torch.device(device).type == "cuda":
            original_set_device(device)

    class ReduceLROnPlateau(lr_scheduler.ReduceLROnPlateau):
        def __init__(self, *args: Any, verbose: Any = None, **kwargs: Any) -> None:  # noqa: ANN401
            super().__init__(*args, **kwargs)

    torch.cuda.set_device = set_device
    lr_scheduler.ReduceLROnPlateau = ReduceLROnPlateau  # type: ignore[misc]


class Recorder:
    """Instruments every trainer MMSA builds (shim 3) and keeps one record per training run."""

    def __init__(self, max_epochs: int, early_stop: int) -> None:
        self.max_epochs = max_epochs
        self.early_stop = early_stop
        self.runs: list[dict[str, Any]] = []

    def instrument(self, trainer: Any, args: Any) -> Any:  # noqa: ANN401
        """Wrap ``trainer.do_test`` (an instance attribute shadows the method ``do_train`` calls)."""
        args["early_stop"] = self.early_stop  # the previous run may have set it to 0
        record: dict[str, Any] = {"epoch_seconds": [], "valid_loss": []}
        self.runs.append(record)
        original = trainer.do_test
        mark = [time.perf_counter()]

        def do_test(model: torch.nn.Module, dataloader: Any, mode: str = "VAL",  # noqa: ANN401
                    return_sample_results: bool = False) -> dict[str, Any]:
            if mode == "TEST":
                record.update(_predict(model, dataloader, args["device"]))
                record["parameters"] = sum(p.numel() for p in model.parameters() if p.requires_grad)
            results = original(model, dataloader, mode=mode, return_sample_results=return_sample_results)
            if mode == "VAL":
                now = time.perf_counter()
                record["epoch_seconds"].append(now - mark[0])
                record["valid_loss"].append(float(results["Loss"]))
                mark[0] = now
                if len(record["epoch_seconds"]) >= self.max_epochs:
                    args["early_stop"] = 0  # MMSA's loop returns after this epoch
            elif mode == "TEST":
                record["mmsa_metrics"] = {k: float(v) for k, v in results.items()}
            return results

        trainer.do_test = do_test
        return trainer


def _predict(model: torch.nn.Module, dataloader: Any, device: Any) -> dict[str, Any]:  # noqa: ANN401
    """Raw outputs of ``model`` per id over ``dataloader`` (the loaded best checkpoint)."""
    model.eval()
    ids: list[str] = []
    outputs: list[torch.Tensor] = []
    with torch.no_grad():
        for batch in dataloader:
            out = model(batch["text"].to(device), batch["audio"].to(device), batch["vision"].to(device))["M"]
            ids.extend(str(i) for i in batch["id"])
            outputs.append(out.cpu())
    values = torch.cat(outputs)
    if values.shape[1] == 1:
        values = values[:, 0]
    return {"ids": ids, "outputs": values.tolist()}


def _kernel_overrides(config: dict[str, Any], seq_lens: dict[str, int]) -> dict[str, int]:
    """MulT's Conv1d kernels cut to each modality's length (a ``[N, 1, D]`` vector needs kernel 1)."""
    out = {}
    for key, modality in (("conv1d_kernel_size_l", "text"), ("conv1d_kernel_size_a", "audio"),
                          ("conv1d_kernel_size_v", "vision")):
        if key in config and int(config[key]) > int(seq_lens[modality]):
            out[key] = int(seq_lens[modality])
    return out


def run(job: dict[str, Any]) -> dict[str, Any]:
    """Train every (model, seed) of ``job`` with ``MMSA_run``; return the records."""
    _install_cpu_shims()
    import MMSA
    from MMSA import MMSA_run, get_config_regression
    from MMSA.trains import ATIO

    unknown = sorted(set(job["models"]) - set(SUPPORTED))
    if unknown:
        raise SystemExit(f"mmsa_runner: unsupported model(s) {unknown}; supported: {list(SUPPORTED)}")
    recorder = Recorder(int(job["max_epochs"]), int(job["early_stop"]))
    original_get_train = ATIO.getTrain

    def get_train(self: Any, args: Any) -> Any:  # noqa: ANN401
        return recorder.instrument(original_get_train(self, args), args)

    ATIO.getTrain = get_train
    overrides: dict[str, Any] = {"early_stop": int(job["early_stop"])}
    if int(job["num_classes"]):
        overrides.update(train_mode="classification", num_classes=int(job["num_classes"]))
    work = Path(job["work_dir"])
    out: list[dict[str, Any]] = []
    for model in job["models"]:
        config = {**overrides, **_kernel_overrides(get_config_regression(model, "mosi"), job["seq_lens"])}
        for seed in job["seeds"]:
            first = len(recorder.runs)
            MMSA_run(model, "mosi", config=config, seeds=[int(seed)], gpu_ids=[], num_workers=0,
                     verbose_level=0, custom_feature=str(job["pkl"]), model_save_dir=str(work / "models"),
                     res_save_dir=str(work / "results" / f"{model}-s{seed}"), log_dir=str(work / "logs"))
            (record,) = recorder.runs[first:]
            out.append({"model": model, "seed": int(seed), "epochs": len(record["epoch_seconds"]), **record})
    versions = {"MMSA": getattr(MMSA, "__version__", "2.2.1"), "torch": torch.__version__,
                "threads": torch.get_num_threads()}
    return {"runs": out, "versions": versions}


def main(argv: list[str]) -> int:
    """``mmsa_runner.py JOB.json``: run the job and write its ``result`` JSON."""
    if len(argv) != 1:
        print(__doc__.splitlines()[0], "\nusage: mmsa_runner.py JOB.json", file=sys.stderr)
        return 2
    job = json.loads(Path(argv[0]).read_text())
    result = run(job)
    Path(job["result"]).write_text(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
