"""The sweep's progress: a line on the console per finished trial, and the results rewritten from the study."""

from __future__ import annotations

import threading
import time
from typing import Callable, Sequence

import optuna

from ginlight.rundir import Status
from ginlight.sweep.reports import FINISHED, SweepResult, TrialRow, best_of, trial_rows, write_results
from ginlight.sweep.space import Parameter
from ginlight.sweep.study import trial_log

__all__ = ["Progress", "PLOT_EVERY_S"]

#: The plot is redrawn after a trial only this long after its last drawing, and always at the sweep's end:
#: drawing it took 0.16 s, a third of a short trial, while the other results take milliseconds.
PLOT_EVERY_S = 30.0


class Progress:
    """An Optuna callback of ``study.optimize``: after each trial, its line and the results so far.

    ``result_of`` makes the sweep's result of its rows; :meth:`say` is the one way the sweep's
    threads print, a line at a time. The plot is redrawn at most every :data:`PLOT_EVERY_S`.
    """

    def __init__(self, result_of: Callable[[list[TrialRow]], SweepResult], space: Sequence[Parameter], mode: str,
                 pruner: str):
        self.result_of = result_of
        self.space = space
        self.mode = mode
        self.pruner = pruner
        self.output_lock = threading.Lock()
        self.results_lock = threading.Lock()
        self.plotted_at = time.monotonic()  # the sweep's start: its first trials are not worth a plot

    def say(self, text: str) -> None:
        with self.output_lock:
            print(text, flush=True)

    def write(self, rows: list[TrialRow], plot: bool = True) -> None:
        """Rewrites ``sweep.csv``, ``summary.md``, ``best_config.gin`` and, with ``plot``, the plot
        (:func:`write_results`)."""
        with self.results_lock:
            write_results(self.result_of(rows), self.space, self.mode, self.pruner, plot)
            if plot:
                self.plotted_at = time.monotonic()

    def __call__(self, study: optuna.Study, frozen: optuna.trial.FrozenTrial) -> None:
        rows = trial_rows(study, self.space)
        row = next((r for r in rows if r.number == frozen.number), None)
        if row is None:  # surplus, or requeued
            return
        self.say(self._line(row, self.result_of(rows)))
        self.write(rows, plot=time.monotonic() - self.plotted_at >= PLOT_EVERY_S)

    def _line(self, row: TrialRow, result: SweepResult) -> str:
        """``[3/4] trial-002 completed in 21.3 s (...): val/accuracy = 0.25; best trial-002: 0.25``."""
        done = sum(r.status in FINISHED for r in result.rows)
        values = ", ".join(f"{key}={value}" for key, value in row.params.items())
        status = f"pruned after {row.stopped_at}" if row.status == Status.PRUNED else row.status
        line = f"[{done}/{result.budget}] {row.name} {status} in {row.duration_s or 0:.1f} s ({values})"
        if row.status not in (Status.COMPLETED, Status.PRUNED):
            return line + f": {(row.error or '').splitlines()[0]} (log: {trial_log(result.sweep_dir, row.name)})"
        if row.objective is not None:
            line += f": {result.objective} = {row.objective:.4g}"
        best = best_of(result.rows, result.direction)
        return line if best is None else line + f"; best {best.name}: {best.objective:.4g}"
