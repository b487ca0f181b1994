"""Trial launch: each trial's process started, waited for, read when it ends, and stopped with the others.

A trial's process (:class:`~ginlight.sweep.trial.TrialSpec`) starts here, forked from a warm
worker (:class:`ginlight.sweep.warm.WarmStart`, the local launcher), or through a launcher such as
:class:`ginlight.slurm.SlurmLauncher` as a job elsewhere (:func:`commands`). When it exits, its
run's ``run.json``, or the outcome file it wrote where that record cannot say, tells how it ended
(:meth:`~ginlight.sweep.trial.Outcome.read`); a process that left neither was killed or died.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

from ginlight import runcontext, rundir
from ginlight.rundir import Status
from ginlight.sweep.study import outcome_file, trial_log
from ginlight.sweep.trial import Outcome, TrialSpec

__all__ = ["Start", "Ended", "Processes", "commands"]

_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
#: What starts a trial's process from its spec, log file and environment, returning what waits and
#: stops like a ``subprocess.Popen``: :class:`ginlight.sweep.warm.WarmStart`, or :func:`commands` of a
#: launcher (a SLURM job).
Start = Callable[[TrialSpec, Path, Mapping[str, str]], Any]


def commands(start: Callable[[list[str], Path, Mapping[str, str]], Any]) -> Start:
    """A launcher's ``start``, which takes a command line (:class:`ginlight.slurm.SlurmLauncher`), as a
    :data:`Start`: each trial is ``python -m ginlight.cli.trial`` (:meth:`TrialSpec.command`)."""
    return lambda spec, log, env: start(spec.command(), log, env)


@dataclass
class Ended:
    """How a trial's process ended, as the sweep records it."""

    status: str  # the run's: completed, pruned, failed or interrupted
    metrics: dict[str, float]
    error: str | None
    duration_s: float
    operative_config: str | None


class Processes:
    """The trials' processes the sweep's workers run at once: each started with ``start`` and waited for;
    all stopped together (:meth:`stop`).

    ``trial_of`` gives a trial's :class:`TrialSpec` from its swept bindings, its run directory and its
    outcome file; ``report_to`` is what a trial's process needs to report to its Optuna trial
    (:mod:`ginlight.pruning`).
    """

    def __init__(self, start: Start, trial_of: Callable[[list[str], Path, Path], TrialSpec], sweep_dir: Path,
                 workers: int, report_to: dict[str, Any]):
        self.start = start
        self.trial_of = trial_of
        self.sweep_dir = sweep_dir
        self.report_to = report_to
        # Trials share the cores: each gets its share of threads unless the user chose.
        self.env = {**os.environ}
        self.env.setdefault("OMP_NUM_THREADS", str(max(1, _cores() // workers)))
        self.lock = threading.Lock()  # guards running and stopped: no process starts once they are stopped
        self.stopped = threading.Event()
        self.running: set[Any] = set()  # what start returned, for each running trial

    def run(self, number: int, swept: list[str], run_dir: Path) -> Ended:
        """Runs the trial ``number`` with the bindings ``swept`` in ``run_dir``; its console output goes to
        ``logs/trial-NNN.log``, its outcome file beside."""
        log, outcome = trial_log(self.sweep_dir, run_dir.name), outcome_file(self.sweep_dir, run_dir.name)
        env = {**self.env, **runcontext.trial_environment({**self.report_to, "number": number})}
        start = time.monotonic()
        with self.lock:
            if self.stopped.is_set():
                return Ended(Status.INTERRUPTED, {}, None, 0.0, None)
            process = self.start(self.trial_of(swept, run_dir, outcome), log, env)
            self.running.add(process)
        try:
            code = process.wait()
        finally:
            with self.lock:
                self.running.discard(process)
        ended = Outcome.read(run_dir, outcome)
        status, error = _status(ended, code, self.stopped.is_set())
        operative = rundir.RunDir(run_dir).operative_config
        return Ended(status, ended.metrics if ended else {}, error, time.monotonic() - start,
                     operative.read_text() if operative.is_file() else None)

    def stop(self, signum: int) -> None:
        """Starts no more trials, and sends ``signum`` to each running one."""
        with self.lock:
            self.stopped.set()
            for process in self.running:
                try:
                    process.send_signal(signum)
                except ProcessLookupError:
                    pass


def _status(outcome: Outcome | None, code: int, stopped: bool) -> tuple[str, str | None]:
    """The status and error of a trial whose process ended with ``code``: ``outcome`` (None when its
    process said nothing) decides, unless the sweep or a signal stopped it, or it was killed."""
    if outcome is not None and outcome.status in (Status.COMPLETED, Status.PRUNED):  # pruned: by its pruner
        return outcome.status, None
    if stopped or (outcome is not None and outcome.status == Status.INTERRUPTED) or -code in _STOP_SIGNALS:
        return Status.INTERRUPTED, None
    if code < 0:
        return Status.FAILED, (f"killed by {signal.Signals(-code).name}"
                               f"{' (out of memory?)' if code == -signal.SIGKILL else ''}")
    if outcome is not None and outcome.error is not None:
        return Status.FAILED, str(outcome.error)
    return Status.FAILED, f"exit status {code}, and neither run.json nor an outcome file says why: see its log"


def _cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
