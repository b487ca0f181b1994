"""The sweep's results, read from its study: ``sweep.csv``, ``summary.md``, ``best_config.gin`` and the plot.

They are rewritten after every trial, so they show the sweep so far.
"""

from __future__ import annotations

import csv
import io
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import optuna
from optuna.trial import TrialState

from ginlight import rundir
from ginlight.callbacks.trial_reporter import UNIT_ATTR
from ginlight.rundir import Status
from ginlight.sweep.space import Parameter
from ginlight.sweep.study import MAX_RETRIES, SKIPPED

__all__ = ["TrialRow", "SweepResult", "trial_rows", "write_results"]

#: The result files of a sweep directory.
CSV = "sweep.csv"
SUMMARY = "summary.md"
BEST_CONFIG = "best_config.gin"
PLOT = "objective.png"

_STATUS = {TrialState.COMPLETE: Status.COMPLETED, TrialState.PRUNED: Status.PRUNED, TrialState.FAIL: Status.FAILED,
           TrialState.RUNNING: Status.RUNNING, TrialState.WAITING: Status.WAITING}
#: The statuses of a trial that will not run again.
FINISHED = (Status.COMPLETED, Status.PRUNED, Status.FAILED)


@dataclass
class TrialRow:
    """One trial of the sweep, as ``sweep.csv`` shows it."""

    number: int
    params: dict[str, str]
    status: str  # completed, pruned, failed, running or waiting
    objective: float | None = None  # a pruned trial's: at its last validation
    metrics: dict[str, float] = field(default_factory=dict)
    error: str | None = None
    host: str | None = None
    run_dir: str | None = None
    duration_s: float | None = None
    stopped_at: str | None = None  # the last validation's epoch (from 1) or step: "epoch 2"
    operative_config: str | None = field(default=None, repr=False)

    @property
    def name(self) -> str:
        return trial_name(self.number)


def trial_name(number: int) -> str:
    """``trial-NNN``: a trial's run directory, log and outcome file are named after it."""
    return f"trial-{number:03d}"


@dataclass
class SweepResult:
    """What :func:`ginlight.sweep.run_sweep` returns."""

    sweep_dir: Path
    study: str
    budget: int
    objective: str
    direction: str
    rows: list[TrialRow]

    @property
    def best(self) -> TrialRow | None:
        return best_of(self.rows, self.direction)

    def count(self, status: str) -> int:
        return sum(row.status == status for row in self.rows)


def trial_rows(study: optuna.Study, space: Sequence[Parameter]) -> list[TrialRow]:
    """The sweep's trials: all but those rerun under a new number and surplus ones never run."""
    trials = study.get_trials(deepcopy=False)
    rerun = {number for trial in trials for number in trial.system_attrs.get("retry_history", [])}
    rows = []
    for trial in trials:
        if SKIPPED in trial.user_attrs or trial.number in rerun:
            continue
        attrs = trial.user_attrs if trial.state != TrialState.WAITING else {}  # a rerun's are its predecessor's
        error = attrs.get("error")
        if trial.state == TrialState.FAIL and error is None:
            error = f"it stopped before finishing (its worker died or was interrupted) {MAX_RETRIES + 1} times"
        stopped_at = None
        if trial.last_step is not None and trial.state in (TrialState.COMPLETE, TrialState.PRUNED):
            unit = attrs.get(UNIT_ATTR, "epoch")
            stopped_at = f"{unit} {trial.last_step + (unit == 'epoch')}"
        rows.append(TrialRow(
            number=trial.number,
            params={p.key: p.text(trial.params[p.key]) for p in space if p.key in trial.params},
            status=_STATUS[trial.state],
            objective=trial.value if trial.state in (TrialState.COMPLETE, TrialState.PRUNED) else None,
            metrics=attrs.get("metrics", {}),
            error=error,
            host=attrs.get("host"),
            run_dir=attrs.get("run_dir"),
            duration_s=attrs.get("duration_s"),
            stopped_at=stopped_at,
            operative_config=attrs.get("operative_config"),
        ))
    return rows


def best_of(rows: Sequence[TrialRow], direction: str) -> TrialRow | None:
    """The completed trial with the best objective, if any."""
    done = [row for row in rows if row.status == Status.COMPLETED]
    if not done:
        return None
    return (max if direction == "max" else min)(done, key=lambda row: row.objective)


def _ranked(rows: Sequence[TrialRow], direction: str) -> list[TrialRow]:
    """Completed trials best first, then the pruned (by their last value), those still to finish, the failed."""
    sign = -1 if direction == "max" else 1
    order = {Status.COMPLETED: 0, Status.PRUNED: 1, Status.RUNNING: 2, Status.WAITING: 2, Status.FAILED: 3}
    return sorted(rows, key=lambda r: (order[r.status], sign * r.objective if r.objective is not None else 0, r.number))


def write_results(result: SweepResult, space: Sequence[Parameter], mode: str, pruner_name: str,
                  plot: bool = True) -> None:
    """``sweep.csv``, ``summary.md``, ``best_config.gin`` and, with ``plot``, the plot, from the study."""
    _write_csv(result, space)
    _write_summary(result, space, mode, pruner_name)
    best = result.best
    if best is not None and best.operative_config is not None:
        path = result.sweep_dir / BEST_CONFIG
        header = (f"# The best trial of sweep {result.study}: {best.name}, "
                  f"{result.objective} = {best.objective:.6g} ({result.direction}).\n"
                  f"# Rerun it with: ginlight-train --gin_file={path}\n")
        rundir.write_atomic(path, header + best.operative_config)
    if plot and result.count(Status.COMPLETED):
        _plot(result, space)


def _metric_names(result: SweepResult) -> list[str]:
    return sorted({name for row in result.rows for name in row.metrics} - {result.objective})


def _write_csv(result: SweepResult, space: Sequence[Parameter]) -> None:
    metrics = _metric_names(result)
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(["trial", *(p.key for p in space), "status", "objective", "stopped_at", *metrics, "error",
                     "host", "run_dir"])
    for row in result.rows:
        writer.writerow([
            row.number, *(row.params.get(p.key, "") for p in space), row.status,
            "" if row.objective is None else repr(row.objective), row.stopped_at or "",
            *(repr(row.metrics[m]) if m in row.metrics else "" for m in metrics),
            row.error or "", row.host or "", row.run_dir or "",
        ])
    rundir.write_atomic(result.sweep_dir / CSV, text.getvalue())


def _write_summary(result: SweepResult, space: Sequence[Parameter], mode: str, pruner_name: str) -> None:
    def cell(text: Any) -> str:
        return str(text).splitlines()[0].replace("|", "\\|") if text not in (None, "") else ""

    done = sum(result.count(status) for status in FINISHED)
    pruner = f" Pruner: {pruner_name}; a pruned trial's `{result.objective}` is at its last validation." \
        if pruner_name != "none" else ""
    lines = [
        f"# Sweep {result.study}",
        "",
        f"{mode} search over {', '.join(f'`{p}`' for p in space)}.{pruner}",
        f"Objective: `{result.objective}` ({result.direction}). "
        f"{done} of {result.budget} trials finished: {result.count(Status.COMPLETED)} completed, "
        f"{result.count(Status.PRUNED)} pruned, {result.count(Status.FAILED)} failed.",
        "",
    ]
    best = result.best
    if best is not None:
        lines += [f"Best: {best.name}, `{result.objective}` = {best.objective:.6g}. Rerun it with:", "",
                  f"    ginlight-train --gin_file={result.sweep_dir / BEST_CONFIG}", ""]
    header = ["rank", "trial", *(f"`{p.key}`" for p in space), "status", f"`{result.objective}`", "stopped at",
              "error", "run directory"]
    lines += ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    for rank, row in enumerate(_ranked(result.rows, result.direction), 1):
        objective = "" if row.objective is None else f"{row.objective:.6g}"
        cells = [rank if row.status == Status.COMPLETED else "", row.name,
                 *(f"`{row.params.get(p.key, '')}`" for p in space),
                 row.status, objective, row.stopped_at, row.error, row.run_dir]
        lines.append("| " + " | ".join(cell(c) for c in cells) + " |")
    rundir.write_atomic(result.sweep_dir / SUMMARY, "\n".join(lines) + "\n")


def _plot(result: SweepResult, space: Sequence[Parameter]) -> None:
    """The objective against each swept parameter, one panel each; the best trial starred, pruned ones crossed
    at their last value."""
    # Imported here, where a plot is drawn: it is slow to import, and each trial's process imports this
    # package. No pyplot: no global backend, safe from worker threads.
    from matplotlib.figure import Figure

    done = [row for row in result.rows if row.status == Status.COMPLETED and len(row.params) == len(space)]
    pruned = [row for row in result.rows if row.status == Status.PRUNED and row.objective is not None
              and len(row.params) == len(space)]
    best = result.best
    figure = Figure(figsize=(4 * len(space), 3.4), layout="constrained")
    for axes, parameter in zip(figure.subplots(1, len(space), squeeze=False)[0], space):
        axes.scatter([parameter.position(r.params[parameter.key]) for r in done], [r.objective for r in done],
                     color="tab:blue", alpha=0.7, label=Status.COMPLETED)
        if pruned:
            axes.scatter([parameter.position(r.params[parameter.key]) for r in pruned],
                         [r.objective for r in pruned], marker="x", color="tab:gray", label="pruned (last value)")
            axes.legend(loc="best", fontsize="small")
        axes.scatter([parameter.position(best.params[parameter.key])], [best.objective], marker="*", s=250,
                     color="tab:red")
        if parameter.log_scale:
            axes.set_xscale("log")
        if parameter.kind == "choice":
            axes.set_xticks([parameter.position(c) for c in parameter.choices], parameter.choices,
                            rotation=0 if parameter.numeric else 30, ha="center" if parameter.numeric else "right")
            axes.minorticks_off()
        axes.margins(x=0.1, y=0.1)
        axes.set_xlabel(parameter.key)
        axes.set_ylabel(result.objective)
    figure.suptitle(f"{result.study}: {result.objective} ({result.direction}), best {best.name} starred")
    path = result.sweep_dir / PLOT
    partial = path.with_name(f".{path.name}.partial")
    figure.savefig(partial, format="png", dpi=100)
    os.replace(partial, path)
