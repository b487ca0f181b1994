"""The dry run: one batch through the System before training, so a wiring mistake fails now, not an hour in.

For each mode the stage runs, the first batch of the System's loader goes through
the batch adapter, the model, the criterion and (a copy of) the metrics, with
gradients off, the model in eval mode and the random state restored afterwards:
the pass changes nothing that training will see.

It runs where the run trains on the CPU (``Experiment.dry_run``, on by default) and
is skipped where it trains on an accelerator (:func:`trains_on_cpu`; why, in
docs/performance.md).
"""

from __future__ import annotations

from typing import Any

import torch
from lightning import Trainer
from lightning.pytorch.accelerators import CPUAccelerator

from ginlight import internals
from ginlight.gin import lookup
from ginlight.adapters import AdapterError
from ginlight.errors import ConfigError, user_frame
from ginlight.stages import MODES_OF_STAGE
from ginlight.system import System

__all__ = ["check_system", "describe", "trains_on_cpu"]


def describe(value: Any) -> str:
    """A short account of a value's structure for error messages: shapes, keys, lengths."""
    if isinstance(value, torch.Tensor):
        return f"a tensor of shape {tuple(value.shape)} ({str(value.dtype).removeprefix('torch.')})"
    if isinstance(value, dict):
        return "a dict {" + ", ".join(f"{k!r}: {describe(v)}" for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        return f"a {type(value).__name__} of " + ", ".join(describe(v) for v in value[:4]) + (
            ", ..." if len(value) > 4 else "")
    return type(value).__name__


def trains_on_cpu(trainer: Trainer | None) -> bool:
    """Whether the run trains on the CPU: ``trainer`` (``Experiment.trainer``) when bound, else the trainer ginlight
    will build, whose ``Trainer.accelerator`` (``"auto"`` unless bound) is resolved as Lightning resolves it."""
    if trainer is not None:
        return isinstance(trainer.accelerator, CPUAccelerator)
    accelerator = lookup.query("lightning.Trainer", "accelerator", default="auto")
    if accelerator == "auto":
        accelerator = internals.auto_accelerator()
    return accelerator == "cpu" or isinstance(accelerator, CPUAccelerator)


def check_system(system: System, stage: str, uses_datamodule: bool) -> None:
    """Raises :class:`ConfigError` when ``system`` cannot run one batch of ``stage``.

    With a datamodule the loaders come from Lightning's hooks later, so only the
    System's own loaders are checked.
    """
    if isinstance(system.criterion, type):
        raise ConfigError(
            f"System.criterion is the class {system.criterion.__name__}, not an instance.",
            hint=f"Add parentheses: `System.criterion = @{system.criterion.__name__}()`.",
            binding="System.criterion",
        )
    if uses_datamodule:
        return
    modes = [m for m in MODES_OF_STAGE[stage] if not (m == "val" and stage == "fit" and m not in system.dataloaders)]
    for mode in modes:
        if mode not in system.dataloaders:
            raise ConfigError(
                f"--stage={stage} needs a '{mode}' dataloader and System.dataloaders has none "
                f"(it has: {', '.join(sorted(system.dataloaders)) or 'none'}).",
                hint=f"Add one: System.dataloaders = {{'{mode}': @{mode}/DataLoader(), ...}}.",
            )
    with torch.random.fork_rng(devices=[]), torch.no_grad():
        training = system.training
        system.eval()
        try:
            for mode in modes:
                _check_mode(system, mode)
        finally:
            system.train(training)


def _check_mode(system: System, mode: str) -> None:
    try:
        batch = next(iter(system.dataloaders[mode]))
    except StopIteration:
        raise ConfigError(f"the '{mode}' dataloader yields no batches.", hint="Check its dataset.") from None
    adapters = system.adapters[mode]
    try:
        input, target, _ = adapters["batch"](batch)
    except AdapterError as exc:
        raise ConfigError(str(exc), binding=exc.binding) from None
    try:
        pred = system.model(input) if mode == "train" or system.inferer is None else system.inferer(input, system.model)
    except Exception as exc:
        raise ConfigError(
            f"the model failed on the first '{mode}' batch's input, {describe(input)}: {type(exc).__name__}: {exc}"
            + user_frame(exc),
            hint="Check the model's sizes against the data, or the BatchAdapter's input_accessor.",
        ) from exc
    if mode == "predict":
        return
    if system.criterion is not None:
        try:
            adapters["criterion"](system.criterion, input, target, pred)
        except Exception as exc:
            raise ConfigError(
                f"the criterion {type(system.criterion).__name__} failed on the first '{mode}' batch "
                f"through the {mode} CriterionAdapter ({_arguments(adapters['criterion'], input, target, pred)}): "
                f"{type(exc).__name__}: {exc}",
                hint="Check the model's output size, or the CriterionAdapter's arguments and transforms.",
            ) from exc
    metrics = getattr(system, f"{mode}_metrics", None)
    if metrics is not None:
        try:
            adapters["metrics"](metrics.clone().update, input, target, pred)
        except Exception as exc:
            raise ConfigError(
                f"the {mode} metrics failed on the first '{mode}' batch through the {mode} MetricsAdapter "
                f"({_arguments(adapters['metrics'], input, target, pred)}): {type(exc).__name__}: {exc}",
                hint="Check the metrics' task and num_classes, or the MetricsAdapter's arguments and transforms.",
            ) from exc


def _arguments(adapter: Any, input: Any, target: Any, pred: Any) -> str:
    """What the adapter hands on, after its transforms (before them, when a transform fails)."""
    try:
        values = adapter.transform(input, target, pred)
    except Exception:
        values = {"pred": pred, "target": target}
    return f"pred is {describe(values['pred'])}, target is {describe(values['target'])}"
