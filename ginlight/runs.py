"""Many runs at a glance: one row per run directory, the bindings that differ between the runs, final metrics.

``run.json`` is read through :class:`ginlight.rundir.RunDir` and operative configs with gin's parser
(:func:`ginlight.diff.read_config`), so a listing imports neither torch nor
Lightning and a thousand runs list in well under two seconds
(``python -m benchmarks.runs_listing``, docs/runs.md). A run directory that
cannot be read in full (``run.json`` cut short or edited by hand, a run still
running, no operative config) still gets its row, with warnings saying what is
missing; it never hides the other runs.
"""

from __future__ import annotations

import csv
import difflib
import fnmatch
import io
import json
import math
import os
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Callable, Sequence

from ginlight import diff, rundir
from ginlight.errors import ConfigError
from ginlight.rundir import Status

__all__ = ["Run", "Listing", "find_run_dirs", "read_run", "read_runs", "select", "differing_bindings", "set_tags",
           "FORMATS"]

FORMATS = ("table", "csv", "json", "markdown")
#: The fields ``--filter`` matches besides bindings.
FILTER_FIELDS = ("name", "status", "stage")
_ABSENT = object()


@dataclass
class Run:
    """One row: what ``run.json`` and the operative config of ``run_dir`` say.

    ``config`` is None when the operative config is missing or unreadable: the
    run's bindings are unknown, not empty. ``warnings`` say what could not be read.
    """

    run_dir: Path
    name: str
    start_time: datetime | None = None
    end_time: datetime | None = None
    status: str | None = None
    stage: str | None = None
    tags: list[str] = field(default_factory=list)
    notes: str | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    config: diff.Config | None = None
    warnings: list[str] = field(default_factory=list)

    @property
    def duration_s(self) -> float | None:
        if self.start_time is None or self.end_time is None:
            return None
        return (self.end_time - self.start_time).total_seconds()

    def value(self, binding: tuple[str, str]) -> Any:
        """The value of ``binding`` with its macros resolved; ``_ABSENT`` when the run has none or its bindings
        are unknown."""
        if self.config is None or binding not in self.config.bindings:
            return _ABSENT
        return self.config.resolve(self.config.bindings[binding])


def binding_name(binding: tuple[str, str]) -> str:
    """A binding's column name, as its operative config writes it: ``LR``, ``train/DataLoader.batch_size``."""
    configurable, parameter = binding
    return parameter if configurable == diff.MACROS else f"{configurable}.{parameter}"


def _binding_key(name: str) -> tuple[str, str]:
    """The inverse of :func:`binding_name`."""
    configurable, dot, parameter = name.rpartition(".")
    if not dot:
        return diff.MACROS, name
    return configurable, parameter


# ---- reading -----------------------------------------------------------------------------------


def find_run_dirs(paths: Sequence[str | os.PathLike]) -> list[tuple[Path, str]]:
    """``(run directory, name)`` for each of ``paths`` that is one, and for every one under the others.

    A run directory holds ``run.json``, ``operative_config.gin`` or ``config.gin``;
    folders inside one are not searched. Its name is its path under the root it
    was found in (``classifier/20240101-120000``), or the path as given. Raises
    :class:`ConfigError` for a path that is not a folder.
    """
    found: list[tuple[Path, str]] = []
    for given in map(Path, paths):
        if not given.is_dir():
            raise ConfigError(f"'{given}' is not a folder.",
                              hint="Pass a root of run directories (such as runs) or run directories.")
        if rundir.RunDir.recognises(given):
            found.append((given, str(given)))
            continue
        for folder, subfolders, files in os.walk(given):
            subfolders.sort()
            if any(marker in files for marker in rundir.MARKERS):
                subfolders.clear()
                path = Path(folder)
                found.append((path, path.relative_to(given).as_posix()))
    return found


def read_run(run_dir: Path, name: str) -> Run:
    """The row of ``run_dir``; what cannot be read is left out and named in :attr:`Run.warnings`."""
    run = Run(run_dir, name)
    _read_record(run)
    _read_operative_config(run)
    return run


def read_runs(paths: Sequence[str | os.PathLike]) -> list[Run]:
    """The rows of every run directory :func:`find_run_dirs` finds, by name."""
    return sorted((read_run(path, name) for path, name in find_run_dirs(paths)), key=lambda run: run.name)


def _read_record(run: Run) -> None:
    found = rundir.RunDir(run.run_dir)
    if not found.record_file.is_file():
        run.warnings.append(f"no {rundir.RECORD}: its status and metrics are unknown")
        return
    try:
        record = found.read_record()
    except ConfigError as exc:
        run.warnings.append(exc.message)
        return
    run.warnings += record.problems  # fields of the wrong type, left out
    run.status, run.stage, run.notes, run.tags, run.metrics = (record.status, record.stage, record.notes,
                                                               record.tags, record.metrics)
    run.start_time = _time(run, record.start_time, "start_time")
    run.end_time = _time(run, record.end_time, "end_time")
    if run.status is None:
        run.warnings.append(f"{rundir.RECORD} has no status")
    elif run.status == Status.RUNNING:
        run.warnings.append("still running, or stopped without recording it (killed?); "
                            f"`ginlight-train --resume={run.run_dir}` continues it")
    elif run.status not in tuple(Status):
        run.warnings.append(f"{rundir.RECORD}: unknown status {run.status!r}")


def _time(run: Run, text: str | None, key: str) -> datetime | None:
    if text is None:
        return None
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        run.warnings.append(f"{rundir.RECORD}: {key} {text!r} is not an ISO time")
        return None


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _read_operative_config(run: Run) -> None:
    path = rundir.RunDir(run.run_dir).operative_config
    if not path.is_file():
        run.warnings.append(f"no {rundir.OPERATIVE_CONFIG}: its bindings are unknown")
        return
    try:
        run.config = diff.read_config(path)
    except (ConfigError, OSError, UnicodeDecodeError) as exc:
        run.warnings.append(f"{rundir.OPERATIVE_CONFIG} cannot be read, its bindings are unknown: "
                            + str(exc).replace("\n", " "))


# ---- choosing and ordering ---------------------------------------------------------------------


def select(runs: Sequence[Run], filters: Sequence[str] = (), tags: Sequence[str] = ()) -> list[Run]:
    """The runs that carry every tag in ``tags`` and match every ``KEY=GLOB`` of ``filters``.

    KEY is ``name``, ``status``, ``stage`` or a binding as the table names it
    (``LR``, ``AdamW.lr``, ``train/DataLoader.batch_size``); GLOB is an fnmatch
    pattern, matched against the value as the table shows it (a string also
    without its quotes). Raises :class:`ConfigError` for a filter that is not
    ``KEY=GLOB`` or names no column of any run.
    """
    tests = [_filter(text, runs) for text in filters]
    return [run for run in runs if set(tags) <= set(run.tags) and all(test(run) for test in tests)]


def _filter(text: str, runs: Sequence[Run]) -> Callable[[Run], bool]:
    key, equals, pattern = text.partition("=")
    if not equals or not key:
        raise ConfigError(f"--filter '{text}' is not KEY=GLOB.",
                          hint="For example --filter=status=failed, --filter='name=classifier/*' or --filter=LR=0.01.")
    if key in FILTER_FIELDS:
        return lambda run: fnmatch.fnmatchcase(getattr(run, key) or "", pattern)
    binding = _known_binding(key, runs, "--filter", others=FILTER_FIELDS)

    def matches(run: Run) -> bool:
        value = run.value(binding)
        if value is _ABSENT:
            return False
        texts = [repr(value), value] if isinstance(value, str) else [repr(value)]
        return any(fnmatch.fnmatchcase(text, pattern) for text in texts)

    return matches


def _known_binding(name: str, runs: Sequence[Run], flag: str, others: Sequence[str] = ()) -> tuple[str, str]:
    """The binding ``name`` names, when some run has it; else a :class:`ConfigError` suggesting close names
    (of bindings and of ``others``)."""
    names = {binding_name(key) for run in runs if run.config is not None for key in run.config.bindings}
    if name not in names:
        close = difflib.get_close_matches(name, [*others, *sorted(names)], n=3)
        raise ConfigError(f"{flag}: '{name}' is not a column of these runs, nor a binding of any.",
                          hint=f"Did you mean {' or '.join(close)}?" if close else
                          "Name a binding as the runs' operative configs write it (LR, AdamW.lr).")
    return _binding_key(name)


def _sortable(value: Any) -> tuple[int, Any] | None:
    """Numbers (and times) before other values, which compare as gin text; None (and NaN) for no value."""
    if value is None or value is _ABSENT or (isinstance(value, float) and math.isnan(value)):
        return None
    if _is_number(value):
        return 0, value
    if isinstance(value, datetime):
        return 0, value.timestamp()
    return 1, value if isinstance(value, str) else repr(value)


# ---- the table ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Column:
    """A column of the table: its header, and the value of a run in it, exact (for tools) and short (for people)."""

    header: str
    value: Callable[[Run], Any]
    exact: Callable[[Any], str] = lambda value: "" if value is None else str(value)
    readable: Callable[[Any], str] | None = None


def _time_text(value: datetime | None, readable: bool) -> str:
    if value is None:
        return ""
    return value.strftime("%Y-%m-%d %H:%M:%S") if readable else value.isoformat()


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return ""
    minutes, second = divmod(round(seconds), 60)
    hours, minute = divmod(minutes, 60)
    return f"{hours}h{minute:02d}m" if hours else f"{minute}m{second:02d}s" if minute else f"{second}s"


def _number(value: float | None) -> str:
    return "" if value is None else repr(value)


_FIELD_COLUMNS = [
    Column("name", lambda run: run.name),
    Column("start_time", lambda run: run.start_time, lambda value: _time_text(value, False),
           lambda value: _time_text(value, True)),
    Column("duration_s", lambda run: run.duration_s, _number, _duration),
    Column("status", lambda run: run.status),
    Column("stage", lambda run: run.stage),
]
_TAGS = Column("tags", lambda run: ",".join(run.tags) or None)
_NOTES = Column("notes", lambda run: run.notes)
_WARNINGS = Column("warnings", lambda run: "; ".join(run.warnings) or None)


def _binding_column(binding: tuple[str, str]) -> Column:
    return Column(binding_name(binding), lambda run: run.value(binding),
                  lambda value: "" if value is _ABSENT else repr(value))


def _metric_column(name: str) -> Column:
    return Column(name, lambda run: run.metrics.get(name), _number,
                  lambda value: "" if value is None else f"{value:.4g}")


@dataclass
class Listing:
    """Runs as a table: the bindings in which they differ, one column each, and every final metric."""

    runs: list[Run]
    bindings: list[tuple[str, str]]
    metrics: list[str]

    @classmethod
    def of(cls, runs: Sequence[Run]) -> Listing:
        return cls(list(runs), differing_bindings(runs), sorted({name for run in runs for name in run.metrics}))

    def columns(self) -> list[Column]:
        """The fields, then the bindings, then the metrics; tags, notes and warnings only where a run has some."""
        def shown(column: Column) -> list[Column]:
            return [column] if any(column.value(run) for run in self.runs) else []

        return [*_FIELD_COLUMNS, *shown(_TAGS), *shown(_NOTES), *map(_binding_column, self.bindings),
                *map(_metric_column, self.metrics), *shown(_WARNINGS)]

    def label(self, run: Run) -> str:
        """The run as its differing bindings tell it from the others (``LR=0.01, BATCH_SIZE=16``); its name when
        none differ or its bindings are unknown."""
        if run.config is None or not self.bindings:
            return run.name
        return ", ".join(f"{binding_name(b)}={_binding_column(b).exact(run.value(b)) or '-'}" for b in self.bindings)

    def sort(self, key: str) -> None:
        """Orders the runs by a metric, binding or field, ascending; ``-KEY`` descending.

        Runs without a value come last either way. Any binding of the runs will do,
        not only the differing ones. Raises :class:`ConfigError` for a key that is
        not a column.
        """
        descending, name = key.startswith("-"), key.removeprefix("-")
        columns = {column.header: column for column in [*_FIELD_COLUMNS, *map(_metric_column, self.metrics)]}
        if name in columns:
            value = columns[name].value
        else:
            value = _binding_column(_known_binding(name, self.runs, "--sort", others=list(columns))).value
        keyed = [(_sortable(value(run)), run) for run in self.runs]
        present = sorted((pair for pair in keyed if pair[0] is not None), key=lambda pair: pair[0], reverse=descending)
        self.runs = [run for _, run in present] + [run for key, run in keyed if key is None]

    def to_json(self) -> dict[str, Any]:
        """For tools: the differing bindings' names, the metrics' names, and per run every field (bindings in
        gin syntax, macros resolved; None for a binding the run does not have or whose bindings are unknown)."""
        return {
            "bindings": [binding_name(b) for b in self.bindings],
            "metrics": self.metrics,
            "runs": [{
                "name": run.name,
                "run_dir": str(run.run_dir),
                "start_time": run.start_time and run.start_time.isoformat(),
                "end_time": run.end_time and run.end_time.isoformat(),
                "duration_s": run.duration_s,
                "status": run.status,
                "stage": run.stage,
                "tags": run.tags,
                "notes": run.notes,
                "bindings": {binding_name(b): None if run.value(b) is _ABSENT else repr(run.value(b))
                             for b in self.bindings},
                "metrics": run.metrics,
                "warnings": run.warnings,
            } for run in self.runs],
        }

    def render(self, format: str) -> str:
        """The listing as ``table``, ``csv``, ``json`` or ``markdown`` text.

        csv holds exact values (ISO times, seconds, every digit of a metric) and
        the run directory; the table and markdown show them short.
        """
        if format == "json":
            return json.dumps(self.to_json(), indent=2)
        columns = self.columns()
        if format == "csv":
            text = io.StringIO()
            writer = csv.writer(text, lineterminator="\n")
            writer.writerow(["run_dir", *(column.header for column in columns)])
            for run in self.runs:
                writer.writerow([str(run.run_dir), *(column.exact(column.value(run)) for column in columns)])
            return text.getvalue().rstrip("\n")
        rows = [[column.header for column in columns],
                *([(column.readable or column.exact)(column.value(run)) for column in columns] for run in self.runs)]
        if format == "markdown":
            lines = ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows]
            return "\n".join([lines[0], "|" + "---|" * len(columns), *lines[1:]])
        widths = [max(len(row[i]) for row in rows) for i in range(len(columns))]
        rows.insert(1, ["-" * width for width in widths])
        return "\n".join("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in rows)


def differing_bindings(runs: Sequence[Run]) -> list[tuple[str, str]]:
    """The bindings written differently in some of ``runs``, or missing from some: macros first.

    Values are compared as written, so a changed macro is one column rather than
    one per binding that reads it (cells show values with macros resolved). Runs
    whose bindings are unknown take no part.
    """
    first, *others = [run.config.bindings for run in runs if run.config is not None] or [{}]
    differing: set[tuple[str, str]] = set()
    for bindings in others:
        differing |= bindings.keys() ^ first.keys()
        # Runs of one project share most statements, and a shared statement's value is one object (diff reads
        # each distinct statement once): the identity check settles almost every binding without a repr.
        differing.update(key for key, value in bindings.items()
                         if key in first and first[key] is not value and repr(first[key]) != repr(value))
    return sorted(differing, key=lambda key: (key[0] != diff.MACROS, binding_name(key)))



# ---- tags --------------------------------------------------------------------------------------


def set_tags(run_dir: str | os.PathLike, tags: Sequence[str]) -> Run:
    """Replaces the tags in ``run_dir``'s ``run.json`` and returns its row.

    The record is rewritten atomically (:func:`ginlight.rundir.write_atomic`):
    a reader sees the old record or the new one, never half of one. Raises
    :class:`ConfigError` when ``run_dir`` has no readable ``run.json``.
    """
    path = rundir.RunDir.open(run_dir).path
    record = rundir.RunRecord.read(path)  # a record that cannot be read fails here, naming the file
    record.update(tags=list(dict.fromkeys(tags)))
    return read_run(path, str(path))
