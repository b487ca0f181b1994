"""A trial as Optuna's objective: its values sampled, its process run, how it ended handed to the study.

The study's attributes of a trial are derived from how its process ended
(:class:`~ginlight.sweep.launch.Ended`, read from its ``run.json``) by :meth:`Objective.record`,
with what only the worker knows: where the trial runs (``host``, ``run_dir``) and how long it
took. They are what every worker's results show of the trial, on any machine sharing the study.
"""

from __future__ import annotations

import math
import socket
from pathlib import Path
from typing import Sequence

import optuna

from ginlight.errors import ConfigError
from ginlight.rundir import Status
from ginlight.sweep.launch import Ended, Processes
from ginlight.sweep.lost import LostTrials
from ginlight.sweep.reports import trial_name
from ginlight.sweep.reruns import Reruns
from ginlight.sweep.space import Parameter
from ginlight.sweep.study import SKIPPED

__all__ = ["Objective", "TrialFailed", "Requeued"]


class TrialFailed(Exception):
    """A trial's run failed; the sweep records it and goes on."""


class Requeued(Exception):
    """A trial was stopped from outside; a copy with the same parameters waits to run."""


class Objective:
    """Optuna's objective for one trial of the sweep: ``study.optimize`` calls it on a worker thread."""

    def __init__(self, space: Sequence[Parameter], objective: str, sweep_dir: Path, processes: Processes,
                 lost: LostTrials, reruns: Reruns):
        self.space = space
        self.objective = objective
        self.sweep_dir = sweep_dir
        self.processes = processes
        self.lost = lost
        self.reruns = reruns

    def __call__(self, trial: optuna.Trial) -> float:
        """The trial's objective; raises :class:`TrialFailed`, :class:`Requeued` or ``TrialPruned`` when it has
        none, and :class:`ConfigError` when no trial of the sweep can have one."""
        self.lost.started(trial)
        skip = self.reruns.skip(trial.number)
        if skip is not None:
            trial.set_user_attr(SKIPPED, skip)
            raise optuna.TrialPruned(skip)
        values = {parameter.key: parameter.suggest(trial) for parameter in self.space}
        name = trial_name(trial.number)
        run_dir = self.sweep_dir / name
        trial.set_user_attr("run_dir", str(run_dir.resolve()))
        trial.set_user_attr("host", socket.gethostname())
        ended = self.processes.run(trial.number, [p.binding(values[p.key]) for p in self.space], run_dir)
        if ended.status == Status.INTERRUPTED:
            self.reruns.requeue(trial.number)
            raise Requeued(name)
        error = self.record(trial, ended)
        if error is not None:
            raise TrialFailed(error)
        if ended.status == Status.PRUNED:  # Optuna records the last reported value as the trial's
            raise optuna.TrialPruned(f"{name} was pruned")
        return ended.metrics[self.objective]

    def record(self, trial: optuna.Trial, ended: Ended) -> str | None:
        """Sets the trial's attributes from how it ended; returns its error, a completed trial's objective missing
        or not finite included. Raises :class:`ConfigError` when the objective is missing: every trial would miss
        it, so the sweep stops."""
        error, value = ended.error, ended.metrics.get(self.objective)
        unknown_objective = ended.status == Status.COMPLETED and value is None
        if unknown_objective:
            error = (f"the run has no final metric '{self.objective}'; it has "
                     f"{', '.join(sorted(ended.metrics)) or 'none'}.")
        elif ended.status == Status.COMPLETED and not math.isfinite(value):
            error = f"the objective {self.objective} is {value}."
        for key, attr in dict(metrics=ended.metrics, error=error, duration_s=round(ended.duration_s, 2),
                              operative_config=ended.operative_config).items():
            trial.set_user_attr(key, attr)
        if unknown_objective:
            raise ConfigError(f"{trial_name(trial.number)}: {error}",
                              hint="Pass --objective with one of the run's metrics.")
        return error
