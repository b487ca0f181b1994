"""A sweep's trial: its run, and how the sweep learns how the run ended.

A trial is a process of its own, so gin's global state never leaks between trials:
forked from a warm worker here (:mod:`ginlight.sweep.warm`), or
``python -m ginlight.cli.trial`` (:meth:`TrialSpec.command`) as a SLURM job. Either way it is
described by a :class:`TrialSpec` and trains through the library (:func:`run`, which calls
:func:`ginlight.experiment.train`). Its run directory's ``run.json`` is the record of how it
ended: its status, final metrics and error. Only what that record cannot say goes into the
outcome file the sweep named, ``logs/trial-NNN.outcome.json``: the error of a trial that failed
before or outside its run's record (a configuration error, with its ``file:line`` and hint). A
process killed before either could say how it ended leaves neither. :meth:`Outcome.read` is how
the sweep learns the outcome, never from what the trial printed (its log).
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Sequence

from ginlight import experiment, rundir
from ginlight.errors import ConfigError, RunError
from ginlight.rundir import Status

__all__ = ["Outcome", "TrialError", "TrialSpec", "run", "report", "COMMAND"]

#: The name a trial's console messages start with.
COMMAND = "trial"



@dataclass(frozen=True)
class TrialError:
    """Why a trial failed: ``kind`` is ``config`` for a :class:`ConfigError` (with ``location``,
    ``file:line`` where it has one, and ``hint``), ``run`` for a run that failed."""

    kind: str
    message: str
    location: str | None = None
    hint: str | None = None

    def __str__(self) -> str:
        return str(ConfigError(self.message, self.location, self.hint)) if self.kind == "config" else self.message


@dataclass(frozen=True)
class Outcome:
    """How a trial ended: ``status`` is the run's (``completed``, ``pruned``, ``interrupted``, ``failed``);
    ``run_dir`` is None, and ``metrics`` empty, when the trial failed before its run started."""

    status: str
    run_dir: str | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    error: TrialError | None = None

    @classmethod
    def read(cls, run_dir: Path, outcome_file: Path) -> Outcome | None:
        """How the trial of ``run_dir`` ended: failed with the error of its outcome file where it wrote one,
        else as its ``run.json`` records once the run is over; None when neither says (a process killed, or
        dead before it could say)."""
        try:
            return cls.failed(run_dir, TrialError(**json.loads(outcome_file.read_text())))
        except FileNotFoundError:
            pass
        recorded = _recorded(rundir.RunDir(run_dir))
        if recorded is None or recorded.status in (None, Status.RUNNING):
            return None
        return cls(recorded.status, str(run_dir), recorded.metrics,
                   None if recorded.error is None else TrialError("run", recorded.error))

    @classmethod
    def failed(cls, run_dir: Path, error: TrialError) -> Outcome:
        """A trial that failed with ``error``: its run directory and the metrics its record holds, if it got that
        far."""
        run = rundir.RunDir(run_dir)
        recorded = _recorded(run)
        return cls(Status.FAILED, str(run.path) if run.recognises(run.path) else None,
                   recorded.metrics if recorded else {}, error)


def _recorded(run: rundir.RunDir) -> rundir.RunRecord | None:
    """The sweep's one read of a trial's ``run.json`` (through :mod:`ginlight.rundir`); None when it has none
    that can be read."""
    try:
        return run.read_record()
    except ConfigError:  # no record, or one cut short
        return None


@dataclass(frozen=True)
class TrialSpec:
    """What one trial runs: the sweep's config with the trial's bindings, its run directory and outcome file.

    ``root_dir`` is where the run's local tracker stores go (:mod:`ginlight.trackers`).
    """

    gin_files: tuple[str, ...]
    bindings: tuple[str, ...]
    search_paths: tuple[str, ...]
    projects: tuple[str, ...]
    root_dir: str
    run_dir: Path
    outcome_file: Path

    def command(self) -> list[str]:
        """The command line that runs this trial in a fresh process (:mod:`ginlight.cli.trial`)."""
        return [sys.executable, "-m", "ginlight.cli.trial",
                *(f"--gin_file={f}" for f in self.gin_files), *(f"--gin_bindings={b}" for b in self.bindings),
                *(f"--gin_search_paths={p}" for p in self.search_paths), *(f"--project={p}" for p in self.projects),
                f"--root_dir={self.root_dir}", f"--run_dir={self.run_dir}", f"--outcome={self.outcome_file}"]

    def run(self, argv: Sequence[str]) -> Outcome:
        """Runs the trial in this process (:func:`run`); ``argv`` is the command line its record shows."""
        return run(self.gin_files, self.bindings, search_paths=self.search_paths, projects=self.projects,
                   root_dir=self.root_dir, run_dir=self.run_dir, outcome_file=self.outcome_file, argv=argv)


def report(outcome: Outcome) -> int:
    """Prints how the trial ended, as ``ginlight-train`` would; returns the exit status ``ginlight-train`` would
    give: 0 completed, 2 a configuration error, else 1."""
    if outcome.error is not None:
        print(f"{COMMAND}: error: {outcome.error}", file=sys.stderr)
        return 2 if outcome.error.kind == "config" else 1
    print(f"{COMMAND}: {outcome.status}; run directory: {outcome.run_dir}")
    return 0 if outcome.status == Status.COMPLETED else 1


def run(gin_files: Sequence[str | os.PathLike], bindings: Sequence[str], *, search_paths: Sequence[str | os.PathLike],
        projects: Sequence[str], root_dir: str | os.PathLike, run_dir: str | os.PathLike, outcome_file: Path,
        argv: Sequence[str]) -> Outcome:
    """Runs the trial in ``run_dir``; returns its outcome, and writes a failure its ``run.json`` does not record
    into ``outcome_file``.

    A :class:`ConfigError` or :class:`RunError` is the outcome's error. Any other
    exception fails the trial too, and is raised again for its traceback.
    """
    try:
        result = experiment.train(gin_files, bindings, search_paths=search_paths, projects=projects,
                                  root_dir=root_dir, run_dir=run_dir, argv=argv)
    except ConfigError as exc:
        return _failed(Path(run_dir), outcome_file, TrialError("config", exc.message, exc.location, exc.hint))
    except RunError as exc:
        return _failed(Path(run_dir), outcome_file, TrialError("run", str(exc)))
    except Exception as exc:  # a failure ginlight did not foresee, worded as run.json words one
        _failed(Path(run_dir), outcome_file, TrialError("run", f"{type(exc).__name__}: {exc}"))
        raise
    return Outcome(result.status, str(result.run_dir), result.metrics)


def _failed(run_dir: Path, outcome_file: Path, error: TrialError) -> Outcome:
    """The outcome of a trial that failed with ``error``. Its ``run.json`` records a failure in its run; one
    before or outside it (no record, or one still running) goes into the outcome file."""
    recorded = _recorded(rundir.RunDir(run_dir))
    if recorded is None or recorded.status != Status.FAILED:
        rundir.write_atomic(outcome_file, json.dumps(asdict(error), indent=2) + "\n")
    return Outcome.failed(run_dir, error)
