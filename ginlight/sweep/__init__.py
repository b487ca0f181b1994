"""Sweeps: many ginlight runs from one config, chosen by Optuna, resumable and spread over workers.

A sweep is an Optuna study in RDB storage: an SQLite file in the sweep directory,
or a server such as PostgreSQL that workers on several machines share. Grid,
random and TPE search are Optuna's GridSampler, RandomSampler and TPESampler, so
every mode runs through the same loop. Each trial is a full ``ginlight-train``
run in its own process (gin's global state never leaks between trials), in
``<sweep directory>/trial-NNN/``.

Fault tolerance is Optuna's own mechanism: while a trial runs, its worker records
a heartbeat in the storage every :data:`HEARTBEAT_S` seconds. A RUNNING trial
whose heartbeat is older than :data:`GRACE_S` belonged to a worker that died; the
next worker to look fails it and ``RetryHeartbeatStaleTrialCallback`` enqueues a
copy with the same parameters, which the next free worker runs. A trial the sweep
stops itself (Ctrl-C, SIGTERM) is re-enqueued the same way at once.

With a pruner, each trial's process reports its objective to its Optuna trial at
every validation and stops when pruned (:mod:`ginlight.pruning`).
"""

from __future__ import annotations

import copy
import csv
import hashlib
import io
import json
import math
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import tokenize
import warnings
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Sequence

import optuna
import gin
from gin import config_parser
from optuna.trial import TrialState

from ginlight import config, pruning, rundir
from ginlight.errors import ConfigError

if TYPE_CHECKING:
    from ginlight.slurm import SlurmLauncher

__all__ = ["Parameter", "SweepResult", "TrialRow", "parse_parameter", "load_search_space", "run_sweep"]

MODES = ("grid", "random", "tpe")
DIRECTIONS = {"max": "maximize", "min": "minimize"}
#: How often a running trial's worker proves it is alive, and how long a silent one is waited for.
HEARTBEAT_S = 5
GRACE_S = 20
#: How many times a trial whose worker died, or that was interrupted, is rerun.
MAX_RETRIES = 3

#: The files of a sweep directory.
RECORD = "sweep.json"
DATABASE = "study.db"
CSV = "sweep.csv"
SUMMARY = "summary.md"
BEST_CONFIG = "best_config.gin"
PLOT = "objective.png"
LOG = "sweep.log"
TRIAL_LOGS = "logs"

_DEFINITION_ATTR = "ginlight_sweep"
_DEFAULT_OBJECTIVE = ("val/loss", "min")
_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
_HINT = ("Write `configurable.parameter = [value, ...]` in gin syntax, or a distribution: "
         "loguniform(low, high), uniform(low, high), int(low, high), choice(value, ...).")
_DISTRIBUTION = re.compile(
    r"^(?P<key>[^=]*=)\s*(?P<kind>loguniform|uniform|int|choice)\s*\((?P<args>.*)\)\s*$", re.S)


# ---- the search space -------------------------------------------------------------------------


@dataclass(frozen=True)
class Parameter:
    """One swept binding: a list of gin values to choose from, or a range to sample.

    Attributes:
        key: what is bound, ``[scope/]configurable.parameter`` or a macro name.
        kind: ``choice`` (a list), ``uniform``, ``loguniform`` or ``int``.
        choices: the gin text of each value of a ``choice``.
        low, high: the range of the other kinds.
        where: where the line was written (``--sweep`` or ``file:line``), for errors.
        values: the parsed choices (numbers decide the plot's axis).
    """

    key: str
    kind: str
    choices: tuple[str, ...] = ()
    low: float = 0
    high: float = 0
    where: str = "--sweep"
    values: tuple[Any, ...] = field(default=(), compare=False, repr=False)

    def __str__(self) -> str:
        if self.kind == "choice":
            return f"{self.key} = [{', '.join(self.choices)}]"
        return f"{self.key} = {self.kind}({self.low!r}, {self.high!r})"

    def suggest(self, trial: optuna.Trial) -> str:
        """Draws this parameter for ``trial`` (or reads it back on a rerun); returns gin text."""
        if self.kind == "choice":
            return trial.suggest_categorical(self.key, self.choices)
        if self.kind == "int":
            return repr(trial.suggest_int(self.key, self.low, self.high))
        return repr(trial.suggest_float(self.key, self.low, self.high, log=self.kind == "loguniform"))

    def text(self, value: Any) -> str:
        """A value Optuna stored for this parameter, as gin text."""
        return value if self.kind == "choice" else repr(value)

    def binding(self, text: str) -> str:
        return f"{self.key} = {text}"

    def extremes(self) -> list[str]:
        """The values that checking the configuration tries: every choice, or both ends."""
        return list(self.choices) if self.kind == "choice" else [repr(self.low), repr(self.high)]

    @property
    def numeric(self) -> bool:
        return self.kind != "choice" or all(_is_number(value) for value in self.values)

    @property
    def log_scale(self) -> bool:
        if self.kind != "choice":
            return self.kind == "loguniform"
        numbers = [float(value) for value in self.values] if self.numeric else []
        return bool(numbers) and min(numbers) > 0 and max(numbers) >= 100 * min(numbers)

    def position(self, text: str) -> float:
        """Where a value goes on a plot's axis: the number itself, or the choice's index."""
        if self.kind != "choice":
            return float(text)
        index = self.choices.index(text)
        return float(self.values[index]) if self.numeric else float(index)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def parse_parameter(line: str, where: str = "--sweep") -> Parameter:
    """Reads one sweep line, ``key = [v1, v2, ...]`` or ``key = loguniform(a, b)``, with gin's parser."""
    match = _DISTRIBUTION.match(line)
    kind = match["kind"] if match else "choice"
    statement = _parse_binding(f"{match['key']} [{match['args']}]" if match else line, line, where)
    name = f"{statement.selector}.{statement.arg_name}" if statement.arg_name else statement.selector
    key = f"{statement.scope}/{name}" if statement.scope else name
    values = statement.value

    def error(message: str) -> ConfigError:
        return ConfigError(f"sweep line `{line.strip()}`: {message}", location=where, hint=_HINT)

    if not isinstance(values, list):
        raise error("gives one value; give a list of values or a distribution.")
    if kind == "choice":
        choices = tuple(repr(value) for value in values)
        if not choices:
            raise error("has no values.")
        repeated = sorted({choice for choice in choices if choices.count(choice) > 1})
        if repeated:
            raise error(f"lists {', '.join(repeated)} more than once.")
        return Parameter(key, kind, choices, where=where, values=tuple(values))
    if len(values) != 2 or not all(_is_number(value) for value in values):
        raise error(f"{kind}(low, high) takes two numbers.")
    low, high = values
    if kind == "int" and not all(isinstance(value, int) for value in values):
        raise error("int(low, high) takes two integers.")
    if not low < high:
        raise error(f"{kind}(low, high) needs low < high.")
    if kind == "loguniform" and low <= 0:
        raise error("loguniform(low, high) needs 0 < low.")
    return Parameter(key, kind, low=low, high=high, where=where)


def _parse_binding(text: str, line: str, where: str) -> config_parser.BindingStatement:
    parser = config_parser.ConfigParser(text, config.UnresolvedReferences())
    try:
        statement = parser.parse_statement()
        trailing = statement is not None and parser.current_token.type != tokenize.ENDMARKER
    except (SyntaxError, tokenize.TokenError) as exc:
        message = exc.msg if isinstance(exc, SyntaxError) else f"{exc.args[0]} (an unclosed bracket or quote?)"
        raise ConfigError(f"cannot read sweep line `{line.strip()}`: {message}", location=where, hint=_HINT) from None
    if not isinstance(statement, config_parser.BindingStatement) or trailing:
        raise ConfigError(f"sweep line `{line.strip()}` is not one binding.", location=where, hint=_HINT)
    return statement


def load_search_space(lines: Sequence[str] = (), sweep_file: str | os.PathLike | None = None) -> list[Parameter]:
    """The parameters of ``--sweep`` lines and of a sweep file (one line each; ``#`` comments)."""
    space = [parse_parameter(line) for line in lines]
    if sweep_file is not None:
        try:
            text = Path(sweep_file).read_text()
        except OSError as exc:
            raise ConfigError(f"cannot read the sweep file: {exc}.", hint="Check --sweep_file.") from None
        for number, line in enumerate(text.splitlines(), 1):
            if line.strip() and not line.strip().startswith("#"):
                space.append(parse_parameter(line, f"{sweep_file}:{number}"))
    keys = [parameter.key for parameter in space]
    for parameter in space:
        if keys.count(parameter.key) > 1:
            raise ConfigError(f"'{parameter.key}' is swept more than once.", location=parameter.where,
                              hint="Give each binding one sweep line.")
    if not space:
        raise ConfigError("nothing to sweep.",
                          hint="Pass --sweep='configurable.parameter=[value, ...]' (repeatable) or --sweep_file.")
    return space


# ---- results ----------------------------------------------------------------------------------


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
        return f"trial-{self.number:03d}"


@dataclass
class SweepResult:
    """What :func:`run_sweep` returns."""

    sweep_dir: Path
    study: str
    budget: int
    objective: str
    direction: str
    rows: list[TrialRow]

    @property
    def best(self) -> TrialRow | None:
        return _best(self.rows, self.direction)

    def count(self, status: str) -> int:
        return sum(row.status == status for row in self.rows)


_STATUS = {TrialState.COMPLETE: "completed", TrialState.PRUNED: "pruned", TrialState.FAIL: "failed",
           TrialState.RUNNING: "running", TrialState.WAITING: "waiting"}
_FINISHED = ("completed", "pruned", "failed")
#: The user attribute of a trial the sweep did not run (:meth:`_Sweep._skip` says why): it is left out of the results.
_SKIPPED = "skipped"
#: The user attribute a worker sets, to its trial's number, once the trial's heartbeat is recorded.
_STARTED = "started_as"


def _rows(study: optuna.Study, space: Sequence[Parameter]) -> list[TrialRow]:
    """The sweep's trials: all but those rerun under a new number and surplus ones never run."""
    trials = study.get_trials(deepcopy=False)
    rerun = {number for trial in trials for number in trial.system_attrs.get("retry_history", [])}
    rows = []
    for trial in trials:
        if _SKIPPED in trial.user_attrs or trial.number in rerun:
            continue
        attrs = trial.user_attrs if trial.state != TrialState.WAITING else {}  # a rerun's are its predecessor's
        error = attrs.get("error")
        if trial.state == TrialState.FAIL and error is None:
            error = f"it stopped before finishing (its worker died or was interrupted) {MAX_RETRIES + 1} times"
        stopped_at = None
        if trial.last_step is not None and trial.state in (TrialState.COMPLETE, TrialState.PRUNED):
            unit = attrs.get(pruning.UNIT_ATTR, "epoch")
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


def _best(rows: Sequence[TrialRow], direction: str) -> TrialRow | None:
    done = [row for row in rows if row.status == "completed"]
    if not done:
        return None
    return (max if direction == "max" else min)(done, key=lambda row: row.objective)


def _ranked(rows: Sequence[TrialRow], direction: str) -> list[TrialRow]:
    """Completed trials best first, then the pruned (by their last value), those still to finish, the failed."""
    sign = -1 if direction == "max" else 1
    order = {"completed": 0, "pruned": 1, "running": 2, "waiting": 2, "failed": 3}
    return sorted(rows, key=lambda r: (order[r.status], sign * r.objective if r.objective is not None else 0, r.number))


def _write_results(result: SweepResult, space: Sequence[Parameter], mode: str, pruner_name: str) -> None:
    """``sweep.csv``, ``summary.md``, ``best_config.gin`` and the plot, from the study."""
    _write_csv(result, space)
    _write_summary(result, space, mode, pruner_name)
    best = result.best
    if best is not None and best.operative_config is not None:
        path = result.sweep_dir / BEST_CONFIG
        header = (f"# The best trial of sweep {result.study}: {best.name}, "
                  f"{result.objective} = {best.objective:.6g} ({result.direction}).\n"
                  f"# Rerun it with: ginlight-train --gin_file={path}\n")
        rundir.write_atomic(path, header + best.operative_config)
    if result.count("completed"):
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

    done = sum(result.count(status) for status in _FINISHED)
    pruner = f" Pruner: {pruner_name}; a pruned trial's `{result.objective}` is at its last validation." \
        if pruner_name != "none" else ""
    lines = [
        f"# Sweep {result.study}",
        "",
        f"{mode} search over {', '.join(f'`{p}`' for p in space)}.{pruner}",
        f"Objective: `{result.objective}` ({result.direction}). "
        f"{done} of {result.budget} trials finished: {result.count('completed')} completed, "
        f"{result.count('pruned')} pruned, {result.count('failed')} failed.",
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
        cells = [rank if row.status == "completed" else "", row.name, *(f"`{row.params.get(p.key, '')}`" for p in space),
                 row.status, objective, row.stopped_at, row.error, row.run_dir]
        lines.append("| " + " | ".join(cell(c) for c in cells) + " |")
    rundir.write_atomic(result.sweep_dir / SUMMARY, "\n".join(lines) + "\n")


def _plot(result: SweepResult, space: Sequence[Parameter]) -> None:
    """The objective against each swept parameter, one panel each; the best trial starred, pruned ones crossed
    at their last value."""
    from matplotlib.figure import Figure  # no pyplot: no global backend, safe from worker threads

    done = [row for row in result.rows if row.status == "completed" and len(row.params) == len(space)]
    pruned = [row for row in result.rows if row.status == "pruned" and row.objective is not None
              and len(row.params) == len(space)]
    best = result.best
    figure = Figure(figsize=(4 * len(space), 3.4), layout="constrained")
    for axes, parameter in zip(figure.subplots(1, len(space), squeeze=False)[0], space):
        axes.scatter([parameter.position(r.params[parameter.key]) for r in done], [r.objective for r in done],
                     color="tab:blue", alpha=0.7, label="completed")
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


# ---- running trials ---------------------------------------------------------------------------


class TrialFailed(Exception):
    """A trial's run failed; the sweep records it and goes on."""


class _Requeued(Exception):
    """A trial was stopped from outside; a copy with the same parameters waits to run."""


@dataclass
class _Outcome:
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


class _Sweep:
    """Runs one study's trials on ``workers`` threads, each driving ``ginlight-train`` processes."""

    def __init__(self, study: optuna.Study, storage: optuna.storages.RDBStorage, space: Sequence[Parameter],
                 budget: int, objective: str, direction: str, sweep_dir: Path, base_command: list[str], workers: int,
                 write_results: Callable[[list[TrialRow]], None], report_to: dict[str, Any],
                 start: Callable[[list[str], Path, dict[str, str]], Any]):
        self.study = study
        self.storage = storage
        self.study_id = storage.get_study_id_from_name(study.study_name)
        self.report_to = report_to  # what a trial's process needs to report to its trial (ginlight.pruning)
        self.space = space
        self.budget = budget
        self.objective = objective
        self.direction = direction
        self.sweep_dir = sweep_dir
        self.base_command = base_command
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
        self.children: set[subprocess.Popen] = set()
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
            rows=_rows(self.study, self.space),
            fresh=sum(_takes_a_slot(trial) for trial in trials),
            waiting=states.count(TrialState.WAITING),
            running=states.count(TrialState.RUNNING),
        )

    def _fail_silent_trials(self) -> None:
        """Fails, and queues a rerun of, each RUNNING trial that stayed unmarked for :data:`GRACE_S`.

        Optuna declares a trial dead only when its heartbeat gets old, so a trial whose
        worker died before recording the first one would run forever. A worker marks its
        trial (:data:`_STARTED`) once it has recorded that heartbeat itself; a trial left
        unmarked that long belongs to a dead worker. The silence is timed by this
        worker's own clock, so the clocks of other machines do not matter.
        """
        now = time.monotonic()
        unmarked = {t.number for t in self.study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
                    if t.user_attrs.get(_STARTED) != t.number}
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
        failed = [row.number for row in _rows(self.study, self.space) if row.status == "failed"]
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
            self.say(f"trial-{number:03d} was declared dead by another worker (no heartbeat for {GRACE_S} s) "
                     "and runs again under a new number; this result is discarded.")
        finally:
            with self.changed:
                self.changed.notify_all()

    def _objective(self, trial: optuna.Trial) -> float:
        self.local.number = trial.number
        # Optuna's heartbeat thread records its first beat in the background: record one now, then mark.
        self.storage.record_heartbeat(self._trial_id(trial.number))
        trial.set_user_attr(_STARTED, trial.number)
        skip = self._skip(trial.number)
        if skip is not None:
            trial.set_user_attr(_SKIPPED, skip)
            raise optuna.TrialPruned(skip)
        values = {parameter.key: parameter.suggest(trial) for parameter in self.space}
        name = f"trial-{trial.number:03d}"
        run_dir = self.sweep_dir / name
        trial.set_user_attr("run_dir", str(run_dir.resolve()))
        trial.set_user_attr("host", socket.gethostname())
        outcome = self._train(trial.number, values, run_dir)
        if outcome.status == "interrupted":
            self.retry(self.study, copy.deepcopy(self._frozen(trial.number)))
            raise _Requeued(name)
        error, value = outcome.error, outcome.metrics.get(self.objective)
        unknown_objective = outcome.status == "completed" and value is None
        if unknown_objective:
            error = (f"the run has no final metric '{self.objective}'; it has "
                     f"{', '.join(sorted(outcome.metrics)) or 'none'}.")
        elif outcome.status == "completed" and not math.isfinite(value):
            error = f"the objective {self.objective} is {value}."
        for key, attr in dict(metrics=outcome.metrics, error=error, duration_s=round(outcome.duration_s, 2),
                              operative_config=outcome.operative_config).items():
            trial.set_user_attr(key, attr)
        if unknown_objective:  # every trial would miss it: stop the sweep
            raise ConfigError(f"{name}: {error}", hint="Pass --objective with one of the run's metrics.")
        if error is not None:
            raise TrialFailed(error)
        if outcome.status == "pruned":  # Optuna records the last reported value as the trial's
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
            return None if first == number else f"{_name(first)} already reruns {_name(reruns)}"
        before = [t for t in trials if t.number < number and _takes_a_slot(t)]
        if len(before) >= self.budget:
            return f"the sweep already has its {self.budget} trials"
        grid_id = this.system_attrs.get("grid_id")
        twin = next((t for t in before if grid_id is not None and t.system_attrs.get("grid_id") == grid_id), None)
        return None if twin is None else f"{_name(twin.number)} already has this grid point"

    def _frozen(self, number: int) -> optuna.trial.FrozenTrial:
        return next(t for t in self.study.get_trials(deepcopy=False) if t.number == number)

    def _train(self, number: int, values: dict[str, str], run_dir: Path) -> _Outcome:
        """Runs ``ginlight-train`` for one trial; its console output goes to ``logs/trial-NNN.log``."""
        command = [*self.base_command, *(f"--gin_bindings={p.binding(values[p.key])}" for p in self.space),
                   f"--run_dir={run_dir}"]
        log = self.sweep_dir / TRIAL_LOGS / f"{run_dir.name}.log"
        env = {**self.env, pruning.TRIAL_ENV: json.dumps({**self.report_to, "number": number})}
        start = time.monotonic()
        with self.lock:
            if self.stop.is_set():
                return _Outcome("interrupted", {}, None, 0.0, None)
            process = self.start(command, log, env)
            self.children.add(process)
        try:
            code = process.wait()
        finally:
            with self.lock:
                self.children.discard(process)
        record = _read_json(run_dir / rundir.RECORD)
        operative = run_dir / rundir.OPERATIVE_CONFIG
        if code == 0 and record.get("status") == "completed":
            status, error = "completed", None
        elif record.get("status") == "pruned":  # stopped by its pruner: exit status 1, as any run not completed
            status, error = "pruned", None
        elif self.stop.is_set() or record.get("status") == "interrupted" or -code in _STOP_SIGNALS:
            status, error = "interrupted", None
        else:
            status = "failed"
            error = (f"killed by {signal.Signals(-code).name}{' (out of memory?)' if code == -signal.SIGKILL else ''}"
                     if code < 0 else record.get("error") or _error_in_log(log) or f"exit status {code}")
        return _Outcome(status, record.get("metrics", {}), error, time.monotonic() - start,
                        operative.read_text() if operative.is_file() else None)

    def _finished(self, study: optuna.Study, frozen: optuna.trial.FrozenTrial) -> None:
        rows = _rows(study, self.space)
        row = next((r for r in rows if r.number == frozen.number), None)
        if row is None:  # surplus, or requeued
            return
        done = sum(r.status in _FINISHED for r in rows)
        values = ", ".join(f"{key}={value}" for key, value in row.params.items())
        status = f"pruned after {row.stopped_at}" if row.status == "pruned" else row.status
        line = f"[{done}/{self.budget}] {row.name} {status} in {row.duration_s or 0:.1f} s ({values})"
        if row.status in ("completed", "pruned"):
            best = _best(rows, self.direction)
            if row.objective is not None:
                line += f": {self.objective} = {row.objective:.4g}"
            if best is not None:
                line += f"; best {best.name}: {best.objective:.4g}"
        else:
            line += f": {(row.error or '').splitlines()[0]} (log: {self.sweep_dir / TRIAL_LOGS / row.name}.log)"
        self.say(line)
        self.write_results(rows)


def _start_process(command: list[str], log: Path, env: dict[str, str]) -> subprocess.Popen:
    """A trial's ``ginlight-train`` process on this machine, its console output in ``log``.

    In a session of its own: a terminal's Ctrl-C reaches the sweep, which stops trials in order.
    """
    with open(log, "w") as output:
        return subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT, env=env, start_new_session=True)


def _takes_a_slot(trial: optuna.trial.FrozenTrial) -> bool:
    """Whether a trial counts towards the budget: a new one (not a rerun) that was not skipped."""
    return "failed_trial" not in trial.system_attrs and _SKIPPED not in trial.user_attrs


def _reruns(trial: optuna.trial.FrozenTrial) -> int | None:
    """The number of the trial a rerun reruns (the last of Optuna's retry history)."""
    history = trial.system_attrs.get("retry_history")
    return history[-1] if history else None


def _name(number: int) -> str:
    return f"trial-{number:03d}"


def _wait(events: Sequence[threading.Event]) -> None:
    """Waits for the workers in short steps, so Ctrl-C reaches the main thread at once.

    Not ``Thread.join``: interrupted by Ctrl-C, it can report a running thread finished.
    """
    for event in events:
        while not event.wait(0.5):
            pass


def _cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def _read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def _error_in_log(log: Path) -> str | None:
    """The error ``ginlight-train`` printed before it had a run directory, else the last line."""
    lines = [line for line in log.read_text(errors="replace").splitlines() if line.strip()]
    starts = [i for i, line in enumerate(lines) if line.startswith("ginlight-train: error:")]
    if starts:
        message = [line for line in lines[starts[-1]:] if not line.startswith("(Run with --verbose")]
        return "\n".join(message)[len("ginlight-train: error: "):]
    return lines[-1] if lines else None


# ---- the sweep --------------------------------------------------------------------------------


def run_sweep(
    gin_files: Sequence[str | os.PathLike],
    bindings: Sequence[str] = (),
    space: Sequence[Parameter] = (),
    *,
    mode: str = "grid",
    trials: int | None = None,
    objective: str | None = None,
    direction: str | None = None,
    workers: int = 1,
    storage: str | None = None,
    study: str | None = None,
    search_paths: Sequence[str | os.PathLike] = (".",),
    projects: Sequence[str] = (),
    root_dir: str | os.PathLike = "runs",
    name: str | None = None,
    pruner: str = "none",
    retry_failed: bool = False,
    launcher: SlurmLauncher | None = None,
    argv: Sequence[str] | None = None,
) -> SweepResult:
    """Runs (or continues) the sweep of ``space`` over the config of ``gin_files`` and ``bindings``.

    The sweep directory is ``root_dir/<name>/sweep-<timestamp>/``. The study is
    named ``study``, by default ``<name>-<hash of the sweep's definition>``, so the
    same command finds its study and directory again and continues where it
    stopped. Returns when every trial of the sweep has finished, on this worker or
    others sharing ``storage``. ``pruner`` (a :data:`ginlight.pruning.PRUNERS`
    name) stops trials whose objective falls behind at a validation;
    ``retry_failed`` reruns the failed trials of a continued sweep, each under a new
    number. ``launcher`` (a :class:`ginlight.slurm.SlurmLauncher`) runs each trial as
    a job elsewhere instead of as a process here, ``workers`` at a time. Raises
    :class:`ConfigError` for a wrong definition, before any trial runs;
    ``KeyboardInterrupt`` after stopping the running trials, which rerun when the
    sweep continues.
    """
    objective, direction, budget = _check_arguments(space, mode, trials, objective, direction, workers)
    name = name or (Path(gin_files[0]).stem if gin_files else "sweep")
    _check_config(gin_files, bindings, space, search_paths, projects)
    pruner_spec = pruning.pruner_spec(pruner)  # its settings are the config's bindings of the Optuna pruner
    definition = {
        "config": _digest(gin_files, bindings, search_paths),
        "projects": list(projects),
        "space": [str(parameter) for parameter in space],
        "mode": mode,
        "trials": budget,
        "objective": objective,
        "direction": direction,
        "pruner": pruner,
    }
    study_name = study or f"{name}-{hashlib.sha1(json.dumps(definition, sort_keys=True).encode()).hexdigest()[:8]}"
    label = _storage_label(storage) if storage else None
    sweep_dir, created = _sweep_dir(root_dir, name, study_name, label)
    try:
        url = storage or f"sqlite:///{(sweep_dir / DATABASE).resolve()}"
        opened, storage_of_study = _open_study(url, study_name, mode, space, direction, definition, workers,
                                               pruning.make_pruner(pruner_spec))
        if created:
            rundir.write_atomic(sweep_dir / RECORD, json.dumps({
                "study": study_name, "storage": label, "definition": definition,
                "command": list(argv if argv is not None else sys.argv), "cwd": os.getcwd(),
                "created": datetime.now().astimezone().isoformat(timespec="seconds"),
            }, indent=2) + "\n")
    except BaseException:
        if created:
            shutil.rmtree(sweep_dir)
        raise
    (sweep_dir / TRIAL_LOGS).mkdir(exist_ok=True)

    def result_of(rows: list[TrialRow]) -> SweepResult:
        return SweepResult(sweep_dir, study_name, budget, objective, direction, rows)

    results_lock = threading.Lock()

    def write_results(rows: list[TrialRow]) -> None:
        with results_lock:
            _write_results(result_of(rows), space, mode, pruner)

    base_command = [sys.executable, "-m", "ginlight.cli.train",
                    *(f"--gin_file={f}" for f in gin_files), *(f"--gin_bindings={b}" for b in bindings),
                    *(f"--gin_search_paths={p}" for p in search_paths), *(f"--project={p}" for p in projects),
                    f"--root_dir={root_dir}"]  # the root of the trials' local tracker stores (ginlight.trackers)
    report_to = {"storage": _with_installed_driver(url), "study": study_name, "objective": objective,
                 "pruner": pruner_spec}
    runner = _Sweep(opened, storage_of_study, space, budget, objective, direction, sweep_dir, base_command, workers,
                    write_results, report_to, _start_process if launcher is None else launcher.start)
    with rundir.console_to_file(sweep_dir / LOG):
        census = runner.census()
        finished = sum(row.status in _FINISHED for row in census.rows)
        runner.say(f"sweep directory {sweep_dir}\nstudy {study_name} in {label or url}: {mode} search, "
                   f"{budget} trials, {finished} finished already, {workers} worker(s) here"
                   f"{'' if pruner == 'none' else f', pruner {pruner}'}.")
        if retry_failed:
            runner.say(f"rerunning {runner.retry_failed()} failed trial(s), each under a new number.")
        try:
            runner.run()
        finally:
            write_results(_rows(opened, space))
    return result_of(_rows(opened, space))


def _check_arguments(space: Sequence[Parameter], mode: str, trials: int | None, objective: str | None,
                     direction: str | None, workers: int) -> tuple[str, str, int]:
    """The objective, direction and number of trials, or a :class:`ConfigError`."""
    if mode not in MODES:
        raise ConfigError(f"unknown mode '{mode}'; the modes are {', '.join(MODES)}.")
    if not space:
        raise ConfigError("nothing to sweep.", hint="Pass --sweep='configurable.parameter=[value, ...]'.")
    if objective is None and direction is None:
        objective, direction = _DEFAULT_OBJECTIVE
    elif direction is None:
        raise ConfigError(f"is a higher or a lower {objective} better?", hint="Pass --direction=max or --direction=min.")
    elif direction not in DIRECTIONS:
        raise ConfigError(f"unknown direction '{direction}'.", hint="Pass --direction=max or --direction=min.")
    objective = objective or _DEFAULT_OBJECTIVE[0]
    if workers < 1:
        raise ConfigError(f"--workers={workers}: a sweep needs at least one worker.")
    if mode == "grid":
        ranges = [p for p in space if p.kind != "choice"]
        if ranges:
            raise ConfigError(f"grid search runs every listed value, but `{ranges[0]}` is a distribution.",
                              location=ranges[0].where,
                              hint="List the values ([a, b, ...]), or use --mode=random or --mode=tpe.")
        if trials is not None:
            raise ConfigError("--trials is for random and tpe search; grid search runs every combination.",
                              hint="Leave --trials out, or use --mode=random or --mode=tpe.")
        return objective, direction, math.prod(len(p.choices) for p in space)
    if trials is None or trials < 1:
        raise ConfigError(f"{mode} search needs the number of trials.", hint="Pass --trials=N (N >= 1).")
    return objective, direction, trials


def _check_config(gin_files: Sequence[str | os.PathLike], bindings: Sequence[str], space: Sequence[Parameter],
                  search_paths: Sequence[str | os.PathLike], projects: Sequence[str]) -> None:
    """Parses the config with each swept value, so that a typo fails now rather than in every trial."""
    config.load(gin_files, bindings, search_paths, projects)
    macros = {p.key for p in space if "." not in p.key}
    defined = {key for key in macros if _macro_defined(key)}
    for parameter in space:
        if parameter.key in macros - defined:
            raise ConfigError(f"macro '{parameter.key}' is not defined by the config, so sweeping it "
                              "changes nothing.", location=parameter.where,
                              hint="Sweep a macro the config defines, or a `configurable.parameter`.")
        for text in parameter.extremes():
            try:
                config.parse(gin_files, [*bindings, parameter.binding(text)], search_paths)
            except ConfigError as exc:
                raise ConfigError(f"{exc.message} (sweeping `{parameter.binding(text)}`)",
                                  location=parameter.where, hint=exc.hint) from None


def _macro_defined(name: str) -> bool:
    try:
        gin.query_parameter(f"%{name}")
    except ValueError:
        return False
    return True


def _digest(gin_files: Sequence[str | os.PathLike], bindings: Sequence[str],
            search_paths: Sequence[str | os.PathLike]) -> str:
    """Identifies the base config by content, wherever its files are."""
    content = hashlib.sha256()
    for gin_file in gin_files:
        content.update(config.resolve(gin_file, search_paths).read_bytes() + b"\0")
    content.update("\n".join(bindings).encode())
    return content.hexdigest()[:16]


def _storage_label(url: str) -> str:
    """The storage URL without its password, fit for files and the console."""
    import sqlalchemy

    try:
        return sqlalchemy.engine.make_url(url).render_as_string(hide_password=True)
    except sqlalchemy.exc.ArgumentError:
        raise ConfigError(f"--storage={url!r} is not a database URL.",
                          hint="Pass e.g. --storage=postgresql://user:password@host:5432/database.") from None


def _rdb_storage(url: str, engine: dict[str, Any]) -> optuna.storages.RDBStorage:
    """The storage, with heartbeats; created again if another worker was creating its tables at once."""
    import sqlalchemy

    for attempt in range(5):
        try:
            return optuna.storages.RDBStorage(
                url, engine_kwargs=engine, heartbeat_interval=HEARTBEAT_S, grace_period=GRACE_S,
                heartbeat_stale_trial_callback=optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=MAX_RETRIES))
        except (sqlalchemy.exc.IntegrityError, sqlalchemy.exc.ProgrammingError):
            if attempt == 4:
                raise
            time.sleep(1 + attempt)
    raise AssertionError("unreachable")


def _with_installed_driver(url: str) -> str:
    """``postgresql://`` means SQLAlchemy's default driver, psycopg 3 since SQLAlchemy 2.1; the
    ``sweep`` extra installs psycopg2, so that one is named when it is the one installed."""
    import importlib.util

    import sqlalchemy

    parsed = sqlalchemy.engine.make_url(url)
    if (parsed.drivername == "postgresql" and importlib.util.find_spec("psycopg") is None
            and importlib.util.find_spec("psycopg2") is not None):
        return parsed.set(drivername="postgresql+psycopg2").render_as_string(hide_password=False)
    return url


def _sweep_dir(root_dir: str | os.PathLike, name: str, study: str, storage: str | None) -> tuple[Path, bool]:
    """The directory of the sweep this command started before, else a new one; and whether it is new."""
    for record in sorted((Path(root_dir) / name).glob(f"sweep-*/{RECORD}"), reverse=True):
        recorded = _read_json(record)
        if recorded.get("study") == study and recorded.get("storage") == storage:
            return record.parent, False
    try:
        return rundir.create_run_dir(root_dir, name, prefix="sweep-"), True
    except OSError as exc:
        raise ConfigError(f"cannot create the sweep directory: {exc}.",
                          hint="Check that --root_dir is writable and the disk has space.") from None


def _open_study(url: str, study_name: str, mode: str, space: Sequence[Parameter], direction: str,
                definition: dict[str, Any], workers: int,
                pruner: optuna.pruners.BasePruner) -> tuple[optuna.Study, optuna.storages.RDBStorage]:
    """Creates or loads the study, and checks that a loaded one holds this sweep; returns it and its storage."""
    optuna.logging.set_verbosity(optuna.logging.ERROR)  # trials report through the sweep's own lines
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)  # heartbeats
    engine = {"pool_pre_ping": True, "pool_size": 2 * workers + 2}  # a trial's thread and its heartbeat
    if url.startswith("sqlite"):
        engine["connect_args"] = {"timeout": 60}
    if mode == "grid":
        sampler = optuna.samplers.GridSampler({p.key: list(p.choices) for p in space})
    elif mode == "random":
        sampler = optuna.samplers.RandomSampler()
    else:  # constant_liar keeps parallel workers from proposing the same point
        sampler = optuna.samplers.TPESampler(constant_liar=True)
    try:
        storage = _rdb_storage(_with_installed_driver(url), engine)
        study = optuna.create_study(study_name=study_name, storage=storage, sampler=sampler, pruner=pruner,
                                    direction=DIRECTIONS[direction], load_if_exists=True)
        if _DEFINITION_ATTR not in study.user_attrs:
            study.set_user_attr(_DEFINITION_ATTR, definition)
        stored = study.user_attrs[_DEFINITION_ATTR]  # read back: another worker may have been first
    except Exception as exc:  # noqa: BLE001 - drivers, URLs and servers fail in many ways
        raise ConfigError(f"cannot open the study storage {_storage_label(url)}: {type(exc).__name__}: {exc}",
                          hint="Check --storage, that its driver is installed (pip install 'ginlight[sweep]' "
                               "brings psycopg2 for PostgreSQL) and that the database server is up.") from None
    differences = [key for key in definition if stored.get(key) != definition[key]]
    if differences:
        raise ConfigError(f"study '{study_name}' holds a different sweep (its {', '.join(differences)} differ).",
                          hint="Pass another --study for a new sweep, or the command in its sweep.json to continue it.")
    return study, storage
