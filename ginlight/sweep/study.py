"""The study: the Optuna study in RDB storage that holds a sweep, and the sweep directory that records it.

A sweep's definition (its config, space, sampler, budget, objective, pruner) is
stored in the study, so a worker that opens it finds out whether it holds this
sweep. The sweep directory, ``root/<name>/sweep-<timestamp>/``, is found again
through its ``sweep.json``.
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
import time
import warnings
from datetime import datetime
from pathlib import Path
from typing import Any, Sequence

import optuna
import sqlalchemy

from ginlight import rundir
from ginlight.errors import ConfigError
from ginlight.sweep.space import Parameter

__all__ = ["SAMPLERS", "DIRECTIONS", "open_study", "sweep_directory", "write_record", "storage_label"]

#: The search methods (``--mode``): Optuna's GridSampler, RandomSampler and TPESampler.
SAMPLERS = ("grid", "random", "tpe")
DIRECTIONS = {"max": "maximize", "min": "minimize"}
#: How often a running trial's worker proves it is alive, and how long a silent one is waited for.
HEARTBEAT_S = 5
GRACE_S = 20
#: How many times a trial whose worker died, or that was interrupted, is rerun.
MAX_RETRIES = 3

#: The files of a sweep directory (the results are :mod:`ginlight.sweep.reports`'s).
RECORD = "sweep.json"
DATABASE = "study.db"
LOG = "sweep.log"
#: The folder of each trial's console output and outcome file (:func:`trial_log`, :func:`outcome_file`).
TRIAL_LOGS = "logs"

#: The user attribute of a trial the sweep did not run (:meth:`~ginlight.sweep.reruns.Reruns.skip` says why);
#: it is left out of the results.
SKIPPED = "skipped"
#: The user attribute a worker sets, to its trial's number, once the trial's heartbeat is recorded.
STARTED = "started_as"
_DEFINITION_ATTR = "ginlight_sweep"


def trial_log(sweep_dir: Path, name: str) -> Path:
    """``logs/trial-NNN.log``: what the trial ``name``'s process printed."""
    return sweep_dir / TRIAL_LOGS / f"{name}.log"


def outcome_file(sweep_dir: Path, name: str) -> Path:
    """``logs/trial-NNN.outcome.json``: the error of the trial ``name``, where its ``run.json`` cannot hold it
    (:mod:`ginlight.sweep.trial`)."""
    return sweep_dir / TRIAL_LOGS / f"{name}.outcome.json"


def storage_label(url: str) -> str:
    """The storage URL without its password, fit for files and the console."""
    try:
        return sqlalchemy.engine.make_url(url).render_as_string(hide_password=True)
    except sqlalchemy.exc.ArgumentError:
        raise ConfigError(f"--storage={url!r} is not a database URL.",
                          hint="Pass e.g. --storage=postgresql://user:password@host:5432/database.") from None


def with_installed_driver(url: str) -> str:
    """``postgresql://`` means SQLAlchemy's default driver, psycopg 3 since SQLAlchemy 2.1; the
    ``sweep`` extra installs psycopg2, so that one is named when it is the one installed."""
    parsed = sqlalchemy.engine.make_url(url)
    if (parsed.drivername == "postgresql" and importlib.util.find_spec("psycopg") is None
            and importlib.util.find_spec("psycopg2") is not None):
        return parsed.set(drivername="postgresql+psycopg2").render_as_string(hide_password=False)
    return url


def sweep_directory(root_dir: str | os.PathLike, name: str, study: str, storage: str | None) -> tuple[Path, bool]:
    """The directory of the sweep this command started before, else a new one; and whether it is new."""
    for record in sorted((Path(root_dir) / name).glob(f"sweep-*/{RECORD}"), reverse=True):
        recorded = _read_record(record)
        if recorded.get("study") == study and recorded.get("storage") == storage:
            return record.parent, False
    try:
        return rundir.create_run_dir(root_dir, name, prefix="sweep-"), True
    except OSError as exc:
        raise ConfigError(f"cannot create the sweep directory: {exc}.",
                          hint="Check that --root_dir is writable and the disk has space.") from None


def _read_record(path: Path) -> dict[str, Any]:
    """A ``sweep.json``; empty when it cannot be read, as another command's half-made directory."""
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def write_record(sweep_dir: Path, study: str, storage: str | None, definition: dict[str, Any],
                 argv: Sequence[str] | None) -> None:
    """``sweep.json``: the study, its storage (password hidden), the definition and the command."""
    rundir.write_atomic(sweep_dir / RECORD, json.dumps({
        "study": study, "storage": storage, "definition": definition,
        "command": list(argv if argv is not None else sys.argv), "cwd": os.getcwd(),
        "created": datetime.now().astimezone().isoformat(timespec="seconds"),
    }, indent=2) + "\n")


def _sampler(mode: str, space: Sequence[Parameter]) -> optuna.samplers.BaseSampler:
    if mode == "grid":
        return optuna.samplers.GridSampler({p.key: list(p.choices) for p in space})
    if mode == "random":
        return optuna.samplers.RandomSampler()
    return optuna.samplers.TPESampler(constant_liar=True)  # keeps parallel workers from proposing the same point


def _rdb_storage(url: str, engine: dict[str, Any]) -> optuna.storages.RDBStorage:
    """The storage, with heartbeats; created again if another worker was creating its tables at once."""
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


def open_study(url: str, study_name: str, mode: str, space: Sequence[Parameter], direction: str,
               definition: dict[str, Any], workers: int,
               pruner: optuna.pruners.BasePruner) -> tuple[optuna.Study, optuna.storages.RDBStorage]:
    """Creates or loads the study, and checks that a loaded one holds this sweep; returns it and its storage."""
    optuna.logging.set_verbosity(optuna.logging.ERROR)  # trials report through the sweep's own lines
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)  # heartbeats
    engine = {"pool_pre_ping": True, "pool_size": 2 * workers + 2}  # a trial's thread and its heartbeat
    if url.startswith("sqlite"):
        engine["connect_args"] = {"timeout": 60}
    sampler = _sampler(mode, space)
    try:
        storage = _rdb_storage(with_installed_driver(url), engine)
        study = optuna.create_study(study_name=study_name, storage=storage, sampler=sampler, pruner=pruner,
                                    direction=DIRECTIONS[direction], load_if_exists=True)
        if _DEFINITION_ATTR not in study.user_attrs:
            study.set_user_attr(_DEFINITION_ATTR, definition)
        stored = study.user_attrs[_DEFINITION_ATTR]  # read back: another worker may have been first
    except Exception as exc:  # noqa: BLE001 - drivers, URLs and servers fail in many ways
        raise ConfigError(f"cannot open the study storage {storage_label(url)}: {type(exc).__name__}: {exc}",
                          hint="Check --storage, that its driver is installed (pip install 'ginlight[sweep]' "
                               "brings psycopg2 for PostgreSQL) and that the database server is up.") from None
    differences = [key for key in definition if stored.get(key) != definition[key]]
    if differences:
        raise ConfigError(f"study '{study_name}' holds a different sweep (its {', '.join(differences)} differ).",
                          hint="Pass another --study for a new sweep, or the command in its sweep.json to continue it.")
    return study, storage
