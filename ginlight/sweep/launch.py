"""Trial launch: worker threads that start each trial's process, keep its heartbeat and rerun lost trials.

Each worker thread asks the study for a trial, starts its process
(:class:`~ginlight.sweep.trial.TrialSpec`) here, forked from a warm worker
(:mod:`ginlight.sweep.warm`), or through a launcher such as
:class:`ginlight.slurm.SlurmLauncher` as a job elsewhere (:func:`commands`), and keeps the trial's
Optuna heartbeat while it runs. The process reports through its outcome file,
which the worker reads when it exits, and records in the study.

Fault tolerance is Optuna's own mechanism: while a trial runs, its worker records
a heartbeat in the storage every :data:`~ginlight.sweep.study.HEARTBEAT_S`
seconds. A RUNNING trial whose heartbeat is older than
:data:`~ginlight.sweep.study.GRACE_S` belonged to a worker that died; the next
worker to look fails it and ``RetryHeartbeatStaleTrialCallback`` enqueues a copy
with the same parameters, which the next free worker runs. A trial the sweep
stops itself (Ctrl-C, SIGTERM) is re-enqueued the same way at once.
"""

from __future__ import annotations

import copy
import math
import os
import signal
import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import optuna
from optuna.trial import TrialState

from ginlight import runcontext, rundir
from ginlight.errors import ConfigError
from ginlight.rundir import Status
from ginlight.sweep.reports import FINISHED, TrialRow, best_of, trial_name, trial_rows
from ginlight.sweep.space import Parameter
from ginlight.sweep.study import GRACE_S, HEARTBEAT_S, MAX_RETRIES, SKIPPED, STARTED, outcome_file, trial_log
from ginlight.sweep.trial import Outcome, TrialSpec

__all__ = ["Workers", "TrialFailed", "commands"]

_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
#: What starts a trial's process from its spec, log file and environment, returning what waits and
#: stops like a ``subprocess.Popen``: :class:`ginlight.sweep.warm.WarmStart`, or :func:`commands` of a
#: launcher (a SLURM job).
Start = Callable[[TrialSpec, Path, Mapping[str, str]], Any]


class TrialFailed(Exception):
    """A trial's run failed; the sweep records it and goes on."""


class _Requeued(Exception):
    """A trial was stopped from outside; a copy with the same parameters waits to run."""


@dataclass
class _Ended:
    """How a trial's process ended, as the worker records it."""

    status: str  # the run's: completed, pruned, failed or interrupted
    metrics: dict[str, float]
    error: str | None
    duration_s: float
    operative_config: str | None


@dataclass
class _Census:
    rows: list[TrialRow]
    fresh: int  # trials created for a new slot of the budget (not reruns)
    waiting: int
    running: int


class Workers:
    """Runs one study's trials on ``workers`` threads, each driving one trial's process at a time.

    ``trial_of`` gives a trial's :class:`TrialSpec` from its swept bindings, its run
    directory and its outcome file; ``start`` starts it.
    """

    def __init__(self, study: optuna.Study, storage: optuna.storages.RDBStorage, space: Sequence[Parameter],
                 budget: int, objective: str, direction: str, sweep_dir: Path,
                 trial_of: Callable[[list[str], Path, Path], TrialSpec], workers: int,
                 write_results: Callable[[list[TrialRow]], None], report_to: dict[str, Any], start: Start):
        self.study = study
        self.storage = storage
        self.study_id = storage.get_study_id_from_name(study.study_name)
        self.report_to = report_to  # what a trial's process needs to report to its trial (ginlight.pruning)
        self.space = space
        self.budget = budget
        self.objective = objective
        self.direction = direction
        self.sweep_dir = sweep_dir
        self.trial_of = trial_of
        self.workers = workers
        self.write_results = write_results
        self.start = start  # a trial's process, or what waits and stops like one (a SLURM job)
        self.retry = optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=MAX_RETRIES)
        self.silent_since: dict[int, float] = {}  # RUNNING trials not yet marked started, since when seen
        # Trials share the cores: each gets its share of threads unless the user chose.
        self.env = {**os.environ}
        self.env.setdefault("OMP_NUM_THREADS", str(max(1, _cores() // workers)))
        self.lock = threading.Lock()  # guards children, stop and error
        self.output_lock = threading.Lock()
        self.changed = threading.Condition()
        self.stop = threading.Event()
        self.children: set[Any] = set()  # what start returned, for each running trial
        self.error: BaseException | None = None
        self.local = threading.local()

    def run(self) -> None:
        """Works until every trial of the budget has finished; Ctrl-C requeues the running ones."""
        finished = [threading.Event() for _ in range(self.workers)]
        for i, done in enumerate(finished):
            threading.Thread(target=self._work, args=(done,), name=f"sweep-worker-{i}", daemon=True).start()
        try:
            _wait(finished)
        except KeyboardInterrupt:
            self.say("interrupted: stopping the running trials; they rerun when the same command continues "
                     "the sweep (Ctrl-C again kills them).")
            self.interrupt(signal.SIGINT)
            try:
                _wait(finished)
            except KeyboardInterrupt:
                self.interrupt(signal.SIGKILL)
                _wait(finished)
            raise
        if self.error is not None:
            raise self.error

    def interrupt(self, signum: int) -> None:
        with self.lock:
            self.stop.set()
            for process in self.children:
                try:
                    process.send_signal(signum)
                except ProcessLookupError:
                    pass

    def say(self, text: str) -> None:
        with self.output_lock:
            print(text, flush=True)

    def census(self) -> _Census:
        optuna.storages.fail_stale_trials(self.study)  # a dead worker's trial becomes a waiting rerun
        self._fail_silent_trials()
        trials = self.study.get_trials(deepcopy=False)
        states = [trial.state for trial in trials]
        return _Census(
            rows=trial_rows(self.study, self.space),
            fresh=sum(_takes_a_slot(trial) for trial in trials),
            waiting=states.count(TrialState.WAITING),
            running=states.count(TrialState.RUNNING),
        )

    def _fail_silent_trials(self) -> None:
        """Fails, and queues a rerun of, each RUNNING trial that stayed unmarked for :data:`GRACE_S`.

        Optuna declares a trial dead only when its heartbeat gets old, so a trial whose
        worker died before recording the first one would run forever. A worker marks its
        trial (:data:`STARTED`) once it has recorded that heartbeat itself; a trial left
        unmarked that long belongs to a dead worker. The silence is timed by this
        worker's own clock, so the clocks of other machines do not matter.
        """
        now = time.monotonic()
        unmarked = {t.number for t in self.study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
                    if t.user_attrs.get(STARTED) != t.number}
        with self.lock:
            self.silent_since = {number: self.silent_since.get(number, now) for number in unmarked}
            dead = [number for number, since in self.silent_since.items() if now - since > GRACE_S]
        for number in dead:
            trial_id = self._trial_id(number)
            try:
                if not self.storage.set_trial_state_values(trial_id, TrialState.FAIL):
                    continue
            except optuna.exceptions.UpdateFinishedTrialError:
                continue  # another worker failed it first, and queued its rerun
            self.retry(self.study, copy.deepcopy(self.storage.get_trial(trial_id)))

    def retry_failed(self) -> int:
        """Queues a rerun of each failed trial, with the same values (``--retry_failed``); returns how many."""
        retry = optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=None)  # the user asked: no limit
        failed = [row.number for row in trial_rows(self.study, self.space) if row.status == Status.FAILED]
        for number in failed:
            retry(self.study, copy.deepcopy(self._frozen(number)))
        return len(failed)

    def _trial_id(self, number: int) -> int:
        return self.storage.get_trial_id_from_study_id_trial_number(self.study_id, number)

    def _work(self, done: threading.Event) -> None:
        try:
            while not self.stop.is_set():
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
            self.interrupt(signal.SIGINT)
        finally:
            done.set()

    def _run_one(self) -> None:
        self.local.number = None
        try:
            self.study.optimize(self._objective, n_trials=1, catch=(TrialFailed, _Requeued),
                                callbacks=[self._finished])
        except (ValueError, optuna.exceptions.UpdateFinishedTrialError):
            # Optuna refuses results for a trial another worker declared dead (its heartbeat
            # stalled); that worker already enqueued its rerun.
            number = self.local.number
            if number is None or number in {r.number for r in self.census().rows}:
                raise
            self.say(f"{trial_name(number)} was declared dead by another worker (no heartbeat for {GRACE_S} s) "
                     "and runs again under a new number; this result is discarded.")
        finally:
            with self.changed:
                self.changed.notify_all()

    def _objective(self, trial: optuna.Trial) -> float:
        self.local.number = trial.number
        # Optuna's heartbeat thread records its first beat in the background: record one now, then mark.
        self.storage.record_heartbeat(self._trial_id(trial.number))
        trial.set_user_attr(STARTED, trial.number)
        skip = self._skip(trial.number)
        if skip is not None:
            trial.set_user_attr(SKIPPED, skip)
            raise optuna.TrialPruned(skip)
        values = {parameter.key: parameter.suggest(trial) for parameter in self.space}
        name = trial_name(trial.number)
        run_dir = self.sweep_dir / name
        trial.set_user_attr("run_dir", str(run_dir.resolve()))
        trial.set_user_attr("host", socket.gethostname())
        ended = self._train(trial.number, values, run_dir)
        if ended.status == Status.INTERRUPTED:
            self.retry(self.study, copy.deepcopy(self._frozen(trial.number)))
            raise _Requeued(name)
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
        if unknown_objective:  # every trial would miss it: stop the sweep
            raise ConfigError(f"{name}: {error}", hint="Pass --objective with one of the run's metrics.")
        if error is not None:
            raise TrialFailed(error)
        if ended.status == Status.PRUNED:  # Optuna records the last reported value as the trial's
            raise optuna.TrialPruned(f"{name} was pruned")
        return value

    def _skip(self, number: int) -> str | None:
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
        before = [t for t in trials if t.number < number and _takes_a_slot(t)]
        if len(before) >= self.budget:
            return f"the sweep already has its {self.budget} trials"
        grid_id = this.system_attrs.get("grid_id")
        twin = next((t for t in before if grid_id is not None and t.system_attrs.get("grid_id") == grid_id), None)
        return None if twin is None else f"{trial_name(twin.number)} already has this grid point"

    def _frozen(self, number: int) -> optuna.trial.FrozenTrial:
        return next(t for t in self.study.get_trials(deepcopy=False) if t.number == number)

    def _train(self, number: int, values: dict[str, str], run_dir: Path) -> _Ended:
        """Runs one trial's process; its console output goes to ``logs/trial-NNN.log``, its outcome file beside."""
        log, outcome = trial_log(self.sweep_dir, run_dir.name), outcome_file(self.sweep_dir, run_dir.name)
        spec = self.trial_of([p.binding(values[p.key]) for p in self.space], run_dir, outcome)
        env = {**self.env, **runcontext.trial_environment({**self.report_to, "number": number})}
        start = time.monotonic()
        with self.lock:
            if self.stop.is_set():
                return _Ended(Status.INTERRUPTED, {}, None, 0.0, None)
            process = self.start(spec, log, env)
            self.children.add(process)
        try:
            code = process.wait()
        finally:
            with self.lock:
                self.children.discard(process)
        reported = Outcome.read(outcome) or Outcome(Status.FAILED)  # none: killed, or dead before it could write one
        if reported.status in (Status.COMPLETED, Status.PRUNED):  # pruned: stopped by its pruner
            status, error = reported.status, None
        elif self.stop.is_set() or reported.status == Status.INTERRUPTED or -code in _STOP_SIGNALS:
            status, error = Status.INTERRUPTED, None
        elif code < 0:
            status = Status.FAILED
            error = f"killed by {signal.Signals(-code).name}{' (out of memory?)' if code == -signal.SIGKILL else ''}"
        else:
            status = Status.FAILED
            error = str(reported.error) if reported.error else f"exit status {code}, and no outcome file: see its log"
        operative = rundir.RunDir(run_dir).operative_config
        return _Ended(status, reported.metrics, error, time.monotonic() - start,
                      operative.read_text() if operative.is_file() else None)

    def _finished(self, study: optuna.Study, frozen: optuna.trial.FrozenTrial) -> None:
        rows = trial_rows(study, self.space)
        row = next((r for r in rows if r.number == frozen.number), None)
        if row is None:  # surplus, or requeued
            return
        done = sum(r.status in FINISHED for r in rows)
        values = ", ".join(f"{key}={value}" for key, value in row.params.items())
        status = f"pruned after {row.stopped_at}" if row.status == Status.PRUNED else row.status
        line = f"[{done}/{self.budget}] {row.name} {status} in {row.duration_s or 0:.1f} s ({values})"
        if row.status in (Status.COMPLETED, Status.PRUNED):
            best = best_of(rows, self.direction)
            if row.objective is not None:
                line += f": {self.objective} = {row.objective:.4g}"
            if best is not None:
                line += f"; best {best.name}: {best.objective:.4g}"
        else:
            line += f": {(row.error or '').splitlines()[0]} (log: {trial_log(self.sweep_dir, row.name)})"
        self.say(line)
        self.write_results(rows)


def commands(start: Callable[[list[str], Path, Mapping[str, str]], Any]) -> Start:
    """A launcher's ``start``, which takes a command line (:class:`ginlight.slurm.SlurmLauncher`), as a
    :data:`Start`: each trial is ``python -m ginlight.cli.trial`` (:meth:`TrialSpec.command`)."""
    return lambda spec, log, env: start(spec.command(), log, env)


def _takes_a_slot(trial: optuna.trial.FrozenTrial) -> bool:
    """Whether a trial counts towards the budget: a new one (not a rerun) that was not skipped."""
    return "failed_trial" not in trial.system_attrs and SKIPPED not in trial.user_attrs


def _reruns(trial: optuna.trial.FrozenTrial) -> int | None:
    """The number of the trial a rerun reruns (the last of Optuna's retry history)."""
    history = trial.system_attrs.get("retry_history")
    return history[-1] if history else None


def _wait(events: Sequence[threading.Event]) -> None:
    """Waits for the workers in short steps, so Ctrl-C reaches the main thread at once.

    Not ``Thread.join``: interrupted by Ctrl-C, it can report a running thread finished.
    """
    for event in events:
        while not event.wait(0.5):
            pass


def _cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


