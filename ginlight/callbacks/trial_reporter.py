"""A sweep's trial reports its objective to Optuna at each validation, and stops when its pruner says so."""

from __future__ import annotations

from typing import Any

from lightning import Callback, LightningModule, Trainer

from ginlight.rundir import Status

__all__ = ["TrialReporter", "UNIT_ATTR"]

#: The trial user attribute saying what a reported step counts: ``epoch`` or ``step``.
UNIT_ATTR = "report_unit"


class TrialReporter(Callback):
    """Reports the objective to an Optuna trial at each validation, and stops the run when it is pruned.

    The step is the epoch (from 0, as Optuna's pruners count) when the run validates
    once per epoch, else the global step. A pruned run stops at the end of that
    validation's epoch (Lightning's ``should_stop``, so the epoch's ``last.ckpt`` is
    written) and its :attr:`final_status` is ``pruned``, which ``run.json`` records.
    Under DDP rank 0 reports and decides, and tells the other ranks.
    """

    def __init__(self, trial: Any, objective: str):
        self.trial = trial
        self.objective = objective
        self.final_status: str | None = None

    def on_fit_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if trainer.is_global_zero:
            self.trial.set_user_attr(UNIT_ATTR, "epoch" if self._per_epoch(trainer) else "step")

    def on_validation_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if trainer.sanity_checking:
            return
        prune = False
        value = trainer.callback_metrics.get(self.objective)
        if trainer.is_global_zero and value is not None:
            self.trial.report(float(value), trainer.current_epoch if self._per_epoch(trainer) else trainer.global_step)
            prune = self.trial.should_prune()
        if trainer.world_size > 1:
            prune = trainer.strategy.broadcast(prune)
        if prune:
            self.final_status = Status.PRUNED
            trainer.should_stop = True

    @staticmethod
    def _per_epoch(trainer: Trainer) -> bool:
        return isinstance(trainer.val_check_interval, float) and trainer.val_check_interval == 1.0
