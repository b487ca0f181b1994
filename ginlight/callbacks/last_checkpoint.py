"""``checkpoints/last.ckpt``, what ``--resume`` continues from."""

from __future__ import annotations

from lightning import LightningModule, Trainer
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.trainer.states import TrainerFn
from lightning.pytorch.utilities import rank_zero_warn

from ginlight import internals

__all__ = ["LastCheckpoint"]


class LastCheckpoint(ModelCheckpoint):
    """Writes ``checkpoints/last.ckpt`` at every epoch end, and where an exception or a signal stopped the run.

    It is what ``--resume`` continues from, so it is ginlight's own and takes no gin
    bindings: a bound ``ModelCheckpoint`` (best checkpoints, every N steps) runs
    beside it and cannot change when or where it writes.

    Where a signal or an exception stops a run inside an epoch whose training loader
    cannot save its place (a LightningModule's own plain ``DataLoader``), the step it
    stopped at could not be resumed exactly: ``last.ckpt`` then stays at the latest
    epoch end, and :attr:`resume_point` says so.
    """

    FILENAME = ModelCheckpoint.CHECKPOINT_NAME_LAST
    #: :attr:`resume_point` when the step a run stopped at was saved, and when the latest epoch end was kept.
    STOPPED_STEP, EPOCH_END = "the step it stopped at", "the latest epoch end"

    def __init__(self, dirpath: str):
        super().__init__(dirpath=dirpath, filename=self.FILENAME, enable_version_counter=False,
                         save_on_exception=True)
        #: Where ``last.ckpt`` leaves a run that a signal or an exception stopped; None until one does.
        self.resume_point: str | None = None

    @property
    def state_key(self) -> str:
        # One of a kind per trainer; a constant also spares formatting ModelCheckpoint's key at every hook.
        return type(self).__qualname__

    def on_exception(self, trainer: Trainer, pl_module: LightningModule, exception: BaseException) -> None:
        if trainer.state.fn == TrainerFn.FITTING and not internals.train_loaders_resumable(trainer):
            self.resume_point = self.EPOCH_END
            rank_zero_warn(
                f"stopped at step {trainer.global_step}, in epoch {trainer.current_epoch}, but the training "
                "loader cannot save its place in an epoch (it has no state_dict() and load_state_dict()): "
                f"checkpoints/last.ckpt stays at the latest epoch end, and --resume repeats the steps since, "
                "to the same weights. Use a resumable loader (torchdata's StatefulDataLoader) to resume where "
                "it stopped.")
            return
        self.resume_point = self.STOPPED_STEP
        super().on_exception(trainer, pl_module, exception)

    def on_train_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """Writes the final state unless the latest epoch end or validation already did.

        A step-based run ends at ``max_steps``, which may fall between two
        validations; ``last.ckpt`` (and ``load_system``) must still hold the end.
        """
        super().on_train_end(trainer, pl_module)
        internals.save_unless_saved(self, trainer)  # ModelCheckpoint's own skip test and save
