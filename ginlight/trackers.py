"""Experiment trackers: every Lightning logger on the trainer gets the experiment, and a run stays one tracker run.

What each logger gets, once as each stage starts and at no cost per step (:class:`TrackerFeed`):

- through its own ``log_hyperparams``: the flat bindings (``scope/Configurable.param``, macros
  resolved, names as the operative config writes them), the System's parameter counts, the git
  commit and the run directory;
- the run's files, ``operative_config.gin``, ``config.gin`` and ``run.json``: as artifacts where
  the logger has them (MLflow's ``log_artifact``, W&B's ``save``), as text in TensorBoard, and as
  hyperparameters holding their text in any other logger (CSV, Comet, LitLogger, your own). When the
  run has ended, ``run.json`` goes again, with the final status.

Where tracker runs go (:func:`prepare`). An MLflow or W&B logger bound without a location writes
under ``--root_dir``, to a store that needs no server: MLflow to ``sqlite:///<root>/mlflow.db`` with
artifacts in ``<root>/mlartifacts``, W&B offline into ``<root>/wandb``. This is decided from the
values the config gives the logger (the operative config lists them all, so its rerun decides
the same), and bound as references to :func:`mlflow_tracking_uri` and its siblings, which the
operative config records, so that a rerun writes under its own ``--root_dir``. TensorBoard and CSV
loggers bound without a ``save_dir`` write into the run directory (:func:`run_directory`).

One ginlight run, one tracker run (:func:`connect`). ``run.json``'s ``trackers`` holds each
logger's run id (and URL where there is one). ``--resume`` reattaches each logger to its run, so
metrics continue the same curves: MLflow's run, W&B's run id (an offline W&B run keeps each
process's part in an ``offline-run-*`` folder of its own, all under the one id), the version
folder of TensorBoard and CSV, whose ``metrics.csv`` keeps its earlier rows. What a killed process
had logged survives only where its tracker had written it: MLflow writes each metric as it comes,
CSV every ``flush_logs_every_n_steps``, and W&B's core writes its transaction log (the offline
run) every ``x_transaction_log_flush_interval`` (15 s), at each full 32 KiB block and at
``finish``; W&B has no public call that writes it sooner, so a SIGKILL loses what W&B got in
those last seconds (its service exits with the killed process, and the rest with it). A rerun of a run's
operative config (``--reproduce``) is a new tracker run that names the original
(``ginlight.reproduces``); a sweep's trial carries the sweep's name and its number (MLflow tags,
the W&B group), from what the sweep tells its trials (:attr:`ginlight.runcontext.RunContext.trial`).
Lightning's loggers start their tracker run at the first use of ``logger.experiment``, from
settings they keep until then (MLflow's ``_run_id`` and ``tags``, W&B's ``_wandb_init``, the
keyword arguments of ``wandb.init``, the ``_version`` of TensorBoard and CSV); ginlight sets the
run to attach to and the labels there, and then starts each run before training, so that a store
that cannot be reached fails the run before it trains. A tracker that fails later fails the run
like any other error: ``run.json`` says so and the run directory keeps its records; one that fails
to take the final ``run.json`` has the error in its ``trackers`` entry.

mlflow and wandb are optional extras, imported only by Lightning's loggers and by the check of an
MLflow store that the config names.
"""

from __future__ import annotations

import contextlib
import contextvars
import csv
import importlib.util
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Sequence
from urllib.parse import urlsplit, urlunsplit

import gin
from lightning import LightningModule, Trainer
from lightning.fabric.loggers import Logger as FabricLogger  # the base of every Lightning logger, LitLogger's too
from lightning.pytorch.loggers import CSVLogger, Logger, MLFlowLogger, TensorBoardLogger, WandbLogger
from lightning.pytorch.loggers.csv_logs import ExperimentWriter
from lightning.pytorch.utilities.model_summary import ModelSummary

from ginlight import internals, rundir
from ginlight.gin import lookup
from ginlight.gin.parsed import ParsedConfig
from ginlight.runcontext import RunContext
from ginlight.errors import ConfigError

__all__ = ["prepare", "bind_locations", "building", "connect", "rerun_of", "flat_bindings", "TrackerFeed", "mlflow_tracking_uri",
           "mlflow_artifact_location", "store_root", "run_directory"]

#: The run's files that every logger gets.
FILES = (rundir.OPERATIVE_CONFIG, rundir.CONFIG, rundir.RECORD)
_MLFLOW = "lightning.pytorch.loggers.MLFlowLogger"
_WANDB = "lightning.pytorch.loggers.WandbLogger"
#: Loggers that write into a folder they must be given (``save_dir`` has no default).
_FOLDER_LOGGERS = ("lightning.pytorch.loggers.TensorBoardLogger", "lightning.pytorch.loggers.CSVLogger")
#: Lightning loggers whose package is not one of ginlight's dependencies: the module, and how to install it.
_PACKAGES = {
    "MLFlowLogger": ("mlflow", "pip install 'ginlight[mlflow]'"),
    "WandbLogger": ("wandb", "pip install 'ginlight[wandb]'"),
    "CometLogger": ("comet_ml", "pip install comet-ml"),
    "LitLogger": ("litlogger", "pip install litlogger"),
}
#: While checking that a tracking server answers: one try, not MLflow's retries with back-off over minutes.
_QUICK_HTTP = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0", "MLFLOW_HTTP_REQUEST_TIMEOUT": "20"}


@dataclass(frozen=True)
class _Locations:
    """Where the loggers being built write: the run's tracker root, and its run directory once it has one."""

    root: Path
    run_dir: Path | None


#: The locations of the run whose loggers gin is building, while :func:`building` runs: gin calls
#: :func:`store_root` and :func:`run_directory` with no arguments, so the run's context reaches them this way.
_BUILDING: contextvars.ContextVar[_Locations] = contextvars.ContextVar("ginlight.trackers.building")


@contextlib.contextmanager
def building(root: Path, run_dir: Path | None = None) -> Iterator[None]:
    """While the block runs, loggers gin builds write under ``root`` (:func:`store_root`, the value
    :func:`prepare` returned) and, bound without a ``save_dir``, into ``run_dir`` (:func:`run_directory`)."""
    token = _BUILDING.set(_Locations(root, run_dir))
    try:
        yield
    finally:
        _BUILDING.reset(token)


def prepare(parsed: ParsedConfig, root_dir: str | os.PathLike, resuming: Path | None = None) -> Path:
    """Readies the loggers of ``parsed``, the config gin holds now, before anything is built; returns the run's
    tracker root, for :func:`building` and :func:`connect`.

    A logger whose package is missing, and an MLflow tracking store named in the
    config that cannot be reached, raise :class:`ConfigError` now. MLflow and W&B
    loggers bound without a location get one under ``root_dir`` (for ``resuming``,
    the run directory being resumed, the root recorded in its ``run.json``):

    - MLflow, when ``tracking_uri`` is empty and ``save_dir`` is Lightning's ``./mlruns``:
      ``tracking_uri = @mlflow_tracking_uri()`` and, unless one is given,
      ``artifact_location = @mlflow_artifact_location()``;
    - W&B, when ``save_dir`` is Lightning's ``.`` and ``dir`` is unset: ``save_dir = @store_root()``;
      and when no ``project`` names where runs go online (nor ``WANDB_PROJECT``), ``offline = True``;
    - TensorBoard and CSV, when ``save_dir`` has no value: ``save_dir = @run_directory()``.
    """
    _check_installed(parsed)
    recorded = _recorded(resuming).get("root") if resuming is not None else None
    bind_locations()
    _check_mlflow_store(parsed)
    return Path(recorded or root_dir).resolve()


@gin.configurable(module="ginlight.trackers")
def store_root() -> str:
    """The folder where the run being built keeps its trackers' local stores: its ``--root_dir``."""
    building = _BUILDING.get(None)
    if building is None:
        raise ConfigError("ginlight.trackers.store_root() is the --root_dir of the run being built, and no "
                          "ginlight run is being built.", hint="Build loggers through ginlight-train or ginlight.train.")
    building.root.mkdir(parents=True, exist_ok=True)
    return str(building.root)


@gin.configurable(module="ginlight.trackers")
def run_directory() -> str:
    """The run directory of the trainer being built: where TensorBoard and CSV loggers bound without a
    ``save_dir`` write."""
    building = _BUILDING.get(None)
    if building is None or building.run_dir is None:
        raise ConfigError("ginlight.trackers.run_directory() is the directory of the run whose trainer is being "
                          "built, and none is: a trainer bound as Experiment.trainer is built before it exists.",
                          hint="Bind the logger's save_dir, or bind Trainer.* instead of Experiment.trainer.")
    return str(building.run_dir)


@gin.configurable(module="ginlight.trackers")
def mlflow_tracking_uri() -> str:
    """The MLflow store of the runs under ``--root_dir``: an SQLite file, which needs no server."""
    return f"sqlite:///{Path(store_root()) / 'mlflow.db'}"


@gin.configurable(module="ginlight.trackers")
def mlflow_artifact_location() -> str:
    """Where MLflow keeps the artifacts of the runs under ``--root_dir`` (MLflow's own default is the working directory)."""
    return str(Path(store_root()) / "mlartifacts")


def _check_installed(parsed: ParsedConfig) -> None:
    for reference in gin.config.iterate_references(internals.parsed_bindings()):
        wrapped = reference.configurable.wrapped
        if not (isinstance(wrapped, type) and issubclass(wrapped, FabricLogger)) or wrapped.__name__ not in _PACKAGES:
            continue
        module, install = _PACKAGES[wrapped.__name__]
        if importlib.util.find_spec(module) is None:
            raise ConfigError(f"{wrapped.__name__} needs the '{module}' package, which is not installed.",
                              location=parsed.binding_location("lightning.Trainer", "logger"),
                              hint=f"Install it: {install}")


def bind_locations() -> None:
    """Binds the loggers' locations as :func:`prepare` describes, where the config leaves them unbound; again
    it binds nothing. The check of a config (:func:`ginlight.experiment.check_config`) calls it, so that what
    ginlight binds counts as bound."""
    bindings = []
    if _referenced(_MLFLOW):
        if not _value(_MLFLOW, "tracking_uri") and _value(_MLFLOW, "save_dir") == "./mlruns":
            bindings.append(f"{_MLFLOW}.tracking_uri = @ginlight.trackers.mlflow_tracking_uri()")
            if _value(_MLFLOW, "artifact_location") is None:
                bindings.append(f"{_MLFLOW}.artifact_location = @ginlight.trackers.mlflow_artifact_location()")
    if _referenced(_WANDB):
        if _value(_WANDB, "save_dir") in (".", None) and _value(_WANDB, "dir") is None:
            bindings.append(f"{_WANDB}.save_dir = @ginlight.trackers.store_root()")
        online_somewhere = _value(_WANDB, "project") or os.environ.get("WANDB_PROJECT")
        if not online_somewhere and not _value(_WANDB, "offline") and not _value(_WANDB, "log_model"):
            bindings.append(f"{_WANDB}.offline = True")
    for selector in _FOLDER_LOGGERS:
        if _referenced(selector) and _value(selector, "save_dir") is None:
            bindings.append(f"{selector}.save_dir = @ginlight.trackers.run_directory()")
    if bindings:
        with gin.unlock_config():
            gin.parse_config(bindings)


def _check_mlflow_store(parsed: ParsedConfig) -> None:
    """An MLflow tracking URI written in the config that does not answer fails now, before any run directory."""
    uri = _value(_MLFLOW, "tracking_uri") if _referenced(_MLFLOW) else None
    if not isinstance(uri, str) or not uri:
        return
    from mlflow.tracking import MlflowClient  # the mlflow extra, present: _check_installed passed

    try:
        with _environment_defaults(_QUICK_HTTP):
            MlflowClient(uri).search_experiments(max_results=1)
    except Exception as exc:  # noqa: BLE001 - stores fail in many ways: schemes, drivers, servers
        raise ConfigError(f"cannot reach the MLflow tracking store {_shown_uri(uri)}: {_first_line(exc)}",
                          location=parsed.binding_location(_MLFLOW, "tracking_uri"),
                          hint="Check MLFlowLogger.tracking_uri and that its server is up, or leave it unbound "
                               "for a local store under --root_dir.") from None


def _referenced(selector: str) -> bool:
    return any(reference.configurable.selector == selector
               for reference in gin.config.iterate_references(internals.parsed_bindings()))


def _value(selector: str, parameter: str) -> Any:
    """The value ``selector.parameter`` gets: bound, or its signature's default."""
    return lookup.query(selector, parameter, default=lookup.signature_defaults(selector).get(parameter))


def rerun_of(gin_files: Sequence[str | os.PathLike]) -> Path | None:
    """The run directory whose operative config the run starts from (``--reproduce``, or its ``--gin_file``)."""
    if not gin_files:
        return None
    first = Path(gin_files[0]).resolve()
    run = rundir.RunDir.holding(first) if first.name == rundir.OPERATIVE_CONFIG else None
    return None if run is None else run.path


def connect(trainer: Trainer, context: RunContext, parsed: ParsedConfig, *, resuming: bool) -> TrackerFeed:
    """Starts the tracker run of each of the trainer's loggers, before training; returns the callback that feeds them.

    Resuming, each logger attaches to the run that ``run_dir/run.json`` recorded for
    it (by its place among the loggers). Otherwise each starts a new run labelled
    with the run directory, the sweep and trial it belongs to and the run it reruns.
    A logger that cannot start its run raises :class:`ConfigError`, located in ``parsed``, the run's config.
    """
    run_dir = context.run_dir
    previous = _recorded(run_dir).get("runs", []) if resuming else []
    original = None if resuming else rerun_of(parsed.files)
    originals = _recorded(original).get("runs", []) if original is not None else []
    labels = _labels(run_dir, original, context.trial)
    runs, extras = [], []
    for index, logger in enumerate(trainer.loggers):
        kind = _kind(logger)
        extra: dict[str, Any] = {}
        before = _entry(previous, index, logger)
        if before is not None:
            kind.reattach(logger, before)
        else:
            linked = _entry(originals, index, logger)
            if linked is not None and linked.get("run_id") is not None:
                extra["ginlight/reproduces_run_id"] = linked["run_id"]
            kind.label(logger, {**labels, **extra}, run_dir)
        try:
            kind.start(logger)
            runs.append({"logger": type(logger).__name__, **kind.describe(logger)})
        except Exception as exc:  # noqa: BLE001 - a tracker fails in its own ways
            raise ConfigError(f"{type(logger).__name__} could not start its run: {_first_line(exc)}",
                              location=parsed.binding_location("lightning.Trainer", "logger"),
                              hint=kind.hint) from None
        extras.append(extra)
    return TrackerFeed(run_dir, list(trainer.loggers), labels, extras, {"root": str(context.root), "runs": runs})


def _labels(run_dir: Path, original: Path | None, trial: dict[str, Any] | None) -> dict[str, Any]:
    labels: dict[str, Any] = {"ginlight/run_dir": str(run_dir.resolve())}
    if trial is not None:
        labels.update({"ginlight/sweep": trial["study"], "ginlight/trial": trial["number"]})
    if original is not None:
        labels["ginlight/reproduces"] = str(original)
    return labels


def _entry(runs: list[dict[str, Any]], index: int, logger: Logger) -> dict[str, Any] | None:
    """The recorded run of the logger at ``index``, when a logger of the same class was there."""
    entry = runs[index] if index < len(runs) else None
    return entry if entry is not None and entry.get("logger") == type(logger).__name__ else None


def _recorded(run_dir: Path) -> dict[str, Any]:
    return rundir.RunRecord.read(run_dir).trackers


class TrackerFeed:
    """Gives each logger the experiment as each stage starts, and ``run.json`` once the run has ended.

    Not a callback of its own: the run's :class:`~ginlight.callbacks.OperativeConfigWriter` calls
    :meth:`on_stage_start` once it has written the stage's operative config.

    Args:
        run_dir: the run directory, whose files the loggers get.
        loggers: the trainer's loggers, as :func:`connect` started them.
        labels: hyperparameters every logger gets besides the bindings (run directory, sweep, rerun).
        extras: per logger, hyperparameters of its own (the original's tracker run id).
        entry: the ``run.json`` entry ``trackers``: ``{"root": where loggers bound without a location write,
            "runs": [one per logger]}``, updated with failures.
    """

    def __init__(self, run_dir: Path, loggers: list[Logger], labels: dict[str, Any],
                 extras: list[dict[str, Any]], entry: dict[str, Any]):
        self.run_dir = run_dir
        self.loggers = loggers
        self.labels = labels
        self.extras = extras
        self.entry = entry

    def started(self, record: rundir.RunRecord) -> None:
        """Records each logger's run in ``run.json``, before the stage, so that a killed run can be resumed."""
        record.update(trackers=self.entry)

    def on_stage_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """Sends the bindings, counts, labels and the run's files to every logger."""
        if not trainer.is_global_zero:
            return
        params = {**flat_bindings(), **_parameter_counts(pl_module), **_git(self.run_dir), **self.labels}
        files = [self.run_dir / name for name in FILES if (self.run_dir / name).is_file()]
        for logger, extra in zip(self.loggers, self.extras):
            _kind(logger).send(logger, {**params, **extra}, files)

    def finish(self, record: rundir.RunRecord) -> None:
        """Sends the final ``run.json``; a logger that fails to take it has the error in its ``run.json`` entry."""
        failed = False
        for logger, run in zip(self.loggers, self.entry["runs"]):
            try:
                _kind(logger).send(logger, {}, [self.run_dir / rundir.RECORD])
            except Exception as exc:  # noqa: BLE001 - the run's own records are complete; say what failed
                run["error"] = f"{type(exc).__name__}: {_first_line(exc)}"
                failed = True
        if failed:
            record.update(trackers=self.entry)


def flat_bindings() -> dict[str, Any]:
    """``{"scope/Configurable.param": value}`` of the operative config, macros resolved, names as it writes them."""
    flat = {}
    for (scope, selector), params in internals.operative_bindings().items():
        configurable = internals.configurable(selector, exact=True)
        if configurable.wrapped is gin.config.macro:
            continue  # the bindings that use a macro show its value
        name = internals.shortest_selector(selector)
        prefix = f"{scope}/{name}" if scope else name
        for param, value in params.items():
            value = lookup.resolve_macro(value)
            flat[f"{prefix}.{param}"] = value if isinstance(value, (int, float, str, bool)) else repr(value)
    return flat


def _parameter_counts(module: LightningModule) -> dict[str, int]:
    summary = ModelSummary(module, max_depth=0)
    total, trainable = summary.total_parameters, summary.trainable_parameters
    return {"ginlight/params_total": total, "ginlight/params_trainable": trainable,
            "ginlight/params_non_trainable": total - trainable}


def _git(run_dir: Path) -> dict[str, Any]:
    """The commit ``run.json`` recorded, and whether the tree was dirty; nothing outside a git work tree."""
    git = rundir.RunRecord.read(run_dir).git or {}
    return {f"ginlight/git_{key}": git[key] for key in ("commit", "dirty") if git.get(key) is not None}


class _Kind:
    """What a logger of some kind gets and how it is reattached; this one is for any Lightning logger.

    Lightning's ``Logger`` API has hyperparameters and metrics only, so the run's
    files go as hyperparameters holding their text (``ginlight/operative_config.gin``).
    """

    hint = "Check the logger's bindings."

    def label(self, logger: Logger, labels: dict[str, Any], run_dir: Path) -> None:
        """Labels the run the logger is about to start (the labels also go as hyperparameters)."""

    def reattach(self, logger: Logger, recorded: dict[str, Any]) -> None:
        """Points the logger, not yet started, at the run ``recorded`` describes."""

    def start(self, logger: Logger) -> None:
        if isinstance(getattr(type(logger), "experiment", None), property):
            logger.experiment  # noqa: B018 - Lightning's loggers start their run on first use

    def describe(self, logger: Logger) -> dict[str, Any]:
        """The logger's run, for ``run.json``: ``run_id`` and whatever else finds it again."""
        return {"run_id": _text(logger.version), "log_dir": getattr(logger, "log_dir", None)}

    def send(self, logger: Logger, params: dict[str, Any], files: list[Path]) -> None:
        logger.log_hyperparams({**params, **{f"ginlight/{path.name}": path.read_text() for path in files}})
        logger.save()


class _Versioned(_Kind):
    """A logger that numbers its runs ``version_N`` in a folder: a resumed one keeps the run's version."""

    def reattach(self, logger: TensorBoardLogger | CSVLogger, recorded: dict[str, Any]) -> None:
        internals.keep_version(logger, recorded.get("version"))  # not Lightning's next free one

    def describe(self, logger: TensorBoardLogger | CSVLogger) -> dict[str, Any]:
        return {"run_id": logger.log_dir, "version": logger.version}


class _CSV(_Versioned):
    """CSV: a resumed run goes on in the run's ``metrics.csv``, its earlier rows kept.

    Lightning's CSV writer deletes the ``metrics.csv`` of the folder it opens (it
    warns so): reattaching, the rows are read first and written back at once, so that
    the file holds them again even if this process is killed before its next save.
    """

    def reattach(self, logger: CSVLogger, recorded: dict[str, Any]) -> None:
        super().reattach(logger, recorded)
        metrics = Path(logger.log_dir) / ExperimentWriter.NAME_METRICS_FILE
        if not metrics.is_file():
            return
        with metrics.open(newline="") as file:
            earlier = list(csv.DictReader(file))
        with warnings.catch_warnings():  # the rows it says it will delete are written back below
            warnings.filterwarnings("ignore", message=internals.LOGS_DIRECTORY_EXISTS_WARNING)
            writer = logger.experiment
        writer.metrics.extend(earlier)
        writer.save()


class _TensorBoard(_Versioned):
    """TensorBoard: the files as text."""

    def send(self, logger: TensorBoardLogger, params: dict[str, Any], files: list[Path]) -> None:
        if params:
            logger.log_hyperparams(params)
        for path in files:  # indented: TensorBoard renders text as Markdown
            logger.experiment.add_text(path.name.split(".")[0], "    " + path.read_text().replace("\n", "\n    "))
        logger.experiment.flush()


class _MLflow(_Kind):
    """MLflow: the files as artifacts; tags for the run directory, sweep and rerun; ``run_id`` to reattach."""

    hint = "Check MLFlowLogger.tracking_uri and that its server is up."

    def label(self, logger: MLFlowLogger, labels: dict[str, Any], run_dir: Path) -> None:
        logger.tags = {**(logger.tags or {}), **{key.replace("/", "."): str(value) for key, value in labels.items()}}
        internals.name_mlflow_run(logger, _run_name(run_dir))

    def reattach(self, logger: MLFlowLogger, recorded: dict[str, Any]) -> None:
        internals.attach_mlflow_run(logger, recorded["run_id"])

    def start(self, logger: MLFlowLogger) -> None:
        with _environment_defaults(_QUICK_HTTP):
            logger.experiment.get_run(logger.run_id)

    def describe(self, logger: MLFlowLogger) -> dict[str, Any]:
        uri = logger.experiment.tracking_uri
        url = None
        if urlsplit(uri).scheme in ("http", "https"):
            url = f"{_shown_uri(uri).rstrip('/')}/#/experiments/{logger.experiment_id}/runs/{logger.run_id}"
        return {"run_id": logger.run_id, "experiment_id": logger.experiment_id, "tracking_uri": _shown_uri(uri),
                "url": url}

    def send(self, logger: MLFlowLogger, params: dict[str, Any], files: list[Path]) -> None:
        # MLflow keeps a parameter's first value and refuses another: a resumed run logs only what is new.
        logged = logger.experiment.get_run(logger.run_id).data.params
        new = {key: value for key, value in params.items() if key not in logged}
        if new:
            logger.log_hyperparams(new)
        for path in files:
            logger.experiment.log_artifact(logger.run_id, str(path))


class _Wandb(_Kind):
    """W&B: the files saved with the run; the sweep as the run's group; ``id`` with ``resume="must"`` to reattach."""

    hint = "Check the WandbLogger bindings, and that you are logged in (wandb login) or WANDB_MODE=offline."

    def label(self, logger: WandbLogger, labels: dict[str, Any], run_dir: Path) -> None:
        init = internals.wandb_init_arguments(logger)
        if init.get("group") is None and "ginlight/sweep" in labels:
            init["group"] = labels["ginlight/sweep"]
        if init.get("name") is None:
            init["name"] = _run_name(run_dir)

    def reattach(self, logger: WandbLogger, recorded: dict[str, Any]) -> None:
        internals.wandb_init_arguments(logger).update(id=recorded["run_id"], resume="must")

    def describe(self, logger: WandbLogger) -> dict[str, Any]:
        run = logger.experiment
        return {"run_id": run.id, "project": run.project, "offline": run.offline, "dir": run.dir,
                "url": None if run.offline else run.url}

    def send(self, logger: WandbLogger, params: dict[str, Any], files: list[Path]) -> None:
        if params:
            logger.log_hyperparams(params)
        for path in files:
            logger.experiment.save(str(path), base_path=str(path.parent), policy="now")


def _kind(logger: Logger) -> _Kind:
    for cls, kind in _KINDS:
        if isinstance(logger, cls):
            return kind
    return _GENERIC


_GENERIC = _Kind()
_KINDS: list[tuple[type, _Kind]] = [(MLFlowLogger, _MLflow()), (WandbLogger, _Wandb()),
                                    (TensorBoardLogger, _TensorBoard()), (CSVLogger, _CSV())]


def _run_name(run_dir: Path) -> str:
    """A tracker run's name: the run directory's last two parts (``classifier/20240101-120000``)."""
    return "/".join(run_dir.resolve().parts[-2:])


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def _shown_uri(uri: str) -> str:
    """``uri`` with any password masked, for messages and ``run.json``."""
    parts = urlsplit(uri)
    if not parts.password:
        return uri
    return urlunsplit(parts._replace(netloc=f"{parts.username}:***@{parts.hostname}"
                                            + (f":{parts.port}" if parts.port else "")))


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


@contextlib.contextmanager
def _environment_defaults(values: dict[str, str]) -> Iterator[None]:
    """``values`` in the environment where the user set none of them, while the block runs."""
    added = [key for key in values if key not in os.environ]
    os.environ.update({key: values[key] for key in added})
    try:
        yield
    finally:
        for key in added:
            os.environ.pop(key, None)
