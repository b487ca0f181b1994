"""ginlight.trainer: the Trainer ginlight builds where ``Experiment.trainer`` is unbound, and what every trainer gets."""

from __future__ import annotations

from pathlib import Path

import torch
from lightning import Trainer
from lightning.pytorch.callbacks import LearningRateMonitor, ModelCheckpoint, TQDMProgressBar
from lightning.pytorch.demos.boring_classes import BoringModel
from lightning.pytorch.loggers import TensorBoardLogger

from ginlight.gin import parsing
from ginlight.callbacks import LastCheckpoint, NonFiniteLossCheck, PredictionWriter, RandomStateInCheckpoint
from ginlight.system import System
from ginlight.runcontext import RunContext
from ginlight.trainer import PROGRESS_BAR_REFRESH_RATE, build_trainer, spawns_ranks


def _kinds(trainer: Trainer) -> list[str]:
    return [type(callback).__name__ for callback in trainer.callbacks]


def test_the_default_trainer_checkpoints_and_logs_into_the_run_directory(tmp_path):
    parsing.parse(bindings=["lightning.Trainer.max_epochs = 1"])
    trainer = build_trainer(None, BoringModel(), RunContext(tmp_path, tmp_path), "fit")
    assert trainer.default_root_dir == str(tmp_path) and trainer.max_epochs == 1
    assert isinstance(trainer.logger, TensorBoardLogger) and Path(trainer.logger.log_dir) == tmp_path / "tensorboard"
    (last,) = [c for c in trainer.callbacks if isinstance(c, ModelCheckpoint)]  # no second copy of the last epoch
    assert isinstance(last, LastCheckpoint) and last.dirpath == str(tmp_path / "checkpoints")
    (bar,) = [c for c in trainer.callbacks if isinstance(c, TQDMProgressBar)]
    assert bar.refresh_rate == PROGRESS_BAR_REFRESH_RATE
    # A LightningModule other than the System: its rates may change, and nothing else checks its loss.
    for kind in (LearningRateMonitor, RandomStateInCheckpoint, NonFiniteLossCheck):
        assert sum(isinstance(c, kind) for c in trainer.callbacks) == 1, _kinds(trainer)
    assert not any(isinstance(c, PredictionWriter) for c in trainer.callbacks)


def test_a_model_checkpoint_joins_only_when_bound_away_from_its_defaults_and_comes_first(tmp_path):
    parsing.parse(bindings=["lightning.pytorch.callbacks.ModelCheckpoint.save_top_k = 1"])  # its default
    trainer = build_trainer(None, BoringModel(), RunContext(tmp_path, tmp_path), "fit")
    assert [type(c) for c in trainer.checkpoint_callbacks] == [LastCheckpoint]
    parsing.parse(bindings=["lightning.pytorch.callbacks.ModelCheckpoint.monitor = 'val/loss'"])
    trainer = build_trainer(None, BoringModel(), RunContext(tmp_path, tmp_path), "fit")
    assert [type(c) for c in trainer.checkpoint_callbacks] == [ModelCheckpoint, LastCheckpoint]
    assert trainer.checkpoint_callback.monitor == "val/loss"
    assert trainer.checkpoint_callback.dirpath == str(tmp_path / "checkpoints")


def test_a_system_without_a_scheduler_has_no_learning_rate_monitor_nor_loss_check(tmp_path):
    parsing.parse(bindings=["lightning.Trainer.max_epochs = 1"])
    trainer = build_trainer(None, System(model=torch.nn.Linear(2, 2)), RunContext(tmp_path, tmp_path), "fit")
    assert not any(isinstance(c, (LearningRateMonitor, NonFiniteLossCheck)) for c in trainer.callbacks), _kinds(trainer)


def test_a_bound_trainer_keeps_its_own_settings_and_gets_what_every_run_has(tmp_path):
    parsing.parse(bindings=["lightning.Trainer.max_epochs = 1"])
    bound = Trainer(logger=False, enable_checkpointing=False, enable_progress_bar=False, max_steps=7)
    trainer = build_trainer(bound, BoringModel(), RunContext(tmp_path, tmp_path), "predict")
    assert trainer is bound and trainer.max_steps == 7 and trainer.logger is None
    (writer,) = [c for c in trainer.callbacks if isinstance(c, PredictionWriter)]
    assert writer.output_dir == str(tmp_path / "predictions")
    assert sum(isinstance(c, RandomStateInCheckpoint) for c in trainer.callbacks) == 1


def test_only_ddp_spawn_starts_ranks_that_inherit_nothing():
    spawns = {strategy: spawns_ranks(Trainer(strategy=strategy, accelerator="cpu", devices=2, logger=False))
              for strategy in ("ddp_spawn", "ddp_fork", "ddp")}
    assert spawns == {"ddp_spawn": True, "ddp_fork": False, "ddp": False}
    assert not spawns_ranks(Trainer(accelerator="cpu", devices=1, logger=False))  # one process: no launcher
