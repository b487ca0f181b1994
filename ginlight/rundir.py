"""Run directories: one per run, never reused, holding everything needed to rerun it.

This module is the one place that knows a run directory's layout. :class:`RunDir`
opens one, names every file and folder in it and finds its checkpoints; :class:`RunRecord`
reads and writes ``run.json``; :func:`store_config` and :func:`stored_config` are the keys
ginlight adds to a checkpoint. Every other module goes through them.
"""

from __future__ import annotations

import contextlib
import enum
import fcntl
import io
import json
import logging
import os
import platform
import re
import socket
import sys
import tempfile
import time
import types
import typing
import warnings
from dataclasses import dataclass, field, fields
from datetime import datetime
from importlib import metadata
from pathlib import Path
from typing import Any, Iterator, Mapping, TextIO

from ginlight import internals
from ginlight.gin import source
from ginlight.errors import ConfigError

__all__ = ["Status", "RunDir", "Hold", "create_run_dir", "name_for", "RunRecord", "console_to_file",
           "quiet_third_party", "write_atomic", "store_config", "stored_config"]

#: The files every run directory holds.
CONFIG = "config.gin"
OPERATIVE_CONFIG = "operative_config.gin"
RECORD = "run.json"
LOG = "train.log"
CHECKPOINTS = "checkpoints"
#: The checkpoint a run resumes from, in :data:`CHECKPOINTS`; Lightning's own name for it.
LAST_CHECKPOINT = "last.ckpt"
#: The file through which a running run holds its directory (:meth:`RunDir.hold`); it names the last holder.
LOCK = "run.lock"
#: The uncommitted changes to the git work tree the run started in, and the copy of the user's code it ran
#: (:func:`ginlight.gin.source.snapshot`).
PATCH = "code.patch"
SOURCES = "code"
#: The folder of the TensorBoard logger ginlight builds, and of the predictions a predict stage writes.
TENSORBOARD = "tensorboard"
PREDICTIONS = "predictions"
#: Where a ginlight checkpoint keeps what ginlight adds: ``checkpoint[CHECKPOINT_KEY][STORED_CONFIG]`` is the
#: run's operative config, so that the checkpoint alone rebuilds the run.
CHECKPOINT_KEY = "ginlight"
STORED_CONFIG = "operative_config"
STORED_VERSION = "version"


class Status(enum.StrEnum):
    """How a run stands, the one spelling of it: ``run.json`` records the first five (``ginlight-train``
    the first four, a sweep's pruner ``pruned``); a sweep's table also shows a trial still ``waiting``.

    A ``StrEnum``: a status read back from JSON compares equal to its member.
    """

    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    INTERRUPTED = "interrupted"
    PRUNED = "pruned"
    WAITING = "waiting"
#: A folder holding any of these is a run directory, a run cut short before its record included.
MARKERS = (RECORD, OPERATIVE_CONFIG, CONFIG)
_NOT_A_RUN_HINT = "Pass a directory made by ginlight-train, such as runs/<name>/<timestamp>."


class _Member:
    """A file or folder of every run directory, at ``run.<attribute>``: the path under it, existing or not."""

    def __init__(self, *parts: str):
        self.parts = parts

    def __get__(self, run: RunDir | None, owner: type) -> Any:
        return self if run is None else run.path.joinpath(*self.parts)


class RunDir:
    """A run directory: where its files are, what its record says, which checkpoints it has.

    :meth:`open` is the one check of "is this a run" and the one message when it is not.
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)

    @staticmethod
    def recognises(path: str | os.PathLike) -> bool:
        """Whether ``path`` is a run directory: a folder holding any of :data:`MARKERS`."""
        return any((Path(path) / marker).is_file() for marker in MARKERS)

    @classmethod
    def open(cls, path: str | os.PathLike, needs: tuple[str, ...] = (RECORD,)) -> RunDir:
        """The run directory at ``path``; :class:`ConfigError` unless it holds each file of ``needs``."""
        run = cls(path)
        missing = [name for name in needs if not (run.path / name).is_file()]
        if missing:
            what = "is not a run directory" if not cls.recognises(run.path) else "is a run directory cut short"
            raise ConfigError(f"'{run.path}' {what}: it has no {' and no '.join(missing)}.", hint=_NOT_A_RUN_HINT)
        return run

    @classmethod
    def holding(cls, file: str | os.PathLike) -> RunDir | None:
        """The run directory that ``file`` (its operative config, a checkpoint) lies in, if any."""
        folder = Path(file).resolve().parent
        if folder.name == CHECKPOINTS:
            folder = folder.parent
        return cls(folder) if (folder / RECORD).is_file() else None

    @property
    def name(self) -> str:
        """The run's name: the folder its run directories share (``runs/<name>/<timestamp>``)."""
        return self.path.resolve().parent.name

    config = _Member(CONFIG)
    operative_config = _Member(OPERATIVE_CONFIG)
    record_file = _Member(RECORD)
    log = _Member(LOG)
    checkpoints = _Member(CHECKPOINTS)
    last_checkpoint = _Member(CHECKPOINTS, LAST_CHECKPOINT)  # whether or not it was written yet
    lock = _Member(LOCK)
    patch = _Member(PATCH)
    sources = _Member(SOURCES)
    tensorboard = _Member(TENSORBOARD)
    predictions = _Member(PREDICTIONS)

    def hold(self) -> Hold:
        """Holds the run for this process, the one writer of its directory, until :meth:`Hold.release` (or the
        end of a ``with`` block, or of the process); :class:`ConfigError` naming the holder when another
        process holds it.

        The hold is a POSIX record lock (``fcntl.lockf``) on :data:`LOCK`: the kernel drops it when its
        process ends, however it ends, so a killed run's hold never blocks the next; processes forked from
        the holder (DataLoader workers) do not inherit it; and NFS (v4, or v3 with lockd) honours it across
        machines, where a requeued job may start on another node.
        """
        descriptor = os.open(self.lock, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666)
        try:
            fcntl.lockf(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = _holder(descriptor)
            os.close(descriptor)
            raise ConfigError(
                f"run '{self.path}' is held by another process ({holder}): a run has one writer at a time.",
                location=str(self.lock),
                hint="Wait for that process to end, or stop it, then resume the run (ginlight-train --resume). "
                     "A process that died holds nothing.") from None
        os.ftruncate(descriptor, 0)
        os.write(descriptor, json.dumps({"host": socket.gethostname(), "pid": os.getpid(), "since": _now()}).encode())
        return Hold(descriptor)

    def read_record(self) -> RunRecord:
        """What ``run.json`` says (:meth:`RunRecord.read`); :class:`ConfigError` naming the file when it cannot be read."""
        return RunRecord.read(self.path)

    def best_checkpoint(self) -> Path | None:
        """The best checkpoint the record names, when it is still there."""
        best = self.read_record().best_checkpoint
        # Looked up by name: run.json holds the path as the run saw it, which may be relative or moved since.
        path = self.checkpoints / Path(best).name if best else None
        return path if path is not None and path.is_file() else None

    def checkpoint(self) -> Path:
        """The best checkpoint, else ``last.ckpt``; :class:`ConfigError` when the run wrote neither."""
        found = self.best_checkpoint() or (self.last_checkpoint if self.last_checkpoint.is_file() else None)
        if found is None:
            raise ConfigError(f"run directory '{self.path}' has no checkpoint.",
                              hint="Only runs that trained (--stage=fit) write checkpoints.")
        return found


class Hold:
    """A process's hold on a run directory (:meth:`RunDir.hold`); released by :meth:`release` or a ``with`` block."""

    def __init__(self, descriptor: int):
        self.descriptor: int | None = descriptor

    def release(self) -> None:
        if self.descriptor is not None:
            os.close(self.descriptor)  # closing drops the lock
            self.descriptor = None

    def __enter__(self) -> Hold:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.release()


#: How long a refused process waits for the holder to name itself (it writes its name just after taking the lock).
_HOLDER_WAIT_S = 2.0


def _holder(descriptor: int) -> str:
    """Who holds a run, in words: host, pid and since when, as the holder wrote them into the lock file."""
    deadline = time.monotonic() + _HOLDER_WAIT_S
    while True:
        text = os.pread(descriptor, 4096, 0).decode(errors="replace")
        try:
            holder = json.loads(text)
            return f"pid {holder['pid']} on host {holder['host']}, since {holder['since']}"
        except (ValueError, KeyError, TypeError):
            if time.monotonic() > deadline:
                return "a process that has not named itself yet"
            time.sleep(0.05)


def create_run_dir(root: str | os.PathLike, name: str, prefix: str = "") -> Path:
    """Creates ``root/name/<prefix><timestamp>[-N]``; concurrent callers get distinct folders.

    ``os.mkdir`` is atomic: of two processes that pick the same timestamp, one
    succeeds and the other moves on to the next suffix.
    """
    parent = Path(root) / name
    parent.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    for attempt in range(10_000):
        path = parent / (prefix + (stamp if attempt == 0 else f"{stamp}-{attempt}"))
        try:
            path.mkdir()
            return path
        except FileExistsError:
            continue
    raise FileExistsError(f"no free run directory name under {parent} for {stamp}")


def name_for(gin_file: Path) -> str:
    """The name of a run of ``gin_file``: its stem, or for a run directory's operative config, that run's name,
    so that a rerun lands beside the run it repeats."""
    run = RunDir.holding(gin_file) if gin_file.name == OPERATIVE_CONFIG else None
    return run.name if run is not None else gin_file.stem


def store_config(checkpoint: dict[str, Any], operative_config: str, version: str) -> None:
    """Puts the run's operative config and ginlight's ``version`` into a checkpoint about to be saved."""
    checkpoint[CHECKPOINT_KEY] = {STORED_CONFIG: operative_config, STORED_VERSION: version}


def stored_config(checkpoint: Mapping[str, Any]) -> str | None:
    """The operative config a loaded checkpoint holds (:func:`store_config`); None when it holds none."""
    entry = checkpoint.get(CHECKPOINT_KEY)
    text = entry.get(STORED_CONFIG) if isinstance(entry, dict) else None
    return text if isinstance(text, str) else None


def write_atomic(path: Path, text: str) -> None:
    """Writes through a temporary file and a rename, so readers never see half a file."""
    with tempfile.NamedTemporaryFile("w", dir=path.parent, prefix=f".{path.name}.", delete=False) as handle:
        handle.write(text)
    os.replace(handle.name, path)
    os.chmod(path, 0o666 & ~_umask())


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


#: The version of ``run.json``'s layout that :class:`RunRecord` writes: 2 added ``schema`` and writes every field.
SCHEMA = 2


@dataclass
class RunRecord:
    """``run.json``: what ran, where, with which versions, and how it ended; the one reader and writer of it.

    :meth:`read` takes a record of any version: what an older one lacks gets the default here (a record
    without ``stage`` ran ``fit``), once. A field of the wrong type, as a record edited by hand may hold,
    gets its default too, and :attr:`problems` says so. Keys this version does not know are kept as they are.
    """

    run_dir: Path = field(metadata={"saved": False})
    schema: int = SCHEMA
    status: str | None = None  # a :class:`Status`; a record edited by hand may hold another word
    error: str | None = None
    stage: str = "fit"
    argv: list[str] = field(default_factory=list)
    cwd: str | None = None
    start_time: str | None = None
    end_time: str | None = None
    seed: int | None = None
    #: torch's intra-op thread count, which CPU results depend on bit for bit; None in records older than it.
    torch_threads: int | None = None
    hostname: str | None = None
    versions: dict[str, str | None] = field(default_factory=dict)
    ckpt_path: str | None = None
    git: dict[str, Any] | None = None
    code: dict[str, Any] | None = None
    tags: list[str] = field(default_factory=list)
    notes: str | None = None
    trackers: dict[str, Any] = field(default_factory=dict)
    slurm: dict[str, Any] | None = None
    resumptions: list[dict[str, Any]] = field(default_factory=list)
    metrics: dict[str, float] = field(default_factory=dict)
    best_checkpoint: str | None = None
    weights_sha256: str | None = None
    resume_point: str | None = None
    unknown: dict[str, Any] = field(default_factory=dict, metadata={"saved": False})
    problems: list[str] = field(default_factory=list, metadata={"saved": False})

    @classmethod
    def read(cls, run_dir: str | os.PathLike) -> RunRecord:
        """The record in ``run_dir``; :class:`ConfigError` naming the file when it cannot be read as an object."""
        run_dir = Path(run_dir)
        path = run_dir / RECORD
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            raise ConfigError(f"'{run_dir}' has no {RECORD}.", hint=_NOT_A_RUN_HINT) from None
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            raise ConfigError(f"{RECORD} cannot be read (cut short, or edited by hand?): {exc}",
                              location=str(path), hint="Repair or restore the file.") from None
        if not isinstance(data, dict):
            raise ConfigError(f"{RECORD} holds {type(data).__name__}, not an object",
                              location=str(path), hint="Repair or restore the file.")
        record = cls(run_dir, schema=1)  # a record without "schema" is older than it
        hints = typing.get_type_hints(cls)
        for key, value in data.items():
            if key not in _SAVED:
                record.unknown[key] = value
            elif value is not None:
                record._take(key, value, hints[key])
            elif _accepts(hints[key], type(None)):
                setattr(record, key, None)
        return record

    def to_json(self) -> dict[str, Any]:
        """What ``run.json`` holds: every field of this version, then the keys it does not know."""
        return {**{key: getattr(self, key) for key in _SAVED}, **self.unknown, "schema": SCHEMA}

    def start(self, argv: list[str], seed: int, torch_threads: int) -> None:
        """A new run: ``torch_threads`` is torch's intra-op thread count, which CPU results depend on bit for bit."""
        self.update(argv=argv, cwd=os.getcwd(), start_time=_now(), end_time=None, status=Status.RUNNING, error=None,
                    seed=seed, torch_threads=torch_threads, hostname=socket.gethostname(), versions=_versions(),
                    metrics={}, best_checkpoint=None)

    def resumed(self, from_checkpoint: str | None, modules: dict[str, dict[str, str]]) -> None:
        """Marks the run running again, adding ``{time, from_checkpoint, code_changed}`` to its ``resumptions``.

        ``modules`` is the user's code now (:func:`ginlight.gin.source.fingerprint`);
        ``code_changed`` lists the modules whose source differs from the run's start.
        """
        started = (self.code or {}).get("modules") or {}
        entry = {"time": _now(), "from_checkpoint": from_checkpoint,
                 "code_changed": source.changed_modules(started, modules)}
        self.update(status=Status.RUNNING, error=None, end_time=None, resumptions=[*self.resumptions, entry])

    def update(self, **fields: Any) -> None:
        """Sets ``fields`` (names of this dataclass's fields) and saves."""
        unknown = set(fields) - set(_SAVED)
        if unknown:
            raise TypeError(f"run.json has no fields {sorted(unknown)}")
        for key, value in fields.items():
            setattr(self, key, value)
        self.save()

    def code_differences(self, other: RunRecord) -> list[str]:
        """What differs between the code this run and ``other`` ran, one line each; empty when the same."""
        lines = []
        git_a, git_b = self.git or {}, other.git or {}
        for key in ("commit", "patch_sha256"):
            if git_a.get(key) != git_b.get(key):
                what = "commit" if key == "commit" else f"uncommitted changes ({PATCH})"
                lines.append(f"{what}: {git_a.get(key) or '-'} vs {git_b.get(key) or '-'}")
        modules_a, modules_b = ((record.code or {}).get("modules") or {} for record in (self, other))
        for name in source.changed_modules(modules_a, modules_b):
            state = ("only in the first" if name not in modules_b else "only in the second" if name not in modules_a
                     else "differs")
            lines.append(f"module {name}: {state}")
        return lines

    def _take(self, key: str, value: Any, hint: Any) -> None:
        """Sets ``key`` to ``value`` read from JSON when its type fits; else says so in :attr:`problems`. A list's or
        dict's items of the wrong type are left out (a metric that is not a number), the others kept."""
        if not _accepts(hint, type(value)):
            kind = typing.get_origin(_arm(hint)) or _arm(hint)
            article = "an" if kind.__name__[0] in "aeiou" else "a"
            self.problems.append(f"{RECORD}: {key} is {value!r}, not {article} {kind.__name__}")
            return
        item = _items(hint)
        if isinstance(value, list):
            kept = [entry for entry in value if _accepts(item, type(entry))]
            if len(kept) != len(value):
                self.problems.append(f"{RECORD}: {key} {value!r} are not all {_PLURALS.get(item, item)}; "
                                     "the others are left out")
            value = kept
        elif isinstance(value, dict):
            kept = {name: entry for name, entry in value.items() if _accepts(item, type(entry))}
            if len(kept) != len(value):
                wrong = sorted(set(value) - set(kept))
                self.problems.append(f"{RECORD}: {key} {wrong} are not {_PLURALS.get(item, item)}; they are left out")
            value = kept
        setattr(self, key, value)

    def finish(self, status: Status, error: str | None = None, **fields: Any) -> None:
        self.update(status=status, error=error, end_time=_now(), **fields)

    def save(self) -> None:
        write_atomic(self.run_dir / RECORD, json.dumps(self.to_json(), indent=2, default=str) + "\n")


#: The fields :class:`RunRecord` writes into ``run.json``, in its order.
_SAVED = tuple(f.name for f in fields(RunRecord) if f.metadata.get("saved", True))


def _accepts(hint: Any, kind: type) -> bool:
    """Whether a field annotated ``hint`` takes a value of type ``kind`` (an int where a float goes, not a bool)."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return any(_accepts(arm, kind) for arm in typing.get_args(hint))
    if hint is Any:
        return True
    if kind is bool and hint is not bool:
        return False
    origin = typing.get_origin(hint) or hint
    return issubclass(kind, origin) or (origin is float and issubclass(kind, int))


def _arm(hint: Any) -> Any:
    """A field's type without its None: ``str`` for ``str | None``."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return next(arm for arm in typing.get_args(hint) if arm is not type(None))
    return hint


def _items(hint: Any) -> Any:
    """What a list or dict field holds, by its annotation: ``str`` for ``list[str]``, ``float`` for
    ``dict[str, float]``."""
    args = typing.get_args(_arm(hint))
    return args[-1] if typing.get_origin(_arm(hint)) in (list, dict) and args else Any


#: What a field's items are called where some are of the wrong type.
_PLURALS = {float: "numbers", str: "strings"}


def _now() -> str:
    return datetime.now().astimezone().isoformat(timespec="seconds")


def _versions() -> dict[str, str | None]:
    versions: dict[str, str | None] = {"python": platform.python_version()}
    for package in ("torch", "lightning", "gin-config", "torchmetrics", "ginlight"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = None
    return versions


class _Tee(io.TextIOBase):
    """Passes writes to the console and copies finished lines to a file.

    Text after a carriage return replaces the line so far, so a progress bar that
    redraws itself lands in the file once, as the console finally showed it; bars
    that tqdm erases again (cursor up) are left out. Once the run is over and its
    file closed, the tee is the console alone: a library that kept a reference to it
    (a logging handler it made during the run, an exit hook) still writes to the console.
    """

    def __init__(self, console: TextIO, file: TextIO):
        self.console = console
        self.file = file
        self.line = ""

    def write(self, text: str) -> int:
        self.console.write(text)
        if self.file.closed:
            return len(text)
        *done, line = (self.line + text).split("\n")
        # What precedes a carriage return is replaced: dropping it keeps a bar redrawn all run long
        # (no validation, no newline) from making each write copy an ever longer line.
        self.line = line[line.rfind("\r") + 1:]
        for line in done:
            line = line.rsplit("\r", 1)[-1]
            if "\x1b[A" not in line:
                self.file.write(line + "\n")
        if done:
            self.file.flush()
        return len(text)

    def flush(self) -> None:
        self.console.flush()
        if not self.file.closed:
            self.file.flush()

    def isatty(self) -> bool:
        return self.console.isatty()

    def fileno(self) -> int:
        return self.console.fileno()

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return getattr(self.console, "encoding", "utf-8")


@contextlib.contextmanager
def console_to_file(path: Path) -> Iterator[None]:
    """Copies what the console shows (prints, logging, warnings) into ``path``.

    ``sys.stdout`` and ``sys.stderr`` are replaced by tees, and logging handlers
    that captured the original streams (absl's, Lightning's) are pointed at them.
    """
    streams = {id(sys.stdout): None, id(sys.stderr): None}
    with open(path, "a", buffering=1) as file:
        tees = {id(sys.stdout): _Tee(sys.stdout, file), id(sys.stderr): _Tee(sys.stderr, file)}
        originals = sys.stdout, sys.stderr
        loggers = [logging.getLogger(), *logging.Logger.manager.loggerDict.values()]
        handlers = [
            handler
            for logger in loggers
            for handler in getattr(logger, "handlers", ())
            if isinstance(handler, logging.StreamHandler) and id(handler.stream) in streams
        ]
        for handler in handlers:
            handler.setStream(tees[id(handler.stream)])
        sys.stdout, sys.stderr = tees[id(originals[0])], tees[id(originals[1])]
        try:
            yield
        finally:
            sys.stdout, sys.stderr = originals
            for handler in handlers:
                handler.setStream(handler.stream.console)


def quiet_third_party(verbose: bool) -> None:
    """Keeps what tells the user nothing about their run out of the console and ``train.log``.

    Lightning and torchmetrics print through their own handlers, and absl's root
    handler would print each of their records a second time. Outside a SLURM
    allocation, Lightning's warning that ``srun`` is installed but unused: the machine
    merely has SLURM's tools. Unless ``verbose``: Lightning's advertisement for its
    cloud logger, and deprecation warnings that Lightning's own code triggers (the
    user can act on neither).
    """
    for name in ("lightning", "lightning.pytorch", "lightning.fabric", "torchmetrics"):
        logger = logging.getLogger(name)
        if logger.handlers:
            logger.propagate = False
    if "SLURM_JOB_ID" not in os.environ:
        warnings.filterwarnings("ignore", message=re.escape(internals.SRUN_NOT_USED_WARNING))
    if verbose:
        return
    for name in ("lightning.pytorch.utilities.rank_zero", "lightning.fabric.utilities.rank_zero"):
        logging.getLogger(name).addFilter(lambda record: internals.LITLOGGER_TIP not in record.getMessage())
    for category in (DeprecationWarning, FutureWarning):
        warnings.filterwarnings("ignore", category=category, module=r"lightning(\.|$)")
