"""The sweep's workers: threads that each ask the study for a trial and run it, until the sweep is done.

Each worker thread looks at the study (:meth:`Workers.census`: lost trials found first), runs
the next trial (:class:`~ginlight.sweep.objective.Objective` through Optuna's ``study.optimize``),
waits while trials run elsewhere (they may die and need a rerun), and returns when every trial of
the budget has finished. Ctrl-C stops the running trials, which are queued again.
"""

from __future__ import annotations

import signal
import threading
from dataclasses import dataclass
from typing import Sequence

import optuna
from optuna.trial import TrialState

from ginlight.sweep.launch import Processes
from ginlight.sweep.lost import LostTrials
from ginlight.sweep.objective import Objective, Requeued, TrialFailed
from ginlight.sweep.progress import Progress
from ginlight.sweep.reports import TrialRow, trial_name, trial_rows
from ginlight.sweep.reruns import takes_a_slot
from ginlight.sweep.space import Parameter
from ginlight.sweep.study import GRACE_S, HEARTBEAT_S

__all__ = ["Workers", "Census"]


@dataclass
class Census:
    """The study's trials as a worker finds them."""

    rows: list[TrialRow]
    fresh: int  # trials created for a new slot of the budget (not reruns)
    waiting: int
    running: int


class Workers:
    """Runs one study's trials on ``count`` threads, each driving one trial's process at a time."""

    def __init__(self, study: optuna.Study, space: Sequence[Parameter], budget: int, count: int,
                 objective: Objective, lost: LostTrials, processes: Processes, progress: Progress):
        self.study = study
        self.space = space
        self.budget = budget
        self.count = count
        self.objective = objective
        self.lost = lost
        self.processes = processes
        self.progress = progress
        self.changed = threading.Condition()  # a trial ended here: waiting workers look again
        self.lock = threading.Lock()  # guards error
        self.error: BaseException | None = None

    def census(self) -> Census:
        """The trials now, once those of dead workers are failed and queued to rerun."""
        self.lost.find()
        trials = self.study.get_trials(deepcopy=False)
        states = [trial.state for trial in trials]
        return Census(rows=trial_rows(self.study, self.space), fresh=sum(takes_a_slot(trial) for trial in trials),
                      waiting=states.count(TrialState.WAITING), running=states.count(TrialState.RUNNING))

    def run(self) -> None:
        """Works until every trial of the budget has finished; Ctrl-C requeues the running ones."""
        finished = [threading.Event() for _ in range(self.count)]
        for i, done in enumerate(finished):
            threading.Thread(target=self._work, args=(done,), name=f"sweep-worker-{i}", daemon=True).start()
        try:
            _wait(finished)
        except KeyboardInterrupt:
            self.progress.say("interrupted: stopping the running trials; they rerun when the same command "
                              "continues the sweep (Ctrl-C again kills them).")
            self.processes.stop(signal.SIGINT)
            try:
                _wait(finished)
            except KeyboardInterrupt:
                self.processes.stop(signal.SIGKILL)
                _wait(finished)
            raise
        if self.error is not None:
            raise self.error

    def _work(self, done: threading.Event) -> None:
        try:
            while not self.processes.stopped.is_set():
                census = self.census()
                if census.waiting or census.fresh < self.budget:
                    self._run_one()
                elif census.running:  # here or on other workers: wait, they may die and need a rerun
                    with self.changed:
                        self.changed.wait(HEARTBEAT_S)
                else:
                    return
        except BaseException as exc:  # noqa: BLE001 - handed to the main thread, which raises it
            with self.lock:
                self.error = self.error or exc
            self.processes.stop(signal.SIGINT)
        finally:
            done.set()

    def _run_one(self) -> None:
        numbers: list[int] = []  # the trial Optuna created

        def objective(trial: optuna.Trial) -> float:
            numbers.append(trial.number)
            return self.objective(trial)

        try:
            self.study.optimize(objective, n_trials=1, catch=(TrialFailed, Requeued), callbacks=[self.progress])
        except (ValueError, optuna.exceptions.UpdateFinishedTrialError):
            # Optuna refuses results for a trial another worker declared dead (its heartbeat
            # stalled); that worker already enqueued its rerun.
            if not numbers or numbers[0] in {r.number for r in self.census().rows}:
                raise
            self.progress.say(f"{trial_name(numbers[0])} was declared dead by another worker (no heartbeat for "
                              f"{GRACE_S} s) and runs again under a new number; this result is discarded.")
        finally:
            with self.changed:
                self.changed.notify_all()


def _wait(events: Sequence[threading.Event]) -> None:
    """Waits for the workers in short steps, so Ctrl-C reaches the main thread at once.

    Not ``Thread.join``: interrupted by Ctrl-C, it can report a running thread finished.
    """
    for event in events:
        while not event.wait(0.5):
            pass
