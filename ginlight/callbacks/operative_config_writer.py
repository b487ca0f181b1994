"""The run's operative config, recorded in the run directory and in every checkpoint."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

from lightning import Callback, LightningModule, Trainer

from ginlight import __version__, rundir

__all__ = ["OperativeConfigWriter"]


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
        rundir.store_config(checkpoint, self.path.read_text(), __version__)

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
