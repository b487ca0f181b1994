"""Every reach into another library's private internals and message wording, in one place.

gin-config, Lightning, the trackers' loggers and Python have no public route to what the
functions below do. Each one names the private attribute or message it uses and the versions
it was checked on; ``tests/test_internals.py`` exercises each against the installed
library, so an upgrade that moves one fails there, loudly, and not somewhere inside
a run. Nothing else in ginlight touches another library's underscored names
(``tests/test_architecture.py`` checks it) or matches its messages.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import re
import tokenize
from typing import Any, Callable, Iterable, Iterator

import gin

# ---- gin-config (checked on 0.5.0) -------------------------------------------------------------
# gin keeps the parsed config, the operative config and its registry in module globals, with no
# public accessor for the questions ginlight asks of them (what does the config bind, before anything
# is built; which configurable is this object). Its error messages are its only report of where a
# mistake is, so their wording is matched here too.

Bindings = dict[tuple[str, str], dict[str, Any]]


def parsed_bindings() -> Bindings:
    """What the config binds, ``{(scope, selector): {parameter: value}}``, macros under selector
    ``gin.macro``: gin's private ``gin.config._CONFIG``, checked on gin-config 0.5.0. Mutable: gin
    builds each configurable's arguments in the order of its dict."""
    return gin.config._CONFIG


def operative_bindings() -> Bindings:
    """The parameters that configurables were called with so far, defaults included, keyed like
    :func:`parsed_bindings`: gin's private ``gin.config._OPERATIVE_CONFIG``, checked on gin-config 0.5.0."""
    return gin.config._OPERATIVE_CONFIG


def selectors() -> list[str]:
    """The full selector of every registered configurable: gin's private ``gin.config._REGISTRY``,
    checked on gin-config 0.5.0."""
    return [selector for selector, _ in gin.config._REGISTRY.items()]


def configurable(name: str, exact: bool = False) -> Any:
    """gin's record of the configurable ``name`` (``.selector``, ``.wrapped``): the one ``name``
    matches (any unique suffix of its selector), or with ``exact`` the one registered under ``name``,
    None if none is; gin's private ``gin.config._REGISTRY``, checked on gin-config 0.5.0. An
    ambiguous ``name`` raises gin's ``ValueError``."""
    if exact:
        return gin.config._REGISTRY.get(name)
    return gin.config._REGISTRY.get_match(name)


def selectors_matching(name: str) -> list[str]:
    """The selectors that ``name`` could mean: gin's private ``gin.config._REGISTRY``, checked on
    gin-config 0.5.0."""
    return list(gin.config._REGISTRY.matching_selectors(name))


def shortest_selector(selector: str) -> str:
    """The shortest name that still names ``selector`` unambiguously, as the operative config writes it:
    gin's private ``gin.config._REGISTRY``, checked on gin-config 0.5.0."""
    return gin.config._REGISTRY.minimal_selector(selector)


def registered_name(obj: Any) -> str | None:
    """The selector under which ``obj`` is registered, None when it is not: gin's private
    ``gin.config._inverse_lookup``, checked on gin-config 0.5.0."""
    found = gin.config._inverse_lookup(obj)
    return None if found is None else found.selector


def construction_function(cls: type) -> Any:
    """What gin calls to build ``cls`` and reads its parameters from: the first ``__init__`` or ``__new__`` in
    its MRO; gin's private ``gin.config._find_class_construction_fn``, checked on gin-config 0.5.0."""
    return gin.config._find_class_construction_fn(cls)


def set_include_folders(folders: Iterable[str]) -> None:
    """Makes ``folders`` the places gin looks for an ``include`` in, replacing those of earlier parses:
    gin's private ``gin.config._LOCATION_PREFIXES``, checked on gin-config 0.5.0 (its public
    ``add_config_file_search_path`` only adds, so a folder of an earlier config would stay)."""
    gin.config._LOCATION_PREFIXES[:] = list(folders)


@contextlib.contextmanager
def config_set_aside() -> Iterator[None]:
    """gin's config as it was before the block, again once the block ends, whatever the block parsed or cleared:
    gin's private ``_CONFIG``, ``_IMPORTS``, ``_OPERATIVE_CONFIG``, ``_SINGLETONS``, ``_CONFIG_IS_LOCKED`` and
    ``_LOCATION_PREFIXES``, checked on gin-config 0.5.0 (gin has no public way to keep a config while parsing another)."""
    config = gin.config
    saved = ({key: dict(values) for key, values in config._CONFIG.items()}, set(config._IMPORTS),
             {key: dict(values) for key, values in config._OPERATIVE_CONFIG.items()}, dict(config._SINGLETONS),
             config._CONFIG_IS_LOCKED, list(config._LOCATION_PREFIXES))
    try:
        yield
    finally:
        for current, kept in zip((config._CONFIG, config._IMPORTS, config._OPERATIVE_CONFIG, config._SINGLETONS),
                                 saved):
            current.clear()
            current.update(kept)
        config._CONFIG_IS_LOCKED = saved[4]
        config._LOCATION_PREFIXES[:] = saved[5]


#: How gin appends where a statement was to an exception raised for it: checked on gin-config 0.5.0.
MESSAGE_LOCATION = re.compile(r'\n\s*In file "(?P<file>[^"]+)", line (?P<line>\d+)\n(?P<source>.*)', re.S)
#: How gin appends the configurable being called to an exception raised inside it.
MESSAGE_CALL = re.compile(r"\n\s*In call to configurable '(?P<name>[^']+)'.*", re.S)
#: gin's message for a name no configurable matches; group 1 is the name.
UNKNOWN_CONFIGURABLE = re.compile(r"No configurable matching (?:reference '@)?'?([^'(]+)")
#: gin's message for a parameter a configurable does not have; groups: the configurable, the parameter.
UNKNOWN_PARAMETER = re.compile(r"Configurable '([^']+)' doesn't have a parameter named '([^']+)'")
#: gin's message, under dynamic registration, for a name whose first part no ``import`` bound; group 1 is that part.
UNIMPORTED_NAME = re.compile(r"'([^']+)' was not provided by an import statement")
#: gin's message, under dynamic registration, for a name its module or class lacks; groups: the module or
#: class (by its import path), the missing attribute.
UNRESOLVED_NAME = re.compile(r"Couldn't resolve selector \S+; <(?:module|class) '([^']+)'.* has no attribute (\w+)")
#: gin's message for a ``gin.REQUIRED`` parameter left unbound; groups: the configurable, the parameters.
REQUIRED_UNBOUND = re.compile(r"Required bindings for `([^`]+)` not provided in config: \[(.*)\]")
#: gin's message for a gin file it cannot open: the match ends before the folders it lists as searched.
UNOPENABLE_FILE = re.compile(r"Unable to open file: .*?(?=\. Searched)", re.S)
#: The loggers gin reports each place it looks for a gin file through (``gin.resource_reader``, with absl's
#: logging), and how those reports start.
FILE_SEARCH_LOGGERS = ("", "absl")
FILE_SEARCH_MESSAGES = ("Path not found", "system_path_file_exists")

# ---- Lightning (checked on 2.6) -----------------------------------------------------------------
# Lightning is imported inside the functions that need it: ginlight-train imports this module
# (through ginlight.gin.parsing) before it parses its flags, and --help must not wait for Lightning.

#: Classes a library takes where its annotations name a narrower one, ``{annotated: also accepted}`` by
#: qualified name, for :mod:`ginlight.gin.check`: ``Trainer.logger`` is annotated with lightning.pytorch's
#: ``Logger``, and Lightning's own ``LitLogger`` is a lightning.fabric ``Logger`` only (checked on 2.6.6).
ACCEPTED_FOR_ANNOTATION = {"lightning.pytorch.loggers.logger.Logger": "lightning.fabric.loggers.logger.Logger"}

#: The attribute Lightning sets on a LightningModule before and after each hook call: private
#: ``LightningModule._current_fx_name``, checked on lightning 2.6.
HOOK_NAME_ATTRIBUTE = "_current_fx_name"
#: The environment variable through which ``seed_everything(workers=True)`` asks for seeded DataLoader
#: workers, ``"1"`` when it does: Lightning's private ``PL_SEED_WORKERS`` convention, checked on lightning 2.6.
SEED_WORKERS_ENV = "PL_SEED_WORKERS"
#: The start of the warning Lightning gives on every fit where the ``srun`` command is installed but did not
#: start the process (``SLURMEnvironment._validate_srun_used``), checked on lightning 2.6.6.
SRUN_NOT_USED_WARNING = "The `srun` command is available on your system but is not used"
#: A word of the tip Lightning logs at every Trainer built without its cloud logger, through its ``rank_zero``
#: loggers (``LoggerConnector.configure_logger``), checked on lightning 2.6.6.
LITLOGGER_TIP = "litlogger"
#: The start of the warning a ``CSVLogger`` gives as it opens a version folder that holds files already, the
#: rows of which it will write over (``lightning.fabric``'s ``_ExperimentWriter``), checked on lightning 2.6.6.
LOGS_DIRECTORY_EXISTS_WARNING = "Experiment logs directory"


def is_multiprocessing_launcher(launcher: object) -> bool:
    """Whether ``launcher`` starts ranks by multiprocessing (spawn or fork): Lightning's private
    ``lightning.pytorch.strategies.launchers._MultiProcessingLauncher``, checked on lightning 2.6."""
    from lightning.pytorch.strategies.launchers import _MultiProcessingLauncher

    return isinstance(launcher, _MultiProcessingLauncher)


def started_by_lightning_launcher() -> bool:
    """Whether Lightning's DDP launcher started this process, one of a run's other ranks, by running the command
    again: its private ``_SubprocessScriptLauncher`` gives each process it starts ``LOCAL_RANK`` 1 and up in a copy
    of its own environment, where it sets 0; checked on lightning 2.6.6."""
    return int(os.environ.get("LOCAL_RANK") or 0) > 0


def auto_accelerator() -> str:
    """The accelerator that ``Trainer(accelerator="auto")`` chooses on this machine (``"cpu"``, ``"cuda"``,
    ``"mps"``, ``"tpu"``): Lightning's private ``lightning.fabric.utilities.device_parser._select_auto_accelerator``,
    which its accelerator connector calls, checked on lightning 2.6."""
    from lightning.fabric.utilities.device_parser import _select_auto_accelerator

    return _select_auto_accelerator()


def save_unless_saved(checkpoint: object, trainer: object) -> None:
    """Has a monitor-less ``ModelCheckpoint`` save the trainer's state now, unless it saved at this step
    already: its private ``_should_skip_saving_checkpoint``, ``_save_none_monitor_checkpoint`` and
    ``_monitor_candidates``, checked on lightning 2.6."""
    if not checkpoint._should_skip_saving_checkpoint(trainer):
        checkpoint._save_none_monitor_checkpoint(trainer, checkpoint._monitor_candidates(trainer))

def stop_after_this_step(trainer: Any) -> None:
    """Has the training loop stop where it stops on SIGTERM, at the end of the current step, saving where it
    stopped: sets the flag Lightning's SIGTERM handler sets, the private
    ``Trainer._signal_connector.received_sigterm``, checked on lightning 2.6."""
    trainer._signal_connector.received_sigterm = True


def train_loaders_resumable(trainer: Any) -> bool:
    """Whether Lightning saves and restores the training loaders' place inside an epoch: its own test of
    every flattened loader of the private ``FitLoop._combined_loader`` against its private
    ``lightning.fabric.utilities.types._Stateful`` (``state_dict`` and ``load_state_dict``), checked on
    lightning 2.6. True before the loaders are set up."""
    from lightning.fabric.utilities.types import _Stateful

    combined = trainer.fit_loop._combined_loader
    return combined is None or all(isinstance(loader, _Stateful) for loader in combined.flattened)


# ---- torchmetrics (checked on 1.9) -------------------------------------------------------------


def metric_reductions(metric: Any) -> dict[str, Any]:
    """How each state of a torchmetrics ``Metric`` is reduced across ranks, ``{state: function}``, strings
    such as ``"sum"`` already turned into ``dim_zero_sum`` and the like: its private ``_reductions``
    (what ``add_state(dist_reduce_fx=...)`` fills), checked on torchmetrics 1.9."""
    return metric._reductions

# ---- trackers' loggers (checked on lightning 2.6) ------------------------------------------------
# gin builds a logger before ginlight knows the run it belongs to, so ginlight completes it after it
# is built and before its first use: the run to attach to, its name, its version folder.


def keep_version(logger: Any, version: int | str | None) -> None:
    """Has a ``TensorBoardLogger`` or ``CSVLogger`` not given a version write into ``version_<version>``,
    rather than Lightning's next free one: their private ``_version``, checked on lightning 2.6."""
    if logger._version is None:
        logger._version = version


def name_mlflow_run(logger: Any, name: str) -> None:
    """Names the run an ``MLFlowLogger`` not given a ``run_name`` will create: its private ``_run_name``,
    checked on lightning 2.6."""
    if logger._run_name is None:
        logger._run_name = name


def attach_mlflow_run(logger: Any, run_id: str) -> None:
    """Has an ``MLFlowLogger`` log to the existing run ``run_id`` instead of creating one (what its ``run_id``
    argument does when given at construction): its private ``_run_id``, checked on lightning 2.6."""
    logger._run_id = run_id


def wandb_init_arguments(logger: Any) -> dict[str, Any]:
    """The arguments a ``WandbLogger`` will pass to ``wandb.init`` when it starts its run, to complete before
    it does (``id``, ``resume``, ``group``, ``name``): its private ``_wandb_init``, checked on lightning 2.6."""
    return logger._wandb_init


# ---- Optuna (checked on 5.1) ---------------------------------------------------------------------

#: The modules Optuna's ``RDBStorage`` imports on first use rather than with ``optuna``: the private
#: ``optuna.storages._rdb.storage``'s lazy imports (SQLAlchemy, Alembic) and its ``models``, checked on optuna 5.1.
OPTUNA_STORAGE_MODULES = ("sqlalchemy", "sqlalchemy.dialects.sqlite", "sqlalchemy.exc", "sqlalchemy.orm",
                          "alembic.command", "alembic.config", "alembic.migration", "alembic.script",
                          "optuna.storages._rdb.models")

# ---- CPython (checked on 3.11 and 3.12) ----------------------------------------------------------

#: Python's message for a module that no import finds; group 1 is the module, quoted.
MODULE_NOT_FOUND = re.compile(r"No module named (.*)", re.S)
#: Python's message for a call that left out required positional arguments; group 1 lists them, quoted.
MISSING_ARGUMENTS = re.compile(r"missing \d+ required positional arguments?: (.*)")


def is_protocol(cls: type) -> bool:
    """Whether ``cls`` is a ``typing.Protocol`` class (which ``isinstance`` cannot judge unless runtime-checkable):
    typing's private ``_is_protocol`` (``typing.is_protocol`` comes with 3.13), checked on CPython 3.11 and 3.12."""
    return bool(getattr(cls, "_is_protocol", False))


def token_error(exc: tokenize.TokenError) -> tuple[str, int]:
    """What :mod:`tokenize` found wrong (an unclosed bracket or string at the end of a text), and the text's last
    line: ``TokenError``'s ``args``, ``(message, (line, column))``, where the line is the one after the text."""
    message, (line, _) = exc.args
    return message, line - 1



def run_exit_hooks() -> None:
    """Runs the functions registered with :mod:`atexit`, as an interpreter that exits normally does: for a
    process ``multiprocessing`` forked, which ends with ``os._exit`` and so skips them (W&B finishes its
    offline run in one). The private ``atexit._run_exitfuncs``, checked on CPython 3.11 and 3.12; each hook
    runs once, as it is unregistered after."""
    atexit._run_exitfuncs()


def fork_forkserver(preload: Iterable[str], prepare: Callable[[], None]) -> None:
    """Starts ``multiprocessing``'s fork server as a fork of this process, so that it holds every module this
    process has imported without importing them again, as the fresh interpreter ``ensure_running`` starts would.

    ``prepare`` runs in the server first, then it imports ``preload`` and serves as usual. The caller must not
    have started a thread, so no other can start a server meanwhile: the fork is made without the server's
    ``_lock``, which would otherwise stay held in the server and every process it forks (a trial that starts
    a fork server of its own would wait on it forever). What ``ForkServer.ensure_running`` does, with
    ``os.fork`` in place of ``spawnv_passfds``: the private ``multiprocessing.forkserver._forkserver`` and its
    ``_forkserver_pid``, ``_forkserver_address`` and ``_forkserver_alive_fd``, and
    ``multiprocessing.connection.arbitrary_address``, checked on CPython 3.11. Does nothing when a server
    was started already.
    """
    import socket  # with multiprocessing's server, for sweeps only: ginlight-train --help does not wait for them
    from multiprocessing import connection, forkserver, resource_tracker, util

    server = forkserver._forkserver
    if server._forkserver_pid is not None:
        return
    resource_tracker.ensure_running()
    with socket.socket(socket.AF_UNIX) as listener:
        address = connection.arbitrary_address("AF_UNIX")
        listener.bind(address)
        if not util.is_abstract_socket_namespace(address):
            os.chmod(address, 0o600)
        listener.listen()
        # Every client holds the write end of the "alive" pipe; the server exits when the last one closes it.
        alive_r, alive_w = os.pipe()
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                os.close(alive_w)
                prepare()
                forkserver.main(listener.fileno(), alive_r, list(preload))
            except SystemExit:  # how the server ends, once no client is left
                code = 0
            finally:
                os._exit(code)
        os.close(alive_r)
        server._forkserver_address = address
        server._forkserver_alive_fd = alive_w
        server._forkserver_pid = pid
