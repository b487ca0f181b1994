"""Reruns: which trials run again under a new number, and which trials the sweep must not run.

A trial runs again when it was stopped from outside (Ctrl-C, SIGTERM), when its worker died
(:mod:`~ginlight.sweep.lost`), and with ``--retry_failed`` when it failed. Each rerun is
Optuna's own: ``RetryHeartbeatStaleTrialCallback`` enqueues a copy with the same parameters,
marked with the trial it reruns (``failed_trial``, ``retry_history``), which the next free
worker runs.
"""

from __future__ import annotations

import copy
from typing import Sequence

import optuna

from ginlight.rundir import Status
from ginlight.sweep.reports import trial_name, trial_rows
from ginlight.sweep.space import Parameter
from ginlight.sweep.study import MAX_RETRIES, SKIPPED

__all__ = ["Reruns", "takes_a_slot"]


class Reruns:
    """Queues the reruns of a study's trials, and says which of its trials must not run (:meth:`skip`)."""

    def __init__(self, study: optuna.Study, space: Sequence[Parameter], budget: int):
        self.study = study
        self.space = space
        self.budget = budget
        self.retry = optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=MAX_RETRIES)

    def requeue(self, number: int) -> None:
        """Queues a rerun of the trial ``number``, interrupted or lost; none once it was rerun :data:`MAX_RETRIES`
        times."""
        self.retry(self.study, copy.deepcopy(self._frozen(number)))

    def retry_failed(self) -> int:
        """Queues a rerun of each failed trial, with the same values (``--retry_failed``); returns how many."""
        retry = optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=None)  # the user asked: no limit
        failed = [row.number for row in trial_rows(self.study, self.space) if row.status == Status.FAILED]
        for number in failed:
            retry(self.study, copy.deepcopy(self._frozen(number)))
        return len(failed)

    def skip(self, number: int) -> str | None:
        """Why the trial ``number`` must not run, or None; a skipped trial takes no slot of the budget.

        Trials are numbered in the order they are created, so every worker agrees which
        of two is first, and that one runs:

        - a new trial is surplus when the trials before it already fill the budget
          (another worker took the last slot between this worker's look and the
          trial's creation);
        - a new grid trial is a twin when a trial before it has its grid point: Optuna's
          GridSampler can hand one point to two workers creating trials at once;
        - a rerun (marked ``failed_trial`` by Optuna's retry callback) is a duplicate when
          a trial before it reruns the same trial: two workers that both failed one dead
          trial (SQLite does not lock the row as PostgreSQL does), or two sweeps
          continued with ``--retry_failed``, each queue one.
        """
        trials = self.study.get_trials(deepcopy=False)
        this = next(t for t in trials if t.number == number)
        if "failed_trial" in this.system_attrs:
            reruns = _reruns(this)
            first = min(t.number for t in trials if _reruns(t) == reruns)
            return None if first == number else f"{trial_name(first)} already reruns {trial_name(reruns)}"
        before = [t for t in trials if t.number < number and takes_a_slot(t)]
        if len(before) >= self.budget:
            return f"the sweep already has its {self.budget} trials"
        grid_id = this.system_attrs.get("grid_id")
        twin = next((t for t in before if grid_id is not None and t.system_attrs.get("grid_id") == grid_id), None)
        return None if twin is None else f"{trial_name(twin.number)} already has this grid point"

    def _frozen(self, number: int) -> optuna.trial.FrozenTrial:
        return next(t for t in self.study.get_trials(deepcopy=False) if t.number == number)


def takes_a_slot(trial: optuna.trial.FrozenTrial) -> bool:
    """Whether a trial counts towards the budget: a new one (not a rerun) that was not skipped."""
    return "failed_trial" not in trial.system_attrs and SKIPPED not in trial.user_attrs


def _reruns(trial: optuna.trial.FrozenTrial) -> int | None:
    """The number of the trial a rerun reruns (the last of Optuna's retry history)."""
    history = trial.system_attrs.get("retry_history")
    return history[-1] if history else None
