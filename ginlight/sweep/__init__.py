"""Sweeps: many ginlight runs from one config, chosen by Optuna, resumable and spread over workers.

A sweep is an Optuna study in RDB storage: an SQLite file in the sweep directory,
or a server such as PostgreSQL that workers on several machines share. Grid,
random and TPE search are Optuna's GridSampler, RandomSampler and TPESampler, so
every search method runs through the same loop. Each trial is a full ginlight run
in its own process (gin's global state never leaks between trials), in
``<sweep directory>/trial-NNN/``, whose ``run.json`` records how it ended.
On this machine, trials are forked from a warm worker that has imported the stack
once (:mod:`~ginlight.sweep.warm`).

With a pruner, each trial's process reports its objective to its Optuna trial at
every validation and stops when pruned (:mod:`ginlight.pruning`).

The modules, each importing only those before it:

- :mod:`~ginlight.sweep.space`: the search space, read from sweep lines in gin syntax;
- :mod:`~ginlight.sweep.study`: the Optuna study and its storage, the sweep directory and ``sweep.json``;
- :mod:`~ginlight.sweep.reports`: the results, ``sweep.csv``, ``summary.md``, ``best_config.gin``, the plot;
- :mod:`~ginlight.sweep.trial`: a trial's run, and how it ended, read from its ``run.json`` (as a job,
  ``ginlight.cli.trial``);
- :mod:`~ginlight.sweep.warm`: the warm worker that forks each trial's process on this machine (the local launcher);
- :mod:`~ginlight.sweep.reruns`: which trials run again, and which must not run;
- :mod:`~ginlight.sweep.lost`: heartbeats, and the trials of dead workers found;
- :mod:`~ginlight.sweep.launch`: each trial's process started (here, or as a SLURM job), waited for, stopped;
- :mod:`~ginlight.sweep.objective`: a trial as Optuna's objective, and what the study records of it;
- :mod:`~ginlight.sweep.progress`: a line per finished trial, and the results rewritten;
- :mod:`~ginlight.sweep.workers`: the worker threads that run the trials until the sweep is done;
- this package: :func:`run_sweep`, which checks a sweep's definition, opens it and runs it.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Sequence

import gin
import optuna

from ginlight import pruning, rundir
from ginlight.gin import parsing, reading
from ginlight import experiment  # its check; importing it registers ginlight's own configurables, which the config may name
from ginlight.errors import ConfigError
from ginlight.sweep.launch import Processes, Start, commands
from ginlight.sweep.lost import LostTrials
from ginlight.sweep.objective import Objective
from ginlight.sweep.progress import Progress
from ginlight.sweep.reports import FINISHED, SweepResult, TrialRow, trial_rows
from ginlight.sweep.reruns import Reruns
from ginlight.sweep.space import Parameter, load_search_space, parse_parameter
from ginlight.sweep.study import (DATABASE, DIRECTIONS, LOG, SAMPLERS, TRIAL_LOGS, open_study, storage_label,
                                  sweep_directory, with_installed_driver, write_record)
from ginlight.sweep.trial import TrialSpec
from ginlight.sweep.warm import WarmStart
from ginlight.sweep.workers import Workers

if TYPE_CHECKING:
    from ginlight.slurm import SlurmLauncher

__all__ = ["Parameter", "SweepResult", "TrialRow", "parse_parameter", "load_search_space", "run_sweep", "SAMPLERS"]

_DEFAULT_OBJECTIVE = ("val/loss", "min")


def run_sweep(
    gin_files: Sequence[str | os.PathLike],
    bindings: Sequence[str] = (),
    space: Sequence[Parameter] = (),
    *,
    mode: str = "grid",
    trials: int | None = None,
    objective: str | None = None,
    direction: str | None = None,
    workers: int = 1,
    storage: str | None = None,
    study: str | None = None,
    search_paths: Sequence[str | os.PathLike] = (".",),
    projects: Sequence[str] = (),
    root_dir: str | os.PathLike = "runs",
    name: str | None = None,
    pruner: str = "none",
    retry_failed: bool = False,
    launcher: SlurmLauncher | None = None,
    argv: Sequence[str] | None = None,
) -> SweepResult:
    """Runs (or continues) the sweep of ``space`` over the config of ``gin_files`` and ``bindings``.

    The sweep directory is ``root_dir/<name>/sweep-<timestamp>/``. The study is
    named ``study``, by default ``<name>-<hash of the sweep's definition>``, so the
    same command finds its study and directory again and continues where it
    stopped. Returns when every trial of the sweep has finished, on this worker or
    others sharing ``storage``. ``pruner`` (a :data:`ginlight.pruning.PRUNERS`
    name) stops trials whose objective falls behind at a validation;
    ``retry_failed`` reruns the failed trials of a continued sweep, each under a new
    number. ``launcher`` (a :class:`ginlight.slurm.SlurmLauncher`) runs each trial as
    a job elsewhere instead of as a process here, ``workers`` at a time. Raises
    :class:`ConfigError` for a wrong definition, before any trial runs;
    ``KeyboardInterrupt`` after stopping the running trials, which rerun when the
    sweep continues.
    """
    objective, direction, budget = _check_arguments(space, mode, trials, objective, direction, workers)
    name = name or (Path(gin_files[0]).stem if gin_files else "sweep")
    _check_config(gin_files, bindings, space, search_paths, projects)
    pruner_spec = pruning.pruner_spec(pruner)  # its settings are the config's bindings of the Optuna pruner
    definition = {"config": _digest(gin_files, bindings, search_paths), "projects": list(projects),
                  "space": [str(p) for p in space], "mode": mode, "trials": budget, "objective": objective,
                  "direction": direction, "pruner": pruner}
    study_name = study or f"{name}-{hashlib.sha1(json.dumps(definition, sort_keys=True).encode()).hexdigest()[:8]}"
    opened = _open(root_dir, name, study_name, storage, mode, space, direction, definition, workers, pruner_spec, argv)
    report_to = {"storage": with_installed_driver(opened.url), "study": study_name, "objective": objective,
                 "pruner": pruner_spec}
    processes = Processes(_start(launcher, gin_files, search_paths, projects),
                          _trials(gin_files, bindings, search_paths, projects, root_dir), opened.sweep_dir, workers,
                          report_to)

    def result_of(rows: list[TrialRow]) -> SweepResult:
        return SweepResult(opened.sweep_dir, study_name, budget, objective, direction, rows)

    progress = Progress(result_of, space, mode, pruner)
    runner, reruns = _workers(opened, space, budget, objective, workers, processes, progress)
    with rundir.console_to_file(opened.sweep_dir / LOG):
        _run(opened, runner, progress, f"{mode} search, {budget} trials", pruner,
             reruns.retry_failed if retry_failed else None)
    return result_of(trial_rows(opened.study, space))


@dataclass
class _Opened:
    """An opened sweep: its directory, its study and the study's storage, its URL and its label (no password)."""

    sweep_dir: Path
    study: optuna.Study
    storage: optuna.storages.RDBStorage
    url: str
    label: str | None


def _open(root_dir: str | os.PathLike, name: str, study_name: str, storage: str | None, mode: str,
          space: Sequence[Parameter], direction: str, definition: dict[str, Any], workers: int,
          pruner_spec: dict[str, Any], argv: Sequence[str] | None) -> _Opened:
    """The sweep's directory, found again or created with its ``sweep.json``, and its study, created or loaded;
    a directory created for a study that cannot be opened is removed again."""
    label = storage_label(storage) if storage else None
    sweep_dir, created = sweep_directory(root_dir, name, study_name, label)
    try:
        url = storage or f"sqlite:///{(sweep_dir / DATABASE).resolve()}"
        study, storage_of_study = open_study(url, study_name, mode, space, direction, definition, workers,
                                             pruning.make_pruner(pruner_spec))
        if created:
            write_record(sweep_dir, study_name, label, definition, argv)
    except BaseException:
        if created:
            shutil.rmtree(sweep_dir)
        raise
    (sweep_dir / TRIAL_LOGS).mkdir(exist_ok=True)
    return _Opened(sweep_dir, study, storage_of_study, url, label)


def _trials(gin_files: Sequence[str | os.PathLike], bindings: Sequence[str], search_paths: Sequence[str | os.PathLike],
            projects: Sequence[str], root_dir: str | os.PathLike) -> Callable[[list[str], Path, Path], TrialSpec]:
    """What makes a trial's :class:`TrialSpec` from its swept bindings, its run directory and its outcome file."""
    def trial_of(swept: list[str], run_dir: Path, outcome: Path) -> TrialSpec:
        return TrialSpec(tuple(map(str, gin_files)), (*bindings, *swept), tuple(map(str, search_paths)),
                         tuple(projects), str(root_dir), run_dir, outcome)

    return trial_of


def _start(launcher: SlurmLauncher | None, gin_files: Sequence[str | os.PathLike],
           search_paths: Sequence[str | os.PathLike], projects: Sequence[str]) -> Start:
    """The launcher of the trials' processes: here, forks of a warm worker that preloads the config's own modules
    too; with ``launcher``, its jobs."""
    if launcher is None:
        return WarmStart(parsing.own_modules(gin_files, search_paths, projects))
    return commands(launcher.start)


def _workers(opened: _Opened, space: Sequence[Parameter], budget: int, objective: str, count: int,
             processes: Processes, progress: Progress) -> tuple[Workers, Reruns]:
    """The sweep's ``count`` worker threads, and the reruns they queue."""
    reruns = Reruns(opened.study, space, budget)
    lost = LostTrials(opened.study, opened.storage, reruns)
    objective_of_trial = Objective(space, objective, opened.sweep_dir, processes, lost, reruns)
    return Workers(opened.study, space, budget, count, objective_of_trial, lost, processes, progress), reruns


def _run(opened: _Opened, workers: Workers, progress: Progress, search: str, pruner: str,
         retry_failed: Callable[[], int] | None) -> None:
    """Says what the sweep is and how far it got, queues the failed trials' reruns (``retry_failed``, which
    says how many), runs the workers, and writes the results however they stop."""
    finished = sum(row.status in FINISHED for row in workers.census().rows)
    progress.say(f"sweep directory {opened.sweep_dir}\nstudy {opened.study.study_name} in "
                 f"{opened.label or opened.url}: {search}, {finished} finished already, {workers.count} worker(s) "
                 f"here{'' if pruner == 'none' else f', pruner {pruner}'}.")
    if retry_failed:
        progress.say(f"rerunning {retry_failed()} failed trial(s), each under a new number.")
    try:
        workers.run()
    finally:
        progress.write(trial_rows(opened.study, workers.space))


def _check_arguments(space: Sequence[Parameter], mode: str, trials: int | None, objective: str | None,
                     direction: str | None, workers: int) -> tuple[str, str, int]:
    """The objective, direction and number of trials, or a :class:`ConfigError`."""
    if mode not in SAMPLERS:
        raise ConfigError(f"unknown mode '{mode}'; the modes are {', '.join(SAMPLERS)}.")
    if not space:
        raise ConfigError("nothing to sweep.", hint="Pass --sweep='configurable.parameter=[value, ...]'.")
    if objective is None and direction is None:
        objective, direction = _DEFAULT_OBJECTIVE
    elif direction is None:
        raise ConfigError(f"is a higher or a lower {objective} better?", hint="Pass --direction=max or --direction=min.")
    elif direction not in DIRECTIONS:
        raise ConfigError(f"unknown direction '{direction}'.", hint="Pass --direction=max or --direction=min.")
    objective = objective or _DEFAULT_OBJECTIVE[0]
    if workers < 1:
        raise ConfigError(f"--workers={workers}: a sweep needs at least one worker.")
    if mode == "grid":
        ranges = [p for p in space if p.kind != "choice"]
        if ranges:
            raise ConfigError(f"grid search runs every listed value, but `{ranges[0]}` is a distribution.",
                              location=ranges[0].where,
                              hint="List the values ([a, b, ...]), or use --mode=random or --mode=tpe.")
        if trials is not None:
            raise ConfigError("--trials is for random and tpe search; grid search runs every combination.",
                              hint="Leave --trials out, or use --mode=random or --mode=tpe.")
        return objective, direction, math.prod(len(p.choices) for p in space)
    if trials is None or trials < 1:
        raise ConfigError(f"{mode} search needs the number of trials.", hint="Pass --trials=N (N >= 1).")
    return objective, direction, trials


def _check_config(gin_files: Sequence[str | os.PathLike], bindings: Sequence[str], space: Sequence[Parameter],
                  search_paths: Sequence[str | os.PathLike], projects: Sequence[str]) -> None:
    """Parses and checks (:func:`ginlight.experiment.check_config`) the config with each swept value, so that
    a mistake fails now rather than in every trial; prints the base config's warnings once."""
    parsed = parsing.load(gin_files, bindings, search_paths, projects)
    for warning in experiment.check_config(parsed):
        print(f"warning: {warning}", file=sys.stderr)
    macros = {p.key for p in space if "." not in p.key}
    defined = {key for key in macros if _macro_defined(key)}
    for parameter in space:
        if parameter.key in macros - defined:
            raise ConfigError(f"macro '{parameter.key}' is not defined by the config, so sweeping it "
                              "changes nothing.", location=parameter.where,
                              hint="Sweep a macro the config defines, or a `configurable.parameter`.")
        for text in parameter.extremes():
            try:
                experiment.check_config(parsing.parse(gin_files, [*bindings, parameter.binding(text)], search_paths))
            except ConfigError as exc:
                raise ConfigError(f"{exc.message} (sweeping `{parameter.binding(text)}`)",
                                  location=parameter.where, hint=exc.hint) from None


def _macro_defined(name: str) -> bool:
    try:
        gin.query_parameter(f"%{name}")
    except ValueError:
        return False
    return True


def _digest(gin_files: Sequence[str | os.PathLike], bindings: Sequence[str],
            search_paths: Sequence[str | os.PathLike]) -> str:
    """Identifies the base config by content, wherever its files are."""
    content = hashlib.sha256()
    for gin_file in gin_files:
        content.update(reading.resolve(gin_file, search_paths).read_bytes() + b"\0")
    content.update("\n".join(bindings).encode())
    return content.hexdigest()[:16]


