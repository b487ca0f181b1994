"""ginlight.internals: each reach into another library's private internals, exercised against the installed one,
so that an upgrade that moves a private name fails here, by name, rather than somewhere inside a run."""

from __future__ import annotations

import importlib
import io
import json
import logging
import os
import subprocess
import sys
import tokenize
import typing
import warnings
from pathlib import Path

import gin
import pytest
import torch
from lightning import Trainer, seed_everything
from lightning.pytorch.accelerators import CPUAccelerator, CUDAAccelerator, MPSAccelerator, XLAAccelerator
from lightning.fabric.plugins.environments import SLURMEnvironment
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.demos.boring_classes import BoringModel
from lightning.pytorch.loggers import CSVLogger, MLFlowLogger, TensorBoardLogger, WandbLogger
import wandb
from mlflow.tracking import MlflowClient
from torchmetrics import MeanMetric
from torchmetrics.utilities.data import dim_zero_cat, dim_zero_max, dim_zero_sum

from ginlight import internals

# ---- Lightning (checked on 2.6) -----------------------------------------------------------------


def _quiet_trainer(**kwargs) -> Trainer:
    return Trainer(logger=False, enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                   **kwargs)


def _fitted(tmp_path, model: BoringModel | None = None) -> Trainer:
    trainer = _quiet_trainer(max_steps=2, limit_val_batches=0, default_root_dir=tmp_path)
    trainer.fit(model or BoringModel())
    return trainer


def test_lightning_sets_the_hook_name_attribute_on_the_module_around_each_hook(tmp_path):
    assigned: list[str] = []

    class Recording(BoringModel):
        def __setattr__(self, name, value):
            assigned.append(name)
            super().__setattr__(name, value)

    _fitted(tmp_path, Recording())
    # The System's __setattr__ fast path is for this attribute: dozens of assignments per step.
    assert assigned.count(internals.HOOK_NAME_ATTRIBUTE) > 10, sorted(set(assigned))


def test_ddp_spawn_and_ddp_fork_start_ranks_by_multiprocessing_and_ddp_by_rerunning_the_command():
    launchers = {strategy: _quiet_trainer(strategy=strategy, accelerator="cpu", devices=2).strategy.launcher
                 for strategy in ("ddp_spawn", "ddp_fork", "ddp")}
    assert {strategy: internals.is_multiprocessing_launcher(launcher) for strategy, launcher in launchers.items()} \
        == {"ddp_spawn": True, "ddp_fork": True, "ddp": False}
    # What ginlight.trainer.spawns_ranks reads beside it: only spawned ranks start without this process's memory.
    assert not launchers["ddp_spawn"].is_interactive_compatible and launchers["ddp_fork"].is_interactive_compatible


def test_the_ranks_lightnings_ddp_launcher_starts_and_only_they_are_told_apart(monkeypatch):
    from lightning.fabric.plugins.environments import LightningEnvironment
    from lightning.pytorch.strategies.launchers import subprocess_script

    started = []
    monkeypatch.setattr(subprocess_script.subprocess, "Popen", lambda command, env, cwd: started.append(env))
    for name in ("MASTER_ADDR", "MASTER_PORT", "NODE_RANK", "LOCAL_RANK", "WORLD_SIZE"):
        monkeypatch.delenv(name, raising=False)  # restored as they were: the launcher sets them in this process
    assert not internals.started_by_lightning_launcher()  # a process nobody launched
    # What its launch does first (then it watches the processes and calls the stage), its private part alone.
    subprocess_script._SubprocessScriptLauncher(LightningEnvironment(), num_processes=3,
                                                num_nodes=1)._call_children_scripts()
    assert not internals.started_by_lightning_launcher() and len(started) == 2  # rank 0, which started them
    for rank, env in enumerate(started, start=1):
        monkeypatch.setenv("LOCAL_RANK", env["LOCAL_RANK"])
        assert internals.started_by_lightning_launcher(), rank


def test_a_model_checkpoint_saves_the_state_once_per_step(tmp_path):
    trainer = _fitted(tmp_path / "run")
    checkpoint = ModelCheckpoint(dirpath=tmp_path / "checkpoints", filename="end")
    internals.save_unless_saved(checkpoint, trainer)
    saved = tmp_path / "checkpoints" / "end.ckpt"
    assert saved.is_file()
    saved.unlink()
    internals.save_unless_saved(checkpoint, trainer)  # saved at this step already: ModelCheckpoint's own skip test
    assert not saved.exists()


def test_the_auto_accelerator_is_the_one_a_trainer_given_auto_uses():
    kinds = {"cpu": CPUAccelerator, "cuda": CUDAAccelerator, "mps": MPSAccelerator, "tpu": XLAAccelerator}
    assert type(_quiet_trainer(accelerator="auto").accelerator) is kinds[internals.auto_accelerator()]


def test_the_sigterm_flag_stops_training_after_the_current_step(tmp_path):
    class StopsAtStepThree(BoringModel):
        def on_train_batch_start(self, batch, batch_idx):
            if self.trainer.global_step == 3:
                internals.stop_after_this_step(self.trainer)

    trainer = _quiet_trainer(max_steps=10, limit_val_batches=0, default_root_dir=tmp_path)
    with pytest.raises(SystemExit):  # Lightning's SIGTERMException, raised at the end of the step
        trainer.fit(StopsAtStepThree())
    assert trainer.global_step == 4 and trainer.interrupted


class _Resumable(list):
    def state_dict(self):
        return {}

    def load_state_dict(self, state):
        pass


@pytest.mark.parametrize("resumable", [True, False])
def test_lightning_saves_the_place_of_train_loaders_with_state_dict_and_load_state_dict(tmp_path, resumable):
    seen = {}

    class Model(BoringModel):
        def train_dataloader(self):
            loader = super().train_dataloader()
            return _Resumable(loader) if resumable else loader

        def on_train_start(self):
            seen["resumable"] = internals.train_loaders_resumable(self.trainer)

    trainer = _quiet_trainer(max_steps=1, limit_val_batches=0, default_root_dir=tmp_path)
    assert internals.train_loaders_resumable(trainer)  # nothing set up yet
    trainer.fit(Model())
    assert seen["resumable"] is resumable


def test_seed_everything_asks_for_seeded_workers_through_its_environment_variable(monkeypatch):
    monkeypatch.delenv(internals.SEED_WORKERS_ENV, raising=False)  # restored as it was afterwards
    seed_everything(1, workers=True, verbose=False)
    assert os.environ.get(internals.SEED_WORKERS_ENV) == "1"
    seed_everything(1, workers=False, verbose=False)
    assert os.environ.get(internals.SEED_WORKERS_ENV) == "0"


# ---- torchmetrics (checked on 1.9) -------------------------------------------------------------


def test_a_metrics_reductions_are_its_states_dist_reduce_functions_strings_resolved():
    metric = MeanMetric()
    metric.add_state("kept", default=[], dist_reduce_fx="cat")
    metric.add_state("largest", default=torch.tensor(0.0), dist_reduce_fx="max")
    metric.add_state("own", default=torch.tensor(0.0), dist_reduce_fx=None)
    assert internals.metric_reductions(metric) == {"mean_value": dim_zero_sum, "weight": dim_zero_sum,
                                                   "kept": dim_zero_cat, "largest": dim_zero_max, "own": None}


# ---- gin-config ---------------------------------------------------------------------------------


# Registered with gin by these tests only: a library function registered here under another name would
# stop a later test in this process from registering it by its own path.
def indent(text: str, prefix: str, predicate=None) -> str:
    return "".join(prefix + line for line in text.splitlines(True))


def dedent(text: str) -> str:
    return text


def fill(text: str) -> str:
    return text


def shorten(text: str, width: int = 10) -> str:
    return text[:width]


@pytest.fixture
def gin_config():
    gin.clear_config()
    yield
    gin.clear_config()


def test_gin_parsed_and_operative_bindings_are_what_the_config_binds_and_what_was_called(gin_config):
    gin.external_configurable(indent, "internals_test.indent")
    gin.parse_config(["internals_test.indent.prefix = '> '", "internals_test.indent.predicate = None",
                      "LEVEL = 2"])
    assert internals.parsed_bindings()[("", "internals_test.indent")] == {"prefix": "> ", "predicate": None}
    assert internals.parsed_bindings()[("LEVEL", "gin.macro")] == {"value": 2}  # a macro: its name as the scope
    assert gin.get_configurable("internals_test.indent")("a\n") == "> a\n"
    assert internals.operative_bindings()[("", "internals_test.indent")] == {"prefix": "> ", "predicate": None}


def test_gin_registry_lookups_find_a_configurable_by_any_suffix_and_by_object():
    wrapper = gin.external_configurable(dedent, "internals_test.sub.dedent")
    assert "internals_test.sub.dedent" in internals.selectors()
    assert internals.configurable("sub.dedent").wrapped is dedent
    assert internals.configurable("internals_test.sub.dedent", exact=True).selector == "internals_test.sub.dedent"
    assert internals.configurable("no.such.thing", exact=True) is None
    assert internals.selectors_matching("sub.dedent") == ["internals_test.sub.dedent"]
    assert internals.shortest_selector("internals_test.sub.dedent") == "dedent"
    assert internals.registered_name(wrapper) == "internals_test.sub.dedent"
    assert internals.registered_name(fill) is None


def test_gin_config_set_aside_is_back_whole_after_the_block_whatever_it_parsed(tmp_path, gin_config):
    gin.external_configurable(shorten, "internals_test.shorten")
    internals.set_include_folders([str(tmp_path)])
    gin.parse_config(["internals_test.shorten.width = 3", "WIDTH = 3"])
    assert gin.get_configurable("internals_test.shorten")("abcdef") == "abc"
    gin.finalize()  # locks the config
    before = (gin.config_str(), gin.operative_config_str())
    with internals.config_set_aside():
        gin.clear_config()
        gin.parse_config(["internals_test.shorten.width = 5", "OTHER = 1"])
        internals.set_include_folders(["elsewhere"])
        assert gin.get_configurable("internals_test.shorten")("abcdef") == "abcde"
    assert (gin.config_str(), gin.operative_config_str()) == before
    assert gin.query_parameter("%WIDTH") == 3 and internals.parsed_bindings().get(("OTHER", "gin.macro")) is None
    assert gin.config_is_locked()
    assert gin.config._LOCATION_PREFIXES == [str(tmp_path)]


def test_gin_reads_a_class_s_parameters_from_the_first_init_or_new_in_its_mro():
    class Made:
        def __new__(cls, size: int):
            return super().__new__(cls)

    class Child(Made):
        pass

    class Built(Made):
        def __init__(self, width: int):
            pass

    assert internals.construction_function(Child) is Made.__new__
    assert internals.construction_function(Built) is Built.__init__
    gin.external_configurable(Child, "internals_test.Child")
    gin.parse_config("internals_test.Child.size = 1")  # gin binds what that function takes
    with pytest.raises(ValueError, match="parameter named 'width'"):
        gin.parse_config("internals_test.Child.width = 1")
    gin.clear_config()


def test_lightning_s_litlogger_is_a_fabric_logger_only_where_trainer_logger_names_pytorch_s_logger():
    from lightning.pytorch.loggers import LitLogger, Logger  # not at the top: the names are the point here

    ((annotated, accepted),) = internals.ACCEPTED_FOR_ANNOTATION.items()
    names = {f"{k.__module__}.{k.__qualname__}" for k in LitLogger.__mro__}
    assert annotated == f"{Logger.__module__}.{Logger.__qualname__}" and annotated not in names and accepted in names
    assert Logger in typing.get_args(typing.get_type_hints(Trainer.__init__)["logger"])


def test_gin_include_folders_are_replaced_not_added_to(tmp_path, gin_config):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "inc.gin").write_text("X = 1\n")
    internals.set_include_folders([str(tmp_path / "a")])
    gin.parse_config("include 'inc.gin'")
    assert gin.query_parameter("%X") == 1
    gin.clear_config()
    internals.set_include_folders([str(tmp_path / "b")])
    with pytest.raises(IOError):
        gin.parse_config("include 'inc.gin'")


def test_gin_message_wording_is_what_ginlight_matches(gin_config, tmp_path):
    gin.external_configurable(indent, "internals_test.indent")
    path = tmp_path / "bad.gin"
    path.write_text("internals_test.indent.prefx = 1\n")
    with pytest.raises(Exception) as caught:
        gin.parse_config_file(str(path))
    text = str(caught.value)
    assert internals.UNKNOWN_PARAMETER.match(text).groups() == ("internals_test.indent", "prefx")
    location = internals.MESSAGE_LOCATION.search(text)
    assert (location["file"], location["line"]) == (str(path), "1")
    with pytest.raises(Exception) as caught:
        gin.parse_config("no_such_configurable.x = 1")
    assert internals.UNKNOWN_CONFIGURABLE.match(str(caught.value))[1].startswith("no_such_configurable")

    @gin.configurable("internals_test.needs")
    def needs(value=gin.REQUIRED):
        raise ValueError("inside the call")

    with pytest.raises(Exception) as caught:
        needs()
    assert internals.REQUIRED_UNBOUND.search(str(caught.value)).groups() == ("needs", "'value'")
    with pytest.raises(ValueError) as caught:
        needs(1)
    assert internals.MESSAGE_CALL.search(str(caught.value))["name"] == "internals_test.needs"


def test_gin_dynamic_registration_message_wording_is_what_ginlight_matches(gin_config):
    dynamic = "from __gin__ import dynamic_registration\nimport textwrap as tw\n"
    with pytest.raises(Exception) as caught:
        gin.parse_config(dynamic + "tw.indnt.prefix = 1\n")
    assert internals.UNRESOLVED_NAME.match(str(caught.value)).groups() == ("textwrap", "indnt")
    with pytest.raises(Exception) as caught:
        gin.parse_config(dynamic + "textwrap.indent.prefix = 1\n")
    assert internals.UNIMPORTED_NAME.match(str(caught.value))[1] == "textwrap"


def test_gin_reports_a_file_it_cannot_open_with_the_wording_ginlight_matches_and_quiets(gin_config, tmp_path, caplog):
    missing = tmp_path / "missing.gin"
    caplog.set_level(logging.INFO)
    with pytest.raises(IOError) as caught:
        gin.parse_config_file(str(missing))
    assert internals.UNOPENABLE_FILE.search(str(caught.value))[0] == f"Unable to open file: {missing}"
    searched = [record for record in caplog.records if record.getMessage().startswith(internals.FILE_SEARCH_MESSAGES)]
    loggers = {logging.getLogger(name).name for name in internals.FILE_SEARCH_LOGGERS}
    assert searched and {record.name for record in searched} <= loggers


# ---- trackers' loggers --------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def own_environment():
    """MLflow and W&B set process-wide environment variables as they start (``MLFLOW_TRACKING_URI``,
    ``WANDB_SERVICE``), which every later run this process starts would inherit: each test's are undone."""
    saved = dict(os.environ)
    yield
    os.environ.clear()
    os.environ.update(saved)


@pytest.mark.parametrize("kind", [TensorBoardLogger, CSVLogger])
def test_a_folder_logger_not_given_a_version_keeps_the_one_it_is_given_later(tmp_path, kind):
    logger = kind(save_dir=tmp_path)
    internals.keep_version(logger, 3)
    assert logger.version == 3 and Path(logger.log_dir).name == "version_3"
    chosen = kind(save_dir=tmp_path, version=1)
    internals.keep_version(chosen, 3)  # the user's own version stays
    assert chosen.version == 1


@pytest.mark.slow
def test_an_mlflow_logger_attached_to_a_run_logs_to_it_and_creates_none(tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(uri)
    experiment = client.create_experiment("internals", artifact_location=str(tmp_path / "artifacts"))
    existing = client.create_run(experiment).info.run_id
    logger = MLFlowLogger(experiment_name="internals", tracking_uri=uri)
    internals.attach_mlflow_run(logger, existing)
    logger.log_metrics({"x": 1.0}, step=0)
    assert logger.run_id == existing
    assert [run.info.run_id for run in client.search_runs([experiment])] == [existing]
    assert client.get_run(existing).data.metrics == {"x": 1.0}

    named = MLFlowLogger(experiment_name="internals", tracking_uri=uri)
    internals.name_mlflow_run(named, "runs/classifier/1")
    assert client.get_run(named.run_id).info.run_name == "runs/classifier/1"


@pytest.mark.slow
def test_the_wandb_init_arguments_decide_the_run_wandb_starts(tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    logger = WandbLogger(save_dir=str(tmp_path), project="internals")
    arguments = internals.wandb_init_arguments(logger)
    assert {"id", "name", "resume", "project", "dir"} <= set(arguments)
    arguments.update(id="ginlight-internals", name="runs/classifier/1", group="sweep-1")
    try:
        run = logger.experiment
        assert (run.id, run.name, run.group) == ("ginlight-internals", "runs/classifier/1", "sweep-1")
    finally:
        logger.experiment.finish()
        wandb.teardown()  # its service process, which the next W&B run of this process would join


def test_lightning_srun_warning_starts_with_the_wording_ginlight_filters(monkeypatch, tmp_path):
    """On a machine with ``srun`` installed, outside a SLURM allocation, Lightning warns with this wording."""
    srun = tmp_path / "srun"
    srun.write_text("#!/bin/sh\n")
    srun.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    for name in [name for name in os.environ if name.startswith("SLURM_")]:
        monkeypatch.delenv(name)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        SLURMEnvironment.detect()
    assert [str(w.message) for w in caught if str(w.message).startswith(internals.SRUN_NOT_USED_WARNING)]


def test_lightning_logs_its_cloud_logger_tip_with_the_word_ginlight_filters(tmp_path, caplog):
    """Every Trainer built without Lightning's cloud logger logs the tip, through a rank_zero logger (which
    ginlight's quiet filter, applied by an earlier run in this process, is taken off for the test)."""
    loggers = [logging.getLogger(name) for name in
               ("lightning.pytorch.utilities.rank_zero", "lightning.fabric.utilities.rank_zero")]
    filters = [list(logger.filters) for logger in loggers]
    for logger in loggers:
        logger.filters.clear()
        logger.addHandler(caplog.handler)
    try:
        with caplog.at_level(logging.INFO, logger="lightning.pytorch.utilities.rank_zero"):
            Trainer(logger=CSVLogger(tmp_path), enable_checkpointing=False, enable_progress_bar=False)
    finally:
        for logger, kept in zip(loggers, filters):
            logger.removeHandler(caplog.handler)
            logger.filters[:] = kept
    assert [record for record in caplog.records if internals.LITLOGGER_TIP in record.getMessage()]


def test_a_csv_logger_opening_a_folder_with_files_warns_with_the_wording_ginlight_filters(tmp_path):
    logger = CSVLogger(tmp_path, version=0)
    Path(logger.log_dir).mkdir(parents=True)
    (Path(logger.log_dir) / "metrics.csv").write_text("step\n0\n")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        logger.experiment
    assert [w for w in caught if str(w.message).startswith(internals.LOGS_DIRECTORY_EXISTS_WARNING)]


@pytest.mark.slow
def test_exit_hooks_run_in_a_process_that_ends_with_os_exit(tmp_path):
    """A forked sweep trial ends with os._exit: the hooks run once, when asked, and not again."""
    script = ("import atexit, os\n"
              "from ginlight import internals\n"
              "atexit.register(print, 'hook ran')\n"
              "internals.run_exit_hooks()\n"
              "os._exit(0)\n")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "hook ran\n"


def test_python_message_wording_is_what_ginlight_matches():
    with pytest.raises(ModuleNotFoundError) as caught:
        importlib.import_module("ginlight_internals_no_such_module")
    assert internals.MODULE_NOT_FOUND.search(str(caught.value))[1] == "'ginlight_internals_no_such_module'"

    def two(first, second):
        return first, second

    with pytest.raises(TypeError) as caught:
        two()
    assert internals.MISSING_ARGUMENTS.search(str(caught.value))[1] == "'first' and 'second'"
    with pytest.raises(TypeError) as caught:
        two(1)
    assert internals.MISSING_ARGUMENTS.search(str(caught.value))[1] == "'second'"


def test_tokenize_reports_an_unclosed_bracket_at_the_last_line_of_the_text():
    with pytest.raises(tokenize.TokenError) as caught:
        list(tokenize.generate_tokens(io.StringIO("x = 1\ny = (2,\n3\n").readline))
    message, line = internals.token_error(caught.value)
    assert line == 3 and "EOF in multi-line statement" in message


def test_a_protocol_class_is_told_from_its_implementations():
    class Closeable(typing.Protocol):
        def close(self) -> None: ...

    class File(Closeable):
        def close(self) -> None:
            pass

    assert internals.is_protocol(Closeable) and internals.is_protocol(typing.SupportsInt)
    assert not internals.is_protocol(File) and not internals.is_protocol(int)


@pytest.mark.slow
def test_a_forked_fork_server_serves_forkserver_processes_with_this_process_s_modules(tmp_path):
    """The server is a child of this process, holds what this process set up before the fork without importing
    it anew, ran ``prepare``, imported its preload, and forks each process it is asked for, in which the fork
    server's lock is free (such a process may start a server of its own)."""
    (tmp_path / "preloaded.py").write_text("import os\nIMPORTED_BY = os.getpid()\n")
    script = ("import multiprocessing, os, sys, json\n"
              "from ginlight import internals\n"
              "json.SET_BEFORE_THE_FORK = os.getpid()\n"
              "def prepare():\n"
              "    json.PREPARED = True\n"
              "def child(queue):\n"
              "    import preloaded\n"
              "    from multiprocessing import forkserver\n"
              "    free = forkserver._forkserver._lock.acquire(blocking=False)\n"
              "    queue.put((json.SET_BEFORE_THE_FORK, json.PREPARED, preloaded.IMPORTED_BY, os.getppid(), free))\n"
              "if __name__ == '__main__':\n"
              "    internals.fork_forkserver(['preloaded'], prepare)\n"
              "    context = multiprocessing.get_context('forkserver')\n"
              "    queue = context.SimpleQueue()\n"
              "    for _ in range(2):\n"
              "        process = context.Process(target=child, args=(queue,))\n"
              "        process.start()\n"
              "        process.join()\n"
              "        print(json.dumps([*queue.get(), process.exitcode]))\n"
              "    from multiprocessing import forkserver\n"
              "    server = forkserver._forkserver._forkserver_pid\n"
              "    print(json.dumps([os.getpid(), server]))\n")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120,
                            cwd=tmp_path, env={**os.environ, "PYTHONPATH": f"{tmp_path}{os.pathsep}"
                                                                             f"{os.environ.get('PYTHONPATH', '')}"})
    assert result.returncode == 0, result.stderr
    *children, (parent, server) = (json.loads(line) for line in result.stdout.splitlines())
    assert children == [[parent, True, server, server, True, 0]] * 2


@pytest.mark.slow
def test_optuna_s_storage_imports_on_first_use_the_modules_ginlight_names_and_no_others(tmp_path):
    """``import optuna`` leaves them out; with them imported, opening an SQLite study imports nothing more of
    SQLAlchemy, Alembic or Optuna."""
    script = ("import importlib, json, sys, optuna\n"
              "from ginlight import internals\n"
              "missing = [m for m in internals.OPTUNA_STORAGE_MODULES if m not in sys.modules]\n"
              "for module in internals.OPTUNA_STORAGE_MODULES:\n"
              "    importlib.import_module(module)\n"
              "before = set(sys.modules)\n"
              f"optuna.storages.RDBStorage('sqlite:///{tmp_path / 'study.db'}')\n"
              "new = [m for m in set(sys.modules) - before if m.split('.')[0] in ('sqlalchemy', 'alembic', 'optuna')]\n"
              "print(json.dumps([missing, sorted(new)]))\n")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == [list(internals.OPTUNA_STORAGE_MODULES), []]
