"""``checkpoints/last.ckpt``, what ``--resume`` continues from."""

from __future__ import annotations

from lightning import LightningModule, Trainer
from lightning.pytorch.callbacks import ModelCheckpoint

from ginlight import internals

__all__ = ["LastCheckpoint"]


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
        """
        super().on_train_end(trainer, pl_module)
        internals.save_unless_saved(self, trainer)  # ModelCheckpoint's own skip test and save
