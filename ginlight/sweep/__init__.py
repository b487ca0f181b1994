"""Sweeps: many ginlight runs from one config, chosen by Optuna, resumable and spread over workers.

A sweep is an Optuna study in RDB storage: an SQLite file in the sweep directory,
or a server such as PostgreSQL that workers on several machines share. Grid,
random and TPE search are Optuna's GridSampler, RandomSampler and TPESampler, so
every search method runs through the same loop. Each trial is a full ginlight run
in its own process (gin's global state never leaks between trials), in
``<sweep directory>/trial-NNN/``; it reports how it ended through an outcome file.
On this machine, trials are forked from a warm worker that has imported the stack
once (:mod:`~ginlight.sweep.warm`).

With a pruner, each trial's process reports its objective to its Optuna trial at
every validation and stops when pruned (:mod:`ginlight.pruning`).

The modules, each importing only those before it:

- :mod:`~ginlight.sweep.space`: the search space, read from sweep lines in gin syntax;
- :mod:`~ginlight.sweep.study`: the Optuna study and its storage, the sweep directory and ``sweep.json``;
- :mod:`~ginlight.sweep.reports`: the results, ``sweep.csv``, ``summary.md``, ``best_config.gin``, the plot;
- :mod:`~ginlight.sweep.trial`: a trial's run and the outcome file it writes (as a job, ``ginlight.cli.trial``);
- :mod:`~ginlight.sweep.warm`: the warm worker that forks each trial's process on this machine;
- :mod:`~ginlight.sweep.launch`: the worker threads that start trials, keep their heartbeats and rerun lost ones;
- this package: :func:`run_sweep`, which checks a sweep's definition and runs it.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import gin

from ginlight import pruning, rundir
from ginlight.gin import parsing, reading
from ginlight import experiment  # its check; importing it registers ginlight's own configurables, which the config may name
from ginlight.errors import ConfigError
from ginlight.sweep.launch import Workers, commands
from ginlight.sweep.reports import FINISHED, SweepResult, TrialRow, trial_rows, write_results
from ginlight.sweep.space import Parameter, load_search_space, parse_parameter
from ginlight.sweep.study import (DATABASE, DIRECTIONS, LOG, SAMPLERS, TRIAL_LOGS, open_study, storage_label,
                                  sweep_directory, with_installed_driver, write_record)
from ginlight.sweep.trial import TrialSpec
from ginlight.sweep.warm import WarmStart

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
    definition = {
        "config": _digest(gin_files, bindings, search_paths),
        "projects": list(projects),
        "space": [str(parameter) for parameter in space],
        "mode": mode,
        "trials": budget,
        "objective": objective,
        "direction": direction,
        "pruner": pruner,
    }
    study_name = study or f"{name}-{hashlib.sha1(json.dumps(definition, sort_keys=True).encode()).hexdigest()[:8]}"
    label = storage_label(storage) if storage else None
    sweep_dir, created = sweep_directory(root_dir, name, study_name, label)
    try:
        url = storage or f"sqlite:///{(sweep_dir / DATABASE).resolve()}"
        opened, storage_of_study = open_study(url, study_name, mode, space, direction, definition, workers,
                                              pruning.make_pruner(pruner_spec))
        if created:
            write_record(sweep_dir, study_name, label, definition, argv)
    except BaseException:
        if created:
            shutil.rmtree(sweep_dir)
        raise
    (sweep_dir / TRIAL_LOGS).mkdir(exist_ok=True)

    def result_of(rows: list[TrialRow]) -> SweepResult:
        return SweepResult(sweep_dir, study_name, budget, objective, direction, rows)

    results_lock = threading.Lock()

    def write(rows: list[TrialRow]) -> None:
        with results_lock:
            write_results(result_of(rows), space, mode, pruner)

    def trial_of(swept: list[str], run_dir: Path, outcome: Path) -> TrialSpec:
        return TrialSpec(tuple(map(str, gin_files)), (*bindings, *swept), tuple(map(str, search_paths)),
                         tuple(projects), str(root_dir), run_dir, outcome)

    report_to = {"storage": with_installed_driver(url), "study": study_name, "objective": objective,
                 "pruner": pruner_spec}
    if launcher is None:  # here, trials fork from a warm worker that preloads the config's own modules too
        start = WarmStart(parsing.own_modules(gin_files, search_paths, projects))
    else:
        start = commands(launcher.start)
    runner = Workers(opened, storage_of_study, space, budget, objective, direction, sweep_dir, trial_of,
                     workers, write, report_to, start)
    with rundir.console_to_file(sweep_dir / LOG):
        census = runner.census()
        finished = sum(row.status in FINISHED for row in census.rows)
        runner.say(f"sweep directory {sweep_dir}\nstudy {study_name} in {label or url}: {mode} search, "
                   f"{budget} trials, {finished} finished already, {workers} worker(s) here"
                   f"{'' if pruner == 'none' else f', pruner {pruner}'}.")
        if retry_failed:
            runner.say(f"rerunning {runner.retry_failed()} failed trial(s), each under a new number.")
        try:
            runner.run()
        finally:
            write(trial_rows(opened, space))
    return result_of(trial_rows(opened, space))


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


