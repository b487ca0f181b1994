"""The Trainer ginlight builds: its default callbacks, checkpoints and logger, pointed at the run directory.

``Experiment.trainer`` left unbound, ginlight builds a ``lightning.Trainer`` through
gin, so ``Trainer.*`` bindings apply, with what a run needs where nothing is bound:
TensorBoard logs, ``checkpoints/last.ckpt`` (and the bound ModelCheckpoint's best
ones), a learning-rate monitor where rates change, and a progress bar that redraws
less often than Lightning's. Every trainer, bound or built, gets the callbacks that
keep a run's records: random states in its checkpoints, a trial's pruning reports,
predictions written into the run directory; and every trainer writes its checkpoints
crash-safe (:class:`ginlight.checkpoint.CrashSafeCheckpointIO`).
"""

from __future__ import annotations

import contextlib
import signal
import threading
from pathlib import Path
from typing import Any, Iterator, Sequence

from lightning import LightningModule, Trainer
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.plugins.io import TorchCheckpointIO

from ginlight import checkpoint, internals, pruning, rundir, trackers
from ginlight.gin import lookup
from ginlight.callbacks import LastCheckpoint, NonFiniteLossCheck, PredictionWriter, RandomStateInCheckpoint
from ginlight.runcontext import RunContext
from ginlight.system import System

__all__ = ["DETERMINISTIC", "PROGRESS_BAR_REFRESH_RATE", "build_trainer", "gin_calls", "sigint_finishes_the_step",
           "spawns_ranks", "trainer_defaults"]

_MODEL_CHECKPOINT = "lightning.pytorch.callbacks.ModelCheckpoint"
#: ``Trainer.deterministic`` of the trainer ginlight builds: exact reruns, warning about ops that cannot be.
DETERMINISTIC = "warn"
#: Batches between redraws of the default progress bar: each redraw formats and writes the bar and
#: its logged values, a good share of a small model's step (docs/performance.md).
PROGRESS_BAR_REFRESH_RATE = 10


def trainer_defaults() -> dict[str, str]:
    """What the trainer ginlight builds passes where nothing is bound, in words (for ``--print_config``)."""
    return {
        "default_root_dir": "<the run directory>",
        "deterministic": repr(DETERMINISTIC),
        "logger": f"@TensorBoardLogger(save_dir=<the run directory>, name='{rundir.TENSORBOARD}', version='')",
        "callbacks": "[ModelCheckpoint if configured, LastCheckpoint, LearningRateMonitor if a scheduler, "
                     f"TQDMProgressBar(refresh_rate={PROGRESS_BAR_REFRESH_RATE})]",
    }


def gin_calls() -> dict[str, tuple[str, ...]]:
    """What building a trainer calls through gin whatever the config references, each with the parameters it
    passes: part of where the check of a config starts following references (:mod:`ginlight.gin.check`)."""
    return {"lightning.Trainer": tuple(trainer_defaults()),
            "lightning.pytorch.callbacks.LearningRateMonitor": (),
            "lightning.pytorch.callbacks.TQDMProgressBar": ("refresh_rate",),
            _MODEL_CHECKPOINT: ("dirpath",),
            "lightning.pytorch.loggers.TensorBoardLogger": ("save_dir", "name", "version"),
            "ginlight.callbacks.PredictionWriter": ("output_dir",)}


def build_trainer(bound: Trainer | None, system: LightningModule, context: RunContext, stage: str) -> Trainer:
    """The trainer that runs ``stage`` of ``system`` into the run directory of ``context``: ``bound``
    (``Experiment.trainer``) or, when None, one built through gin (``Trainer.*``) with ginlight's defaults; either
    way with the callbacks every ginlight run has. gin's call errors pass through as they are: the caller
    translates them."""
    run_dir = context.run_dir
    trainer = bound
    if trainer is None:
        with trackers.building(context.root, run_dir):  # loggers bound without a save_dir write into it
            trainer = lookup.call_configurable(
                "lightning.Trainer",
                default_root_dir=str(run_dir),
                deterministic=DETERMINISTIC,
                logger=_default_logger(run_dir),
                callbacks=_default_callbacks(run_dir, system),
            )
    if type(trainer.strategy.checkpoint_io) is TorchCheckpointIO:  # Lightning's default; a plugin bound is kept
        trainer.strategy.checkpoint_io = checkpoint.CrashSafeCheckpointIO()
    for callback in trainer.checkpoint_callbacks:
        if isinstance(callback, ModelCheckpoint) and callback.dirpath is None:
            callback.dirpath = str(run_dir / rundir.CHECKPOINTS)
        if isinstance(callback, ModelCheckpoint) and Path(callback.dirpath).is_dir():
            checkpoint.remove_partial_files(callback.dirpath)  # what a save cut short by a kill left
    trainer.callbacks.append(RandomStateInCheckpoint())
    if trainer.profiler.filename and trainer.profiler.dirpath is None:  # Lightning's default: the logger's folder
        trainer.profiler.dirpath = str(run_dir)
    trainer.callbacks += pruning.trial_callbacks(context.trial)  # in a sweep's trial: reports to its Optuna trial
    if not isinstance(system, System):  # the System checks its loss itself, where it logs it
        trainer.callbacks.append(NonFiniteLossCheck())
    if stage == "predict" and not any(isinstance(c, PredictionWriter) for c in trainer.callbacks):
        trainer.callbacks.append(PredictionWriter(output_dir=str(rundir.RunDir(run_dir).predictions)))
    return trainer


@contextlib.contextmanager
def sigint_finishes_the_step(trainer: Trainer) -> Iterator[None]:
    """SIGINT (Ctrl+C) stops ``trainer`` as SIGTERM does while the block runs: after the current step, with
    ``last.ckpt`` saved there; a second SIGINT interrupts at once, as Python does.

    Python's KeyboardInterrupt lands anywhere, even between a step's optimizer update and Lightning's
    count of it, and a checkpoint saved there would repeat that step on resume. Only in the main thread,
    the one Python delivers signals to.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def first(signum: int, frame: Any) -> None:
        signal.signal(signal.SIGINT, signal.default_int_handler)
        print("\nStopping after this step, saving a checkpoint to resume from; Ctrl+C again stops at once.",
              flush=True)
        internals.stop_after_this_step(trainer)

    previous = signal.signal(signal.SIGINT, first)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def spawns_ranks(trainer: Trainer) -> bool:
    """Whether the strategy starts ranks that inherit nothing of this process (``ddp_spawn``).

    (Ranks that rerun the command, as plain ``ddp`` starts them, parse the config themselves.)
    """
    launcher = trainer.strategy.launcher
    # is_interactive_compatible: started by fork, the ranks inherit this process's memory and config.
    return internals.is_multiprocessing_launcher(launcher) and not launcher.is_interactive_compatible


def _default_callbacks(run_dir: Path, system: LightningModule) -> list[Any]:
    """Checkpoints into the run directory (unless ``Trainer.enable_checkpointing = False``), the
    learning rates when something logs them and they may change, and the progress bar.

    A System without a scheduler keeps its learning rates constant, as its operative
    config records; a monitor would log the same values at every step and cost a
    callback's dispatch at every hook (docs/performance.md).

    The progress bar is Lightning's, redrawn every :data:`PROGRESS_BAR_REFRESH_RATE`
    batches instead of after each one (``TQDMProgressBar.refresh_rate`` rebinds it).

    Every choice here follows from bound or default values, never from whether
    something is bound: an operative config binds everything, and its rerun must
    take the same path.
    """
    callbacks = []
    if lookup.query("lightning.Trainer", "enable_checkpointing", default=True):
        callbacks += _checkpoint_callbacks(str(run_dir / rundir.CHECKPOINTS))
    constant_rates = isinstance(system, System) and system.scheduler is None
    if lookup.query("lightning.Trainer", "logger", default=True) not in (False, None) and not constant_rates:
        callbacks.append(lookup.call_configurable("lightning.pytorch.callbacks.LearningRateMonitor"))
    if lookup.query("lightning.Trainer", "enable_progress_bar", default=True):
        callbacks.append(lookup.call_configurable("lightning.pytorch.callbacks.TQDMProgressBar",
                                                  refresh_rate=PROGRESS_BAR_REFRESH_RATE))
    return callbacks


def _checkpoint_callbacks(directory: str) -> list[ModelCheckpoint]:
    """A :class:`~ginlight.callbacks.LastCheckpoint`, after the bound ModelCheckpoint when there is one.

    ``checkpoints/last.ckpt``, what ``--resume`` continues from, is always
    ginlight's own. A ModelCheckpoint is built through gin when any of its
    parameters is bound to something other than its own default (a ``monitor``
    for the best checkpoints, ``every_n_train_steps``, ``save_top_k = -1``...); one
    with Lightning's defaults only would keep a second copy of the latest epoch.
    It comes first, so that it is the trainer's ``checkpoint_callback``.
    """
    callbacks: list[ModelCheckpoint] = []
    if _differs_from_defaults(_MODEL_CHECKPOINT, exclude=("dirpath",)):
        callbacks.append(lookup.call_configurable(_MODEL_CHECKPOINT, dirpath=directory))
    return [*callbacks, LastCheckpoint(directory)]


def _differs_from_defaults(selector: str, exclude: Sequence[str] = ()) -> bool:
    """Whether any parameter of ``selector`` has a value other than its signature's default."""
    defaults = lookup.signature_defaults(selector)
    return any(lookup.query(selector, name, default=default) != default
               for name, default in defaults.items() if name not in exclude)


def _default_logger(run_dir: Path) -> Any:
    if lookup.is_bound("lightning.Trainer", "logger"):
        return None  # call_configurable keeps the user's
    return lookup.call_configurable(
        "lightning.pytorch.loggers.TensorBoardLogger", save_dir=str(run_dir), name=rundir.TENSORBOARD, version="",
    )
