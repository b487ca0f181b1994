"""The predict stage's outputs, written into the run directory."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any, Sequence

import gin
import torch
from lightning import LightningModule, Trainer
from lightning.pytorch.callbacks import BasePredictionWriter

from ginlight import rundir

__all__ = ["PredictionWriter"]


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
        return Path(self.output_dir or rundir.RunDir(trainer.default_root_dir).predictions)

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
