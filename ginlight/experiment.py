"""Builds and runs one experiment: seed, system, data, run directory, trainer.

The order matters. The seed is applied before gin builds anything, because model
weights depend on it. The system and data are built before the run directory
exists, so that a configuration error leaves no directory behind. The trainer is
built last, pointed at the run directory.
"""

from __future__ import annotations

import contextlib
import functools
import os
import random
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Literal, Mapping, Sequence

import gin
import torch
from lightning import LightningDataModule, LightningModule, Trainer, seed_everything
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.loggers import TensorBoardLogger
from lightning.pytorch.utilities import rank_zero_info, rank_zero_warn

from ginlight import checkpoint, distributed, internals, pruning, runcontext, rundir, slurm, trackers
from ginlight.gin import check, failures, lookup, operative, parsing, project, reading, registry, source
from ginlight.gin.parsed import ParsedConfig
from ginlight.gin import trust as trust_policy
from ginlight import data, models  # noqa: F401  their configurables register as imported, before a config names them
from ginlight.callbacks import LastCheckpoint, OperativeConfigWriter
from ginlight.errors import ConfigError, RunError
from ginlight.config_carrier import GinConfigCarrier
from ginlight.dry_run import check_system, trains_on_cpu
from ginlight.runcontext import RunContext
from ginlight.rundir import Status
from ginlight.stages import STAGES
from ginlight.system import ADAPTER_TYPES, System
from ginlight.trainer import (DETERMINISTIC, build_trainer, gin_calls, sigint_finishes_the_step, spawns_ranks,
                              trainer_defaults)

__all__ = ["Experiment", "RunResult", "train", "resume", "build_experiment", "load_system", "register_all",
           "recorded_threads", "check_config", "config_problems", "gin_roots"]

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
        debug: a debug run, as the presets in ``configs/debug/`` make: its run
            directory goes beside the root instead of under it (``runs-debug/``
            for ``runs/``), so that ``ginlight-runs runs`` lists experiments only.
        dry_run: pass one batch through a :class:`ginlight.System` before anything
            is written (:mod:`ginlight.dry_run`), where the run trains on the CPU; a
            run on an accelerator skips it (docs/performance.md says why).
    """

    def __init__(
        self,
        system: LightningModule = gin.REQUIRED,
        trainer: Trainer | None = None,
        datamodule: LightningDataModule | None = None,
        seed: int | None = 0,
        stage_kwargs: Mapping[str, Mapping[str, Any]] | None = None,
        debug: bool = False,
        dry_run: bool = True,
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
        self.debug = debug
        self.dry_run = dry_run


@dataclass
class RunResult:
    """What :func:`train` returns.

    ``recorded`` is False in the other ranks of a multi-process run: they share rank
    0's run directory and leave its records to rank 0.
    """

    run_dir: Path
    status: Status
    metrics: dict[str, float] = field(default_factory=dict)
    best_checkpoint: str | None = None
    recorded: bool = True


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
    tags: Sequence[str] = (),
    notes: str | None = None,
    trust: Sequence[str] | Literal[True] = (),
) -> RunResult:
    """Runs ``stage`` of the experiment configured by ``gin_files`` then ``bindings``.

    With ``ckpt_path``, the config stored in that checkpoint comes first (when it
    has one) and ``gin_files`` and ``bindings`` apply on top, so a ginlight
    checkpoint needs no gin file. That config may come from anyone: it is refused
    with a :class:`ConfigError` when it names code other than ginlight's, the
    stack's (:mod:`ginlight.gin.trust`), ``projects``' and the modules in ``trust``
    (``trust=["my_lab"]``); ``trust=True`` runs it as it is, for a rerun of a
    recorded run (:func:`ginlight.reproduce.reproduce`). Creates a run directory under
    ``root_dir/<name>/`` (``name`` defaults to the first gin file's stem, or the
    checkpoint's run) unless ``run_dir`` is given. Raises :class:`ConfigError` for
    mistakes found before the run starts and :class:`RunError` when it fails;
    either way nothing is left half-recorded. A run stopped by SIGINT or SIGTERM
    saves a checkpoint and returns with status ``interrupted``. ``tags`` and
    ``notes`` are recorded in ``run.json`` and as text in TensorBoard.
    """
    if stage not in STAGES:
        raise ConfigError(f"unknown stage '{stage}'; the stages are {', '.join(STAGES)}.")
    if ckpt_path is not None and not Path(ckpt_path).is_file():
        raise ConfigError(f"checkpoint '{ckpt_path}' not found.", hint="Check the --ckpt_path.")
    with contextlib.ExitStack() as stack:
        if ckpt_path is not None and (not gin_files or checkpoint.has_stored_config(ckpt_path)):
            stored = stack.enter_context(checkpoint.stored_config_file(ckpt_path))
            if trust is not True:
                trust_policy.check(stored, trust, chosen=project.module_names(projects),
                                   origin=checkpoint.stored_config_origin(ckpt_path), spell=_trust_arguments)
            gin_files = [stored, *gin_files]
        return _execute(_Request(gin_files, bindings, search_paths, projects, stage, ckpt_path, root_dir, run_dir,
                                 name, argv, runcontext.inherited(), tags=tags, notes=notes))


def _trust_arguments(names: list[str]) -> str:
    """The arguments of ``ginlight-train`` and :func:`train` that trust ``names``."""
    return f"{' '.join(f'--trust={name}' for name in names)} to ginlight-train (trust={names!r} to ginlight.train)"


def resume(run_dir: str | os.PathLike, *, argv: Sequence[str] | None = None) -> RunResult:
    """Continues the training run in ``run_dir``, in that directory, with its operative config.

    Training restarts from ``checkpoints/last.ckpt`` (written at each epoch end
    and when a run is interrupted), or from the start when the run was stopped
    before its first checkpoint; ``run.json`` lists each resumption. A completed
    run is left as it is. Raises :class:`ConfigError` when ``run_dir`` is not a
    training run.
    """
    return _resume(run_dir, argv, runcontext.inherited())


def _resume(run_dir: str | os.PathLike, argv: Sequence[str] | None, inherited: runcontext.Inherited) -> RunResult:
    """:func:`resume`, in a process that has read what it inherited (:func:`ginlight.runcontext.inherited`)."""
    run = rundir.RunDir.open(run_dir, needs=(rundir.RECORD, rundir.OPERATIVE_CONFIG))
    path = run.path
    done = _completed(run)  # left as it is, unheld: nothing runs a completed run again
    if done is not None:
        return done
    # One writer per run: a second process resuming it (or a requeued job beside a manual --resume) stops here.
    # The ranks that share rank 0's run write nothing and hold nothing.
    writer = inherited.run_dir is None and not distributed.launched_rank()
    with run.hold() if writer else contextlib.nullcontext():
        done = _completed(run)  # by a process that held it a moment ago
        if done is not None:
            return done
        last = run.last_checkpoint
        if last.is_file():
            checkpoint.read_checkpoint(last)  # a file cut short by a kill fails here, with what to do
        _remove_checkpoints_after(last)
        with recorded_threads(run.read_record(), f"Resuming {path}"):
            return _execute(_Request([run.operative_config.resolve()], (), (), (), "fit",
                                     str(last) if last.is_file() else None, path.parent, path, None, argv, inherited,
                                     resuming=True))


@contextlib.contextmanager
def recorded_threads(record: rundir.RunRecord, what: str) -> Iterator[None]:
    """torch's intra-op thread count set to the one ``record`` holds while the block runs,
    and as it was afterwards; a warning where it cannot be.

    On the CPU a run's weights depend bit for bit on how many threads split each
    operation, so ``--resume`` and ``--reproduce`` run with the run's count whatever
    ``OMP_NUM_THREADS`` says now. ``what`` starts the message, "Resuming RUN".
    """
    recorded, saved = record.torch_threads, torch.get_num_threads()
    if recorded is None:
        rank_zero_warn(f"{what}: its {rundir.RECORD} records no thread count (written before ginlight recorded "
                       f"it), so it runs with this process's {saved} intra-op threads; on the CPU a count other than "
                       "the run's gives other weights. Set OMP_NUM_THREADS to the count the run had, if you know it.")
    elif recorded != saved:
        torch.set_num_threads(recorded)
        if torch.get_num_threads() == recorded:
            rank_zero_info(f"{what} with {recorded} intra-op threads, as it recorded (this process had {saved}).")
        else:
            rank_zero_warn(f"{what}: torch cannot run {recorded} intra-op threads as the run did "
                           f"(it runs {torch.get_num_threads()}); on the CPU its weights will differ.")
    try:
        yield
    finally:
        torch.set_num_threads(saved)


def _completed(run: rundir.RunDir) -> RunResult | None:
    """The outcome of ``run`` when it completed already, None when it is a training run to resume."""
    record = run.read_record()
    if record.stage != "fit":
        raise ConfigError(f"run '{run.path}' ran --stage={record.stage}; only training runs can be resumed.",
                          hint="Run the stage again instead.")
    if record.status != Status.COMPLETED:
        return None
    rank_zero_info(f"Run {run.path} already completed; there is nothing to resume.")
    return RunResult(run.path, Status.COMPLETED, record.metrics, record.best_checkpoint)


def _remove_checkpoints_after(last: Path) -> None:
    """Removes the checkpoints written after ``last`` (all of them when there is none yet), which the resumed run
    writes again as it replays the steps since: a ``ModelCheckpoint`` would otherwise find its file taken and
    write a ``-v1`` beside it."""
    since = last.stat().st_mtime_ns if last.is_file() else -1
    for path in last.parent.glob("*.ckpt"):
        if path.stat().st_mtime_ns > since:
            path.unlink()


@contextlib.contextmanager
def _torch_flags_restored():
    """torch's process-wide flags, as they were before the run, once it ends.

    Lightning's Trainer sets them as it is built (``deterministic``, ``benchmark``,
    ``CUBLAS_WORKSPACE_CONFIG``) and leaves them set; code that runs after a run in
    the same process (a notebook's next cell, the next test) must not inherit them.
    """
    saved = (torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled(),
             torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic)
    workspace = os.environ.get(_CUBLAS_WORKSPACE)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(saved[0], warn_only=saved[1])
        torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic = saved[2:]
        if workspace is None:
            os.environ.pop(_CUBLAS_WORKSPACE, None)
        else:
            os.environ[_CUBLAS_WORKSPACE] = workspace


_CUBLAS_WORKSPACE = "CUBLAS_WORKSPACE_CONFIG"  # set by Lightning for deterministic cuBLAS


@dataclass(frozen=True)
class _Request:
    """What :func:`train` or :func:`resume` asks of a run, once the config's files are known; see :func:`train`."""

    gin_files: Sequence[str | os.PathLike]
    bindings: Sequence[str]
    search_paths: Sequence[str | os.PathLike]
    projects: Sequence[str]
    stage: str
    ckpt_path: str | None
    root_dir: str | os.PathLike
    run_dir: str | os.PathLike | None
    name: str | None
    argv: Sequence[str] | None
    inherited: runcontext.Inherited  # what this process was started with (a rank of a run, a sweep's trial)
    resuming: bool = False
    tags: Sequence[str] = ()
    notes: str | None = None


@dataclass
class _Recording:
    """A run under way in the process that writes it: its trainer, and what records it."""

    trainer: Trainer
    feed: trackers.TrackerFeed
    writer: OperativeConfigWriter
    record: rundir.RunRecord


@_torch_flags_restored()
def _execute(request: _Request) -> RunResult:
    """:func:`train`, or :func:`resume`, once the config's files are known: read the config, agree across ranks,
    build, record, run, end."""
    parsed, run_name = _read_config(request)
    continued = _continued_job(request, parsed, run_name)
    if continued is not None:
        return _resume(continued, request.argv, request.inherited)
    root, seed, launched = _agree(request, parsed)
    experiment = _build_experiment(request, parsed, root, seed)
    if request.inherited.run_dir is not None or launched:  # not rank 0: it shares rank 0's directory
        run_dir = request.inherited.run_dir or Path(distributed.from_rank_zero(None))
        return _run_rank(request, parsed, experiment, RunContext(run_dir, root, seed, False, request.inherited.trial))
    path, hold = _run_directory(request, experiment, parsed, run_name)
    if launched == 0:
        distributed.from_rank_zero(str(path.resolve()))
    context = RunContext(path, root, seed, True, request.inherited.trial)
    with hold, rundir.console_to_file(rundir.RunDir(path).log):
        return _run_and_end(request, context, experiment, _record(request, parsed, context, experiment))


def _read_config(request: _Request) -> tuple[ParsedConfig, str]:
    """Parses the config; returns it, and the run's name."""
    if not request.gin_files and not request.bindings:
        raise ConfigError("nothing to run: no gin file and no bindings.",
                          hint="Pass --gin_file=your.gin (or --ckpt_path of a ginlight checkpoint).")
    parsed = parsing.load(request.gin_files, request.bindings, request.search_paths, request.projects)
    return parsed, request.name or (rundir.name_for(parsed.files[0]) if parsed.files else "run")


def _continued_job(request: _Request, parsed: ParsedConfig, run_name: str) -> Path | None:
    """The run an earlier attempt of this SLURM job started: a requeued job runs its script again, and each
    training run in it continues its own."""
    if request.stage != "fit" or request.resuming or slurm.job() is None:
        return None
    return slurm.run_to_continue((request.root_dir, _debug_root(request.root_dir)), request.run_dir, run_name,
                                 parsed.merged_input, request.ckpt_path)


def _agree(request: _Request, parsed: ParsedConfig) -> tuple[Path, int, int | None]:
    """What the ranks of a run agree on: the trackers' root, the seed, and this process's rank where a launcher
    started every rank (None otherwise); the config is checked by the process that starts the run."""
    inherited = request.inherited
    root = trackers.prepare(parsed, request.root_dir, Path(request.run_dir) if request.resuming else None)
    if not request.resuming and inherited.run_dir is None:  # a resumed config ran already; rank 0 checked
        for warning in check_config(parsed):
            print(f"warning: {warning}", file=sys.stderr)
    if inherited.run_dir is not None:  # a rank Lightning's launcher started: rank 0 chose
        return root, inherited.seed, None
    launched = distributed.launched_rank()  # torchrun and the like
    seed = _choose_seed()
    return root, seed if launched is None else distributed.from_rank_zero(seed), launched


def _build_experiment(request: _Request, parsed: ParsedConfig, root: Path, seed: int) -> Experiment:
    """The seeded :class:`Experiment`, its System tried on one batch by the process that starts the run."""
    _apply_seed(seed)
    with trackers.building(root):
        experiment = build_experiment(parsed)
    if isinstance(experiment.system, System) and request.inherited.run_dir is None and experiment.dry_run:
        if trains_on_cpu(experiment.trainer):
            _build(lambda: check_system(experiment.system, request.stage,
                                        uses_datamodule=experiment.datamodule is not None), parsed)
        else:
            rank_zero_info("The dry run is skipped: the run trains on an accelerator (docs/performance.md).")
    return experiment


def _run_rank(request: _Request, parsed: ParsedConfig, experiment: Experiment, context: RunContext) -> RunResult:
    """A rank other than 0: it runs the stage in rank 0's directory and records nothing."""
    trainer = _build(lambda: build_trainer(experiment.trainer, experiment.system, context, request.stage), parsed)
    _run_stage(experiment, trainer, request.stage, request.ckpt_path)
    return RunResult(context.run_dir, Status.COMPLETED, _final_metrics(trainer), recorded=False)


def _run_directory(request: _Request, experiment: Experiment, parsed: ParsedConfig,
                   run_name: str) -> tuple[Path, contextlib.AbstractContextManager]:
    """The run's directory and this process's hold on it: the one resumed (held by :func:`resume`), or a new one."""
    if request.resuming:
        return Path(request.run_dir), contextlib.nullcontext()
    root = _debug_root(request.root_dir) if experiment.debug else request.root_dir
    return _new_run_dir(root, request.run_dir, run_name, parsed.merged_input)


def _record(request: _Request, parsed: ParsedConfig, context: RunContext, experiment: Experiment) -> _Recording:
    """Builds the trainer and starts the run's records: trackers, operative config, ``run.json``. A new run
    directory is removed again when its trainer or a tracker cannot start."""
    try:
        trainer = _build(lambda: build_trainer(experiment.trainer, experiment.system, context, request.stage),
                         parsed)
        feed = trackers.connect(trainer, context, parsed, resuming=request.resuming)  # a store down fails here
    except ConfigError:
        if not request.resuming:
            shutil.rmtree(context.run_dir)
        raise
    writer = _record_config(experiment, trainer, context.run_dir, context.seed)
    writer.listeners.append(feed.on_stage_start)  # the loggers get the files the writer has just written
    if request.resuming:
        record = rundir.RunRecord.read(context.run_dir)
        record.resumed(request.ckpt_path, source.fingerprint(source.user_modules()))
    else:
        record = _start_record(request, context, trainer, writer)
    feed.started(record)  # each logger's run id, before training: a killed run is resumed to it
    if slurm.job() is not None:  # its job id lets a requeued job find this run again
        record.update(slurm=slurm.job())
    return _Recording(trainer, feed, writer, record)


def _start_record(request: _Request, context: RunContext, trainer: Trainer,
                  writer: OperativeConfigWriter) -> rundir.RunRecord:
    """A new run's ``run.json``: what ran, where, from which code; and its tags, also in TensorBoard."""
    record = rundir.RunRecord(context.run_dir)
    record.start(list(request.argv if request.argv is not None else sys.argv), context.seed, torch.get_num_threads())
    # A strategy may change the count as the stage starts (Lightning's DDP gives each rank its share of
    # the cores unless OMP_NUM_THREADS says otherwise): the record holds the count the run ran with.
    writer.listeners.append(functools.partial(_record_threads, record))
    run, ckpt_path = rundir.RunDir(context.run_dir), request.ckpt_path
    record.update(stage=request.stage, ckpt_path=ckpt_path and str(Path(ckpt_path).resolve()),
                  **source.snapshot(run.patch, run.sources, source.user_modules()), tags=list(request.tags),
                  notes=request.notes)
    _send_tags(trainer, request.tags, request.notes)
    return record


def _run_and_end(request: _Request, context: RunContext, experiment: Experiment,
                 recording: _Recording) -> RunResult:
    """Runs the stage, then records how it ended, whatever ended it."""
    trainer = recording.trainer
    status, error = Status.FAILED, None
    try:
        with runcontext.exported(context):  # for the ranks Lightning's launcher starts
            _run_stage(experiment, trainer, request.stage, request.ckpt_path)
        status = Status.INTERRUPTED if trainer.interrupted else _stopped_by_callback(trainer) or Status.COMPLETED
    except (KeyboardInterrupt, SystemExit):
        # Lightning turns SIGINT and SIGTERM into these once it has saved the
        # interrupt checkpoint; anything else stopping the run is passed on.
        status = Status.INTERRUPTED
        if not trainer.interrupted:
            raise
    except RunError as exc:
        error = str(exc)
        raise
    except Exception as exc:
        error = f"{type(exc).__name__}: {exc}"
        raise RunError(error) from exc
    finally:
        metrics, best = _end(experiment, recording, status, error)
    return RunResult(context.run_dir, status, metrics, best)


def _end(experiment: Experiment, recording: _Recording, status: Status,
         error: str | None) -> tuple[dict[str, float], str | None]:
    """Records how the run ended, in its files and its trackers; returns its final metrics and best checkpoint."""
    trainer = recording.trainer
    recording.writer.write()
    metrics, best = _final_metrics(trainer), _best_checkpoint(trainer)
    recording.record.finish(status, error, metrics=metrics, best_checkpoint=best,
                            weights_sha256=checkpoint.weights_hash(experiment.system.state_dict()),
                            resume_point=_resume_point(trainer))
    recording.feed.finish(recording.record)
    return metrics, best


def gin_roots() -> dict[str, tuple[str, ...]]:
    """What ginlight calls through gin whatever a config references, each with the parameters it passes: the
    Experiment, what building the trainer calls, the adapters a System builds, and a sweep's pruners. The check of a config
    (:mod:`ginlight.gin.check`) follows references from these."""
    return {_EXPERIMENT: (), **gin_calls(), **{internals.registered_name(cls): () for cls in ADAPTER_TYPES.values()},
            **{f"optuna.pruners.{name}": () for name in pruning.PRUNERS.values()}}


def config_problems(parsed: ParsedConfig) -> list[check.Problem]:
    """Every problem of ``parsed``, the config gin holds (:func:`ginlight.gin.check.problems`), found before anything
    is built, with the loggers' locations ginlight binds (:func:`ginlight.trackers.bind_locations`) counted as bound."""
    trackers.bind_locations()
    return check.problems(parsed, gin_roots())


def check_config(parsed: ParsedConfig, strict: bool = False) -> list[check.Problem]:
    """Raises :class:`ConfigError` listing every error of :func:`config_problems`; returns the warnings."""
    return check.raise_errors(config_problems(parsed), strict)



def _record_threads(record: rundir.RunRecord, trainer: Trainer, system: LightningModule) -> None:
    """Records the intra-op thread count the stage runs with, in the process that keeps the record."""
    if trainer.is_global_zero:
        record.update(torch_threads=torch.get_num_threads())


def implicit_defaults() -> dict[str, dict[str, str]]:
    """What ginlight builds whatever a config says, with what it passes where nothing is bound, in words
    (for ``--print_config``: :func:`ginlight.gin.printing.describe`)."""
    return {_EXPERIMENT: {}, "lightning.Trainer": trainer_defaults()}


def _debug_root(root_dir: str | os.PathLike) -> Path:
    """Where debug runs go instead of ``root_dir``: beside it, ``runs`` -> ``runs-debug``."""
    root = Path(root_dir).resolve()
    return root.with_name(f"{root.name}-debug")


def _send_tags(trainer: Trainer, tags: Sequence[str], notes: str | None) -> None:
    """The run's tags and notes as text in TensorBoard, beside its operative config."""
    for logger in trainer.loggers:
        if isinstance(logger, TensorBoardLogger):
            if tags:
                logger.experiment.add_text("tags", ", ".join(tags))
            if notes:
                logger.experiment.add_text("notes", notes)


def _new_run_dir(root_dir: str | os.PathLike, run_dir: str | os.PathLike | None, name: str,
                 merged_input: str) -> tuple[Path, rundir.Hold]:
    """A fresh run directory holding ``config.gin``, the ``merged_input`` as composed, and this process's hold on it."""
    path, hold = _create_run_dir(root_dir, run_dir, name)
    try:
        rundir.write_atomic(path / rundir.CONFIG, merged_input)
    except OSError as exc:  # a full disk, a quota: fail now rather than at the first checkpoint
        hold.release()
        shutil.rmtree(path, ignore_errors=True)
        raise ConfigError(f"cannot write to the run directory {path}: {exc}.",
                          hint="Free some space, or pass a --root_dir on another disk.") from None
    return path, hold


def _record_config(experiment: Experiment, trainer: Trainer, path: Path, seed: int) -> OperativeConfigWriter:
    """Writes the operative config now and gives the trainer what keeps it recorded and carried."""
    if isinstance(experiment.system, System) and experiment.system.optimizer is not None:
        # Record the optimizer and scheduler in gin's operative config now: under
        # ddp_spawn they are only ever built in other processes.
        experiment.system.configure_optimizers()
    header = (f"Operative config of {path}, seed {seed}.\n"
              f"Rerun with: ginlight-train --gin_file={path / rundir.OPERATIVE_CONFIG}")
    writer = OperativeConfigWriter(path / rundir.OPERATIVE_CONFIG,
                                   functools.partial(operative.operative_config, header))
    writer.write()
    carrier = GinConfigCarrier(operative.import_roots())
    for loader in getattr(experiment.system, "dataloaders", {}).values():
        carrier.wrap_workers(loader)
    # Each callback costs Lightning a dispatch at each of about six hooks a step: the carrier joins only
    # where ranks start without this process's memory (ddp_spawn).
    trainer.callbacks += [writer, carrier] if spawns_ranks(trainer) else [writer]
    return writer


def _choose_seed() -> int:
    """The bound ``Experiment.seed``, or a fresh one when it is None."""
    seed = lookup.query(_EXPERIMENT, "seed", default=0)
    if seed is None:
        seed = random.randint(0, 2**31 - 1)
    if not isinstance(seed, int):
        raise ConfigError(f"Experiment.seed must be an int or None, got {seed!r}.")
    return seed


def _apply_seed(seed: int) -> None:
    with gin.unlock_config():
        gin.bind_parameter(f"{_EXPERIMENT}.seed", seed)  # the operative config records the concrete seed
    seed_everything(seed, workers=True, verbose=False)


def build_experiment(parsed: ParsedConfig) -> Experiment:
    """The :class:`Experiment` that ``parsed``, the config gin holds, describes; gin's call errors become
    :class:`ConfigError`."""
    return _build(lambda: gin.get_configurable(_EXPERIMENT)(), parsed)


def load_system(path: str | os.PathLike, *, trust: Sequence[str] = ()) -> LightningModule:
    """Rebuilds the System saved in a checkpoint, with its weights, from the checkpoint alone.

    ``path`` is a ``.ckpt`` file written by a ginlight run, or a run directory
    (its best checkpoint when ``ModelCheckpoint.monitor`` was bound, else
    ``checkpoints/last.ckpt``). The config stored in the checkpoint may come from
    anyone: a name in it other than ginlight's and the stack's components
    (:mod:`ginlight.gin.trust`) is refused with a :class:`ConfigError` before anything
    is imported, unless its module is in ``trust`` (``trust=["my_lab"]``). Only
    the System is built: its model, criterion, metrics, adapters and inferer,
    with no datasets, loaders, datamodule, trainer or loggers; the caller's gin
    config, ``sys.path`` and torch's random state are left as they were. Like
    Lightning's ``load_from_checkpoint``, the System is returned on the CPU in
    training mode: call ``.eval()`` for inference.
    """
    checkpoint_path = checkpoint.checkpoint_of(path)
    stored = checkpoint.read_checkpoint(checkpoint_path)
    with (parsing.set_aside(), torch.random.fork_rng(devices=[]),
          checkpoint.stored_config_file(checkpoint_path, stored) as gin_file):
        trust_policy.check(gin_file, trust, origin=checkpoint.stored_config_origin(checkpoint_path),
                           spell=lambda names: f"ginlight.load_system(path, trust={names!r})")
        unbuilt = [f"{_EXPERIMENT}.datamodule", f"{_EXPERIMENT}.trainer", "ginlight.System.dataloaders"]
        gin_file.write_text(reading.without(gin_file, unbuilt))  # gin need not parse what is never built
        parsed = parsing.parse([gin_file])
        with gin.unlock_config():  # the System alone: nothing that reads data or writes files
            for parameter in unbuilt:
                gin.bind_parameter(parameter, None)
        system = build_experiment(parsed).system
    system.on_load_checkpoint(stored)
    system.load_state_dict(stored["state_dict"])
    return system


def register_all() -> None:
    """Registers every configurable with gin, for code that calls gin itself: ginlight's own, whose
    modules this one imports, and the stack's (:func:`ginlight.gin.registry.register_all`)."""
    registry.register_all()


def _build(factory, parsed: ParsedConfig):
    """Builds with gin, turning gin's call errors into :class:`ConfigError`, located in ``parsed``."""
    try:
        return factory()
    except ConfigError as exc:
        raise failures.located(exc, parsed).with_traceback(exc.__traceback__) from None
    except Exception as exc:
        error = failures.build_error(exc, parsed)
        if error is None:
            raise
        raise error from exc


def _create_run_dir(root_dir: str | os.PathLike, run_dir: str | os.PathLike | None,
                    name: str) -> tuple[Path, rundir.Hold]:
    """The new run's directory, held by this process (:meth:`ginlight.rundir.RunDir.hold`)."""
    try:
        if run_dir is None:
            path = rundir.create_run_dir(root_dir, name)
            return path, rundir.RunDir(path).hold()
        path = Path(run_dir)
        path.mkdir(parents=True, exist_ok=True)
        run = rundir.RunDir(path)
        if not run.lock.exists():  # a folder used for something else gets no lock file
            _refuse_reuse(path)
        hold = run.hold()  # a run using this --run_dir now: refused, naming its process
        try:
            _refuse_reuse(path)  # a run that used it before
        except ConfigError:
            hold.release()
            raise
        return path, hold
    except OSError as exc:
        raise ConfigError(f"cannot create the run directory: {exc}.",
                          hint="Check that --root_dir is writable and the disk has space.") from None


def _refuse_reuse(path: Path) -> None:
    if any(entry.name != rundir.LOCK for entry in path.iterdir()):
        raise ConfigError(f"run directory '{path}' is not empty; ginlight never reuses one.",
                          hint="Pass a new --run_dir, or leave it out for a fresh one under --root_dir.")


def _run_stage(experiment: Experiment, trainer: Trainer, stage: str, ckpt_path: str | None) -> None:
    kwargs = dict(experiment.stage_kwargs.get(stage, {}))
    if ckpt_path is not None:
        kwargs["ckpt_path"] = ckpt_path
        # Tensors and plain data only: a checkpoint cannot run code when it loads.
        kwargs.setdefault("weights_only", True)
    if experiment.datamodule is not None:
        kwargs["datamodule"] = experiment.datamodule
    # Under deterministic algorithms PyTorch fills each new tensor with NaN, in case code reads it before
    # writing it. Its documentation says a program that never does stays deterministic without the fill,
    # which cost 5% of a small CNN's step on the CPU (docs/performance.md). So ginlight's own "warn" trainer
    # goes without; `Trainer.deterministic = True` keeps PyTorch's fill.
    fill = experiment.trainer is not None or lookup.query("lightning.Trainer", "deterministic",
                                                          default=DETERMINISTIC) != DETERMINISTIC
    with _fill_uninitialized_memory(fill), sigint_finishes_the_step(trainer):
        getattr(trainer, stage)(experiment.system, **kwargs)


@contextlib.contextmanager
def _fill_uninitialized_memory(fill: bool):
    """torch's process-wide ``fill_uninitialized_memory`` while the block runs, as it was afterwards."""
    saved = torch.utils.deterministic.fill_uninitialized_memory
    torch.utils.deterministic.fill_uninitialized_memory = saved and fill
    try:
        yield
    finally:
        torch.utils.deterministic.fill_uninitialized_memory = saved


def _stopped_by_callback(trainer: Trainer) -> str | None:
    """The status a callback that stopped the run gives it (``pruned``), if one did."""
    return next((c.final_status for c in trainer.callbacks if getattr(c, "final_status", None)), None)


def _final_metrics(trainer: Trainer) -> dict[str, float]:
    return {key: float(value) for key, value in sorted(trainer.callback_metrics.items()) if value.numel() == 1}


def _resume_point(trainer: Trainer) -> str | None:
    """Where ``last.ckpt`` leaves a run that a signal or an exception stopped (``LastCheckpoint.resume_point``)."""
    return next((c.resume_point for c in trainer.callbacks if isinstance(c, LastCheckpoint)), None)


def _best_checkpoint(trainer: Trainer) -> str | None:
    callback = trainer.checkpoint_callback
    if isinstance(callback, ModelCheckpoint) and callback.monitor and callback.best_model_path:
        return callback.best_model_path
    return None
