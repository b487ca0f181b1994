"""Builds and runs one experiment: seed, system, data, run directory, trainer.

The order matters. The seed is applied before gin builds anything, because model
weights depend on it. The system and data are built before the run directory
exists, so that a configuration error leaves no directory behind. The trainer is
built last, pointed at the run directory.
"""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import gin
from lightning import LightningDataModule, LightningModule, Trainer, seed_everything
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.loggers import TensorBoardLogger

from ginlight import config, rundir
from ginlight.callbacks import ConfigInCheckpoint, PredictionWriter, StopOnNonFiniteLoss
from ginlight.errors import ConfigError, RunError
from ginlight.project import add_to_path, import_projects

__all__ = ["Experiment", "RunResult", "train", "STAGES"]

STAGES = ("fit", "validate", "test", "predict")
# Lightning's DDP launcher reruns the command once per extra rank; these tell
# those processes which run directory and seed rank 0 chose.
RUN_DIR_ENV = "GINLIGHT_RUN_DIR"
SEED_ENV = "GINLIGHT_SEED"
_EXPERIMENT = "ginlight.Experiment"


@gin.configurable(module="ginlight")
class Experiment:
    """What one run is made of.

    Args:
        system: the LightningModule to run, usually a :class:`ginlight.System`.
        trainer: a ``lightning.Trainer``; by default ginlight builds one through
            gin (bind ``Trainer.*``) pointed at the run directory.
        datamodule: optional LightningDataModule, used instead of the system's loaders.
        seed: applied with ``seed_everything(seed, workers=True)`` before anything
            is built; None draws one, recorded in the operative config.
        stage_kwargs: extra arguments per stage for ``Trainer.fit``, ``validate``,
            ``test`` or ``predict``.
        stop_on_nonfinite_loss: fail the run at the first NaN or infinite loss.
    """

    def __init__(
        self,
        system: LightningModule = gin.REQUIRED,
        trainer: Trainer | None = None,
        datamodule: LightningDataModule | None = None,
        seed: int | None = 0,
        stage_kwargs: Mapping[str, Mapping[str, Any]] | None = None,
        stop_on_nonfinite_loss: bool = True,
    ):
        if not isinstance(system, LightningModule):
            raise ConfigError(f"Experiment.system must be a LightningModule, got {system!r}.",
                              hint="Bind an instance: `Experiment.system = @System()`.")
        unknown = sorted(set(stage_kwargs or {}) - set(STAGES))
        if unknown:
            raise ConfigError(f"Experiment.stage_kwargs has unknown stages {unknown}; stages are {', '.join(STAGES)}.")
        self.system = system
        self.trainer = trainer
        self.datamodule = datamodule
        self.seed = seed
        self.stage_kwargs = {stage: dict(kwargs) for stage, kwargs in (stage_kwargs or {}).items()}
        self.stop_on_nonfinite_loss = stop_on_nonfinite_loss


@dataclass
class RunResult:
    """What :func:`train` returns."""

    run_dir: Path
    status: str
    metrics: dict[str, float] = field(default_factory=dict)
    best_checkpoint: str | None = None


def train(
    gin_files: Sequence[str | os.PathLike] = (),
    bindings: Sequence[str] = (),
    *,
    search_paths: Sequence[str | os.PathLike] = (".",),
    projects: Sequence[str] = (),
    stage: str = "fit",
    ckpt_path: str | None = None,
    root_dir: str | os.PathLike = "runs",
    run_dir: str | os.PathLike | None = None,
    name: str | None = None,
    argv: Sequence[str] | None = None,
) -> RunResult:
    """Runs ``stage`` of the experiment configured by ``gin_files`` then ``bindings``.

    Creates a run directory under ``root_dir/<name>/`` (``name`` defaults to the
    first gin file's stem) unless ``run_dir`` is given. Raises
    :class:`ConfigError` for mistakes found before the run starts and
    :class:`RunError` when it fails; either way nothing is left half-recorded.
    """
    if stage not in STAGES:
        raise ConfigError(f"unknown stage '{stage}'; the stages are {', '.join(STAGES)}.")
    if ckpt_path is not None and not Path(ckpt_path).is_file():
        raise ConfigError(f"checkpoint '{ckpt_path}' not found.", hint="Check the --ckpt_path.")
    add_to_path(os.getcwd())
    paths = [os.getcwd(), *import_projects(projects)]
    config.parse(gin_files, bindings, search_paths)
    inherited_dir = os.environ.get(RUN_DIR_ENV)
    seed = _apply_seed(int(os.environ[SEED_ENV]) if inherited_dir else None)
    experiment = _build(lambda: gin.get_configurable(_EXPERIMENT)())
    if inherited_dir:  # a DDP rank started by rank 0: it shares rank 0's directory and writes nothing
        trainer = _build_trainer(experiment, Path(inherited_dir), stage)
        _run_stage(experiment, trainer, stage, ckpt_path)
        return RunResult(Path(inherited_dir), "completed", _final_metrics(trainer))

    path = _create_run_dir(root_dir, run_dir, name or (Path(gin_files[0]).stem if gin_files else "run"))
    files = [config.resolve(f, search_paths) for f in gin_files]
    rundir.write_atomic(path / rundir.CONFIG, config.merged_input(files, bindings))
    with rundir.console_to_file(path / rundir.LOG):
        try:
            trainer = _build_trainer(experiment, path, stage)
        except ConfigError:
            shutil.rmtree(path)
            raise
        header = f"Operative config of {path}, seed {seed}.\nRerun with: ginlight-train --gin_file={path / rundir.OPERATIVE_CONFIG}"
        operative = config.operative_config(paths, header)
        rundir.write_atomic(path / rundir.OPERATIVE_CONFIG, operative)
        trainer.callbacks.append(ConfigInCheckpoint(operative))
        _log_config(trainer, operative)
        record = rundir.RunRecord(path)
        record.start(list(argv if argv is not None else sys.argv), seed)
        status, error = "failed", None
        try:
            with _environment({RUN_DIR_ENV: str(path.resolve()), SEED_ENV: str(seed)}):
                _run_stage(experiment, trainer, stage, ckpt_path)
            status = "interrupted" if trainer.interrupted else "completed"
        except (KeyboardInterrupt, SystemExit):
            status = "interrupted"
            raise
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}"
            raise RunError(error) from exc
        finally:
            operative = config.operative_config(paths, header)
            rundir.write_atomic(path / rundir.OPERATIVE_CONFIG, operative)
            metrics = _final_metrics(trainer)
            best = _best_checkpoint(trainer)
            record.finish(status, error, metrics=metrics, best_checkpoint=best)
    return RunResult(path, status, metrics, best)


def _apply_seed(inherited: int | None) -> int:
    seed = inherited if inherited is not None else config.query(_EXPERIMENT, "seed", default=0)
    if seed is None:
        seed = random.randint(0, 2**31 - 1)
    if not isinstance(seed, int):
        raise ConfigError(f"Experiment.seed must be an int or None, got {seed!r}.")
    with gin.unlock_config():
        gin.bind_parameter(f"{_EXPERIMENT}.seed", seed)  # the operative config records the concrete seed
    seed_everything(seed, workers=True, verbose=False)
    return seed


def _build(factory):
    """Builds with gin, turning gin's call errors into :class:`ConfigError`."""
    try:
        return factory()
    except ConfigError:
        raise
    except Exception as exc:
        error = config.build_error(exc)
        if error is None:
            raise
        raise error from exc


def _create_run_dir(root_dir: str | os.PathLike, run_dir: str | os.PathLike | None, name: str) -> Path:
    try:
        if run_dir is None:
            return rundir.create_run_dir(root_dir, name)
        path = Path(run_dir)
        path.mkdir(parents=True, exist_ok=True)
        if any(path.iterdir()):
            raise ConfigError(f"run directory '{path}' is not empty; ginlight never reuses one.",
                              hint="Pass a new --run_dir, or leave it out for a fresh one under --root_dir.")
        return path
    except OSError as exc:
        raise ConfigError(f"cannot create the run directory: {exc}.",
                          hint="Check that --root_dir is writable and the disk has space.") from None


def _build_trainer(experiment: Experiment, run_dir: Path, stage: str) -> Trainer:
    trainer = experiment.trainer
    if trainer is None:
        trainer = _build(lambda: config.call_configurable(
            "lightning.Trainer",
            default_root_dir=str(run_dir),
            deterministic="warn",
            logger=_default_logger(run_dir),
            callbacks=[config.call_configurable(
                "lightning.pytorch.callbacks.ModelCheckpoint",
                dirpath=str(run_dir / rundir.CHECKPOINTS), save_last=True,
            )],
        ))
    for callback in trainer.checkpoint_callbacks:
        if isinstance(callback, ModelCheckpoint) and callback.dirpath is None:
            callback.dirpath = str(run_dir / rundir.CHECKPOINTS)
    if experiment.stop_on_nonfinite_loss:
        trainer.callbacks.append(StopOnNonFiniteLoss())
    if stage == "predict" and not any(isinstance(c, PredictionWriter) for c in trainer.callbacks):
        trainer.callbacks.append(PredictionWriter(output_dir=str(run_dir / "predictions")))
    return trainer


def _default_logger(run_dir: Path) -> Any:
    if config.is_bound("lightning.Trainer", "logger"):
        return None  # call_configurable keeps the user's
    return config.call_configurable(
        "lightning.pytorch.loggers.TensorBoardLogger", save_dir=str(run_dir), name="tensorboard", version="",
    )


def _log_config(trainer: Trainer, operative: str) -> None:
    """Puts the operative config and the flattened bindings into TensorBoard."""
    for logger in trainer.loggers:
        if isinstance(logger, TensorBoardLogger):
            logger.experiment.add_text("operative_config", "    " + operative.replace("\n", "\n    "))
            logger.log_hyperparams(_flat_bindings())


def _flat_bindings() -> dict[str, Any]:
    flat = {}
    for (scope, selector), params in gin.config._OPERATIVE_CONFIG.items():
        name = gin.config._REGISTRY[selector].name
        prefix = f"{scope}/{name}" if scope else name
        for param, value in params.items():
            flat[f"{prefix}.{param}"] = value if isinstance(value, (int, float, str, bool)) else repr(value)
    return flat


def _run_stage(experiment: Experiment, trainer: Trainer, stage: str, ckpt_path: str | None) -> None:
    kwargs = dict(experiment.stage_kwargs.get(stage, {}))
    if ckpt_path is not None:
        kwargs["ckpt_path"] = ckpt_path
    if experiment.datamodule is not None:
        kwargs["datamodule"] = experiment.datamodule
    getattr(trainer, stage)(experiment.system, **kwargs)


def _final_metrics(trainer: Trainer) -> dict[str, float]:
    return {key: float(value) for key, value in sorted(trainer.callback_metrics.items()) if value.numel() == 1}


def _best_checkpoint(trainer: Trainer) -> str | None:
    callback = trainer.checkpoint_callback
    if isinstance(callback, ModelCheckpoint) and callback.monitor and callback.best_model_path:
        return callback.best_model_path
    return None


@contextlib.contextmanager
def _environment(values: Mapping[str, str]):
    saved = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
