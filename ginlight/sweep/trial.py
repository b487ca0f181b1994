"""A sweep's trial: its run, and the outcome file through which it reports how the run ended.

A trial is a process of its own, so gin's global state never leaks between trials:
forked from a warm worker here (:mod:`ginlight.sweep.warm`), or
``python -m ginlight.cli.trial`` (:meth:`TrialSpec.command`) as a SLURM job. Either way it is
described by a :class:`TrialSpec`, trains through the library (:func:`run`, which calls
:func:`ginlight.experiment.train`) and writes an :class:`Outcome` as JSON into the
file the sweep named, ``logs/trial-NNN.outcome.json``: the status, the final
metrics, the run directory, and the error, a configuration error with its
``file:line`` and hint. The sweep learns how a trial ended from that file alone,
never from what the trial printed (its log). A process killed before it could
write the file leaves none.
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
    """How a trial ended, as its process wrote it.

    ``status`` is the run's (``completed``, ``pruned``, ``interrupted``, ``failed``);
    ``run_dir`` is None, and ``metrics`` empty, when the trial failed before its run started.
    """

    status: str
    run_dir: str | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    error: TrialError | None = None

    def write(self, path: Path) -> None:
        rundir.write_atomic(path, json.dumps(asdict(self), indent=2) + "\n")

    @classmethod
    def read(cls, path: Path) -> Outcome | None:
        """The outcome in ``path``; None when the trial's process wrote none."""
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            return None
        error = data.pop("error")
        return cls(**data, error=None if error is None else TrialError(**error))


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
    """Runs the trial in ``run_dir`` and writes its outcome into ``outcome_file``; returns the outcome.

    A :class:`ConfigError` or :class:`RunError` is the outcome's error. Any other
    exception fails the trial too, and is raised again for its traceback.
    """
    try:
        result = experiment.train(gin_files, bindings, search_paths=search_paths, projects=projects,
                                  root_dir=root_dir, run_dir=run_dir, argv=argv)
    except ConfigError as exc:
        outcome = Outcome(Status.FAILED, error=TrialError("config", exc.message, exc.location, exc.hint))
    except RunError as exc:
        outcome = _failed_run(rundir.RunDir(run_dir), str(exc))
    except Exception as exc:  # a failure ginlight did not foresee, worded as run.json words one
        _failed_run(rundir.RunDir(run_dir), f"{type(exc).__name__}: {exc}").write(outcome_file)
        raise
    else:
        outcome = Outcome(result.status, str(result.run_dir), result.metrics)
        if not result.recorded:  # another rank of a multi-process run: rank 0 reports the run
            return outcome
    outcome.write(outcome_file)
    return outcome


def _failed_run(run: rundir.RunDir, message: str) -> Outcome:
    """A run that failed: its directory and the metrics it recorded, if it got that far."""
    try:
        metrics = run.read_record().metrics
    except ConfigError:  # no record, or one cut short
        metrics = {}
    return Outcome(Status.FAILED, str(run.path) if run.recognises(run.path) else None, metrics, TrialError("run", message))
