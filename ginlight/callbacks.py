"""Callbacks that ginlight adds to runs, or that users bind from gin."""

from __future__ import annotations

import csv
import os
from pathlib import Path
from typing import Any, Callable, Sequence

import gin
import torch
from lightning import Callback, LightningModule, Trainer
from lightning.pytorch.callbacks import BasePredictionWriter, ModelCheckpoint

from ginlight import __version__, rundir

__all__ = ["PredictionWriter", "OperativeConfigWriter", "LastCheckpoint", "NonFiniteLossCheck"]


@gin.configurable(module="ginlight.callbacks")
class PredictionWriter(BasePredictionWriter):
    """Writes predict-stage outputs of a :class:`ginlight.System` into the run directory.

    Each rank writes its share; rank 0 then merges them, one row per sample,
    ordered by identifier, samples that a distributed sampler repeated dropped.

    Args:
        output_dir: where to write; defaults to ``<run dir>/predictions``.
        format: ``"csv"`` for one table ``predictions.csv`` (identifier, prediction),
            ``"files"`` for one ``<identifier>.pt`` tensor per sample.
    """

    def __init__(self, output_dir: str | None = None, format: str = "csv"):
        super().__init__(write_interval="epoch")
        if format not in ("csv", "files"):
            raise ValueError(f"PredictionWriter.format must be 'csv' or 'files', got {format!r}.")
        self.output_dir = output_dir
        self.format = format

    def _dir(self, trainer: Trainer) -> Path:
        return Path(self.output_dir or Path(trainer.default_root_dir) / "predictions")

    def write_on_epoch_end(
        self,
        trainer: Trainer,
        pl_module: LightningModule,
        predictions: Sequence[Any],
        batch_indices: Sequence[Any],
    ) -> None:
        rows = list(_rows(predictions, batch_indices))
        directory = self._dir(trainer)
        directory.mkdir(parents=True, exist_ok=True)
        if self.format == "files":
            for identifier, pred in rows:
                torch.save(pred, directory / f"{identifier}.pt")
            return
        part = directory / f".predictions-rank{trainer.global_rank}.pt"
        torch.save(rows, part)
        trainer.strategy.barrier("ginlight_prediction_writer")
        if trainer.is_global_zero:
            merged: dict[Any, Any] = {}
            for rank in range(trainer.world_size):
                path = directory / f".predictions-rank{rank}.pt"
                merged.update(torch.load(path, weights_only=True))
                path.unlink()
            with open(directory / "predictions.csv", "w", newline="") as handle:
                writer = csv.writer(handle)
                writer.writerow(["identifier", "prediction"])
                for identifier in sorted(merged):
                    writer.writerow([identifier, _format(merged[identifier])])


def _rows(predictions: Sequence[Any], batch_indices: Sequence[Any]):
    # Lightning nests predictions per dataloader when there are several, and batch
    # indices always; flatten both to one entry per batch.
    if predictions and isinstance(predictions[0], list):
        predictions = [p for per_loader in predictions for p in per_loader]
    if batch_indices and batch_indices[0] and isinstance(batch_indices[0][0], list):
        batch_indices = [i for per_loader in batch_indices for i in per_loader]
    for output, indices in zip(predictions, batch_indices):
        preds = output["pred"] if isinstance(output, dict) else output
        identifiers = output.get("identifier") if isinstance(output, dict) else None
        if identifiers is None:
            identifiers = indices
        for identifier, pred in zip(_items(identifiers), preds):
            yield identifier, pred.detach().cpu() if isinstance(pred, torch.Tensor) else pred


def _items(identifiers: Any) -> list[Any]:
    if isinstance(identifiers, torch.Tensor):
        return identifiers.tolist()
    return list(identifiers)


def _format(pred: Any) -> str:
    if isinstance(pred, torch.Tensor):
        return str(pred.item()) if pred.numel() == 1 else " ".join(str(v) for v in pred.flatten().tolist())
    return str(pred)


class OperativeConfigWriter(Callback):
    """Records the run's operative config: in the run directory and in every checkpoint.

    gin records a configurable only once it is called, and Lightning builds the
    optimizer and scheduler as the stage starts; so the file written when the
    trainer is built is written again then, and once more when the run ends.
    Its :attr:`listeners` are called after each stage's write (ginlight's
    :class:`~ginlight.trackers.TrackerFeed`, which sends the file to the loggers),
    so that they cost no callback dispatch at every step.
    Each checkpoint holds the file's text and ginlight's version, so that a
    checkpoint alone is enough to rebuild its System (``ginlight.load_system``).
    Processes spawned later (``ddp_spawn`` ranks) hold only part of the config:
    they read the file the owning process wrote instead of rendering their own.

    Args:
        path: the run's ``operative_config.gin``.
        render: returns the config's text, in the process that creates the writer.
    """

    def __init__(self, path: Path, render: Callable[[], str]):
        self.path = Path(path)
        self.render = render
        self.owner = os.getpid()
        self.listeners: list[Callable[[Trainer, LightningModule], None]] = []

    def write(self) -> str:
        """Renders and writes the config in the owning process; elsewhere reads what it wrote."""
        if os.getpid() != self.owner:
            return self.path.read_text()
        text = self.render()
        rundir.write_atomic(self.path, text)
        return text

    def on_save_checkpoint(self, trainer: Trainer, pl_module: LightningModule, checkpoint: dict) -> None:
        checkpoint["ginlight"] = {"operative_config": self.path.read_text(), "version": __version__}

    def on_fit_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._on_stage_start(trainer, pl_module)

    def on_validation_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if trainer.state.fn == "validate":  # during fit, on_fit_start has written it
            self._on_stage_start(trainer, pl_module)

    def on_test_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._on_stage_start(trainer, pl_module)

    def on_predict_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._on_stage_start(trainer, pl_module)

    def _on_stage_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self.write()
        for listener in self.listeners:
            listener(trainer, pl_module)


class LastCheckpoint(ModelCheckpoint):
    """Writes ``checkpoints/last.ckpt`` at every epoch end, and where an exception or a signal stopped the run.

    It is what ``--resume`` continues from, so it is ginlight's own and takes no gin
    bindings: a bound ``ModelCheckpoint`` (best checkpoints, every N steps) runs
    beside it and cannot change when or where it writes.
    """

    FILENAME = ModelCheckpoint.CHECKPOINT_NAME_LAST

    def __init__(self, dirpath: str):
        super().__init__(dirpath=dirpath, filename=self.FILENAME, enable_version_counter=False,
                         save_on_exception=True)

    @property
    def state_key(self) -> str:
        # One of a kind per trainer; a constant also spares formatting ModelCheckpoint's key at every hook.
        return type(self).__qualname__

    def on_train_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """Writes the final state unless the latest epoch end or validation already did.

        A step-based run ends at ``max_steps``, which may fall between two
        validations; ``last.ckpt`` (and ``load_system``) must still hold the end.
        (ModelCheckpoint's own skip test and save, Lightning 2.6.)
        """
        super().on_train_end(trainer, pl_module)
        if not self._should_skip_saving_checkpoint(trainer):
            self._save_none_monitor_checkpoint(trainer, self._monitor_candidates(trainer))


class NonFiniteLossCheck(Callback):
    """Fails a run whose logged loss became NaN or infinite, for LightningModules other than ginlight's System.

    It reads the values Lightning already holds (``trainer.callback_metrics``) at
    each training epoch end and validation end, so it adds no host sync per step.
    Any logged value whose last name part contains ``loss`` counts. (The System
    checks its own loss where it logs it, ``System.stop_on_nonfinite_loss``.)
    """

    def on_train_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._check(trainer)

    def on_validation_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if trainer.state.fn == "fit":
            self._check(trainer)

    def _check(self, trainer: Trainer) -> None:
        losses = {key: value for key, value in trainer.callback_metrics.items() if "loss" in key.rsplit("/", 1)[-1]}
        if not losses:
            return
        finite = torch.stack([torch.isfinite(value).all() for value in losses.values()])
        if not bool(finite.all()):  # one host sync for all of them
            bad = [key for key, ok in zip(losses, finite.tolist()) if not ok]
            raise FloatingPointError(
                f"the logged {', '.join(repr(k) for k in bad)} became {float(losses[bad[0]])} by step "
                f"{trainer.global_step} (epoch {trainer.current_epoch}): training diverged. Lower the learning "
                "rate, clip gradients (Trainer.gradient_clip_val) or check the data for NaNs."
            )
