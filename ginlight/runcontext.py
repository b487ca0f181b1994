"""A run's context, passed down explicitly: its directory, seed, rank role, tracker root and sweep trial; and the
environment variables that carry it across a process boundary, the only module that sets or reads them.

Two boundaries are crossed:

- a sweep starts each trial's process with :data:`TRIAL_ENV` (:func:`trial_environment`): the study and trial
  the run reports to;
- while a run's stage runs, the process that writes the run exports :data:`RUN_DIR_ENV` and :data:`SEED_ENV`
  (and the trial) (:func:`exported`): Lightning's DDP launcher starts the other ranks by running the command
  again, with a copy of this environment, and they join rank 0's run instead of starting their own.

A process reads them once, as its run starts (:func:`inherited`), and removes them from its environment, so that
the processes its user code starts inherit no role. Rank 0's user code still sees them while the stage runs
(a process it starts then is told apart: it is not a rank Lightning started, and takes no role from them).
"""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from ginlight import internals

__all__ = ["RUN_DIR_ENV", "SEED_ENV", "TRIAL_ENV", "RunContext", "Inherited", "inherited", "exported",
           "trial_environment"]

RUN_DIR_ENV = "GINLIGHT_RUN_DIR"
SEED_ENV = "GINLIGHT_SEED"
TRIAL_ENV = "GINLIGHT_TRIAL"


@dataclass(frozen=True)
class RunContext:
    """One run as the process running it sees it, handed from :mod:`ginlight.experiment` to what it builds.

    Attributes:
        run_dir: the run directory (rank 0's, in every rank).
        root: where trackers bound without a location keep their local stores (``--root_dir``).
        seed: the run's seed, the same in every rank.
        writer: whether this process writes the run's records: the only process, or rank 0; other ranks
            share rank 0's directory and write nothing.
        trial: the sweep trial the run reports to (study, storage, number, pruner, objective), if any.
    """

    run_dir: Path
    root: Path
    seed: int = 0
    writer: bool = True
    trial: dict[str, Any] | None = None


@dataclass(frozen=True)
class Inherited:
    """What a process learnt from the environment it started with (:func:`inherited`).

    ``run_dir`` and ``seed`` are rank 0's, in a rank Lightning's launcher started; ``trial`` is the sweep
    trial, in a trial's process and its ranks.
    """

    run_dir: Path | None = None
    seed: int | None = None
    trial: dict[str, Any] | None = None


def inherited() -> Inherited:
    """The context this process inherited, removed from its environment (the processes it starts inherit none).

    Rank 0's run directory and seed count only in a rank that Lightning's launcher started; elsewhere (a process
    the user's code started while a run ran) they, and the trial beside them, say nothing about this process.
    """
    run_dir, seed, trial = (os.environ.pop(name, None) for name in (RUN_DIR_ENV, SEED_ENV, TRIAL_ENV))
    if run_dir is not None and not internals.started_by_lightning_launcher():
        return Inherited()
    return Inherited(run_dir=Path(run_dir) if run_dir else None, seed=int(seed) if seed else None,
                     trial=json.loads(trial) if trial else None)


@contextlib.contextmanager
def exported(context: RunContext) -> Iterator[None]:
    """``context`` in the environment while the block runs, for the ranks Lightning's launcher starts in it."""
    values = {RUN_DIR_ENV: str(context.run_dir.resolve()), SEED_ENV: str(context.seed),
              **trial_environment(context.trial)}
    saved = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def trial_environment(trial: dict[str, Any] | None) -> dict[str, str]:
    """The environment that tells a process which sweep trial its run reports to; empty for none."""
    return {} if trial is None else {TRIAL_ENV: json.dumps(trial)}
