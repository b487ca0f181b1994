"""A trial's outcome file: how its process ended, written by :mod:`ginlight.sweep.trial`, read by the sweep.

JSON, in ``logs/trial-NNN.outcome.json`` of the sweep directory: the status, the
final metrics, the run directory, and the error, a configuration error with its
``file:line`` and hint. The sweep learns how a trial ended from this file alone,
never from what the trial printed.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ginlight import rundir
from ginlight.errors import ConfigError

__all__ = ["Outcome", "TrialError"]


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
