"""A run whose logged loss became NaN or infinite fails, with the name and step."""

from __future__ import annotations

import torch
from lightning import Callback, LightningModule, Trainer

__all__ = ["NonFiniteLossCheck"]


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
