"""Experiment trackers (ginlight.trackers): real MLflow (SQLite store) and W&B (offline), read back through their
own client and files; CSV and TensorBoard; --resume after SIGKILL, --reproduce, sweeps, and bad input."""

from __future__ import annotations

import csv
import json
import struct
import time
from pathlib import Path

import pytest
import steering
import yaml
from conftest import CONFIGS, REPO, SHORT, bindings, ginlight_sweep, ginlight_train, read_record, run_dirs
from mlflow.tracking import MlflowClient
from steering import Held
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from test_resume import BATCHES_PER_EPOCH
from wandb.proto import wandb_internal_pb2

import ginlight

pytestmark = pytest.mark.slow

EPOCHS = 3
SETTINGS = [*SHORT, f"MAX_EPOCHS={EPOCHS}"]
FILES = {"operative_config.gin", "config.gin", "run.json"}
# W&B keeps its settings, cache and staging in the home directory unless told otherwise.
WANDB_HOME = ("WANDB_CONFIG_DIR", "WANDB_CACHE_DIR", "WANDB_DATA_DIR")


def _loggers(*loggers: str) -> str:
    return f"Trainer.logger = [{', '.join(loggers)}]"


def _mlflow(root: Path) -> MlflowClient:
    """MLflow's own client on the store ginlight puts under ``root`` (the --root_dir)."""
    return MlflowClient(f"sqlite:///{root / 'mlflow.db'}")


def _mlflow_runs(root: Path) -> list:
    client = _mlflow(root)
    return client.search_runs([e.experiment_id for e in client.search_experiments()])


def _wandb_env(tmp: Path) -> dict[str, str]:
    return {name: str(tmp / name.lower()) for name in WANDB_HOME}


def wandb_records(run_dir: Path) -> list[wandb_internal_pb2.Record]:
    """The records of an offline W&B run's ``run-<id>.wandb`` file, parsed with W&B's own protobuf messages.

    wandb (0.31) reads these files only in its Go core, so this follows the file's
    LevelDB-log layout: a 7-byte header, 32 KiB blocks of chunks, each chunk with a
    7-byte header (CRC, length, type: 1 whole, 2 first, 3 middle, 4 last).
    """
    (path,) = run_dir.glob("run-*.wandb")
    data = path.read_bytes()
    assert data[:4] == b":W&B"
    records, position, pending = [], 7, b""
    while position + 7 <= len(data):
        left = 32768 - position % 32768
        if left < 7:  # a block's tail too short for a chunk header is padding
            position += left
            continue
        _, length, kind = struct.unpack("<IHB", data[position:position + 7])
        if kind == 0 or position + 7 + length > len(data):
            break  # the end of what W&B has written so far
        pending += data[position + 7:position + 7 + length]
        position += 7 + length
        if kind in (1, 4):
            record = wandb_internal_pb2.Record()
            record.ParseFromString(pending)
            records.append(record)
            pending = b""
    return records


def _of(records: list, kind: str) -> list:
    return [getattr(r, kind) for r in records if r.WhichOneof("record_type") == kind]


def _wandb_config(records: list) -> dict:
    """The run's config: what ``wandb.init`` got, then every update."""
    config = {}
    for run in _of(records, "run"):
        config.update({item.key: json.loads(item.value_json) for item in run.config.update})
    for update in _of(records, "config"):
        config.update({item.key: json.loads(item.value_json) for item in update.update})
    return config


def _wandb_history(records: list) -> list[dict]:
    return [{"/".join(item.nested_key) or item.key: json.loads(item.value_json) for item in row.item}
            for row in _of(records, "history")]


def _csv_rows(log_dir: Path) -> list[dict]:
    """A CSVLogger's ``metrics.csv``, each row without its empty cells."""
    with (log_dir / "metrics.csv").open(newline="") as file:
        return [{key: value for key, value in row.items() if value != ""} for row in csv.DictReader(file)]


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    """The steered model of tests/steering.py, and a logger whose disk fills up at its third metrics."""
    folder = tmp_path_factory.mktemp("project")
    steering.write_project(folder)
    (folder / "fulldisk.py").write_text(FULL_DISK_LOGGER)
    (folder / "notebook.py").write_text(NOTEBOOK_LOGGER)
    return folder


@pytest.fixture(scope="module")
def four_loggers(project, tmp_path_factory) -> tuple[Path, Path, Path, Path]:
    """A run with TensorBoard, MLflow, CSV loggers and a Logger subclass of the user's bound in gin, TensorBoard's and
    MLflow's without a location. Returns the run directory, the --root_dir, the CSV logger's save_dir and the file
    the user's logger writes."""
    folder = tmp_path_factory.mktemp("loggers")
    cwd, logs, notebook = folder / "cwd", folder / "logs", folder / "notebook.jsonl"
    cwd.mkdir()
    result = ginlight_train(
        f"--root_dir={folder / 'runs'}", f"--project={project}", f"--gin_file={CONFIGS / 'classifier.gin'}",
        *bindings(*SETTINGS,
                  _loggers("@TensorBoardLogger()", "@MLFlowLogger()", "@CSVLogger()", "@notebook.Notebook()"),
                  f"CSVLogger.save_dir = '{logs}'", f"notebook.Notebook.path = '{notebook}'"),
        cwd=cwd)
    assert result.returncode == 0, result.stderr[-3000:]
    assert list(cwd.iterdir()) == []  # nothing in the working directory: MLflow's store is under --root_dir
    (run_dir,) = run_dirs(folder / "runs")
    return run_dir, folder / "runs", logs, notebook


def test_mlflow_gets_the_bindings_counts_and_files(four_loggers, tmp_path):
    run_dir, root, *_ = four_loggers
    (run,) = _mlflow_runs(root)
    params = run.data.params
    assert params["AdamW.lr"] == "0.003"  # under its name in the operative config, %LR resolved
    operative = (run_dir / "operative_config.gin").read_text()
    assert "AdamW.lr = %LR" in operative and "LR = 0.003" in operative
    assert params["Trainer.max_epochs"] == str(EPOCHS)
    assert int(params["ginlight/params_total"]) == int(params["ginlight/params_trainable"]) > 0
    assert params["ginlight/run_dir"] == str(run_dir)
    assert run.data.tags["ginlight.run_dir"] == str(run_dir)
    assert run.info.run_name == f"classifier/{run_dir.name}"
    assert run.info.status == "FINISHED"
    client = _mlflow(root)
    assert {artifact.path for artifact in client.list_artifacts(run.info.run_id)} == FILES
    downloaded = Path(client.download_artifacts(run.info.run_id, "", str(tmp_path)))
    assert (downloaded / "operative_config.gin").read_text() == (run_dir / "operative_config.gin").read_text()
    assert json.loads((downloaded / "run.json").read_text())["status"] == "completed"  # sent again at the end
    # run.json names the tracker run, and where it is.
    mlflow_entry = read_record(run_dir)["trackers"]["runs"][1]
    assert mlflow_entry == {"logger": "MLFlowLogger", "run_id": run.info.run_id, "experiment_id": run.info.experiment_id,
                            "tracking_uri": f"sqlite:///{root / 'mlflow.db'}", "url": None}
    assert (root / "mlartifacts").is_dir()


def test_csv_and_tensorboard_still_get_their_hparams_and_the_files_as_text(four_loggers):
    run_dir, _, logs, _ = four_loggers
    (csv_dir,) = (logs / "lightning_logs").glob("version_*/metrics.csv")
    csv_hparams = yaml.safe_load((csv_dir.parent / "hparams.yaml").read_text())
    assert csv_hparams["AdamW.lr"] == 0.003
    assert csv_hparams["ginlight/operative_config.gin"] == (run_dir / "operative_config.gin").read_text()
    assert json.loads(csv_hparams["ginlight/run.json"])["status"] == "completed"
    tensorboard = run_dir / "lightning_logs" / "version_0"  # bound without a save_dir: in the run directory
    assert yaml.safe_load((tensorboard / "hparams.yaml").read_text())["AdamW.lr"] == 0.003
    events = EventAccumulator(str(tensorboard), size_guidance={"tensors": 0})
    events.Reload()
    assert {"operative_config/text_summary", "config/text_summary", "run/text_summary"} <= set(events.Tags()["tensors"])
    assert read_record(run_dir)["trackers"]["runs"][0] == {"logger": "TensorBoardLogger", "run_id": str(tensorboard),
                                                           "version": 0}
    assert "TensorBoardLogger.save_dir = @ginlight.trackers.run_directory()" in (
        run_dir / "operative_config.gin").read_text()


def test_a_logger_of_the_users_own_gets_the_bindings_counts_and_files_as_text(four_loggers):
    """Through Lightning's Logger API alone: log_hyperparams once as the stage starts, and run.json again at the end."""
    run_dir, _, _, notebook = four_loggers
    calls = [json.loads(line) for line in notebook.read_text().splitlines()]
    (first,) = [call for call in calls if "AdamW.lr" in call]  # one stage, fit
    last = calls[-1]
    assert first["AdamW.lr"] == 0.003 and first["Trainer.max_epochs"] == EPOCHS
    assert first["ginlight/params_total"] == first["ginlight/params_trainable"] > 0
    assert first["ginlight/run_dir"] == str(run_dir)
    for name in FILES - {"run.json"}:
        assert first[f"ginlight/{name}"] == (run_dir / name).read_text()
    assert json.loads(first["ginlight/run.json"])["status"] == "running"
    assert last == {"ginlight/run.json": (run_dir / "run.json").read_text()}
    assert json.loads(last["ginlight/run.json"])["status"] == "completed"
    assert read_record(run_dir)["trackers"]["runs"][3] == {"logger": "Notebook", "run_id": "0", "log_dir": None}


def test_wandb_offline_under_root_dir_gets_the_bindings_and_files(tmp_path):
    root = tmp_path / "runs"
    result = ginlight_train(f"--root_dir={root}", f"--gin_file={CONFIGS / 'classifier.gin'}",
                            *bindings(*SETTINGS, "Trainer.logger = @WandbLogger()"), env=_wandb_env(tmp_path))
    assert result.returncode == 0, result.stderr[-3000:]
    (run_dir,) = run_dirs(root)
    (offline,) = (root / "wandb").glob("offline-run-*")
    records = wandb_records(offline)
    (run,) = _of(records, "run")
    entry = read_record(run_dir)["trackers"]["runs"][0]
    assert entry["logger"] == "WandbLogger" and entry["run_id"] == run.run_id and entry["offline"] is True
    assert entry["url"] is None
    assert run.display_name == f"classifier/{run_dir.name}"
    config = _wandb_config(records)
    assert config["AdamW.lr"] == 0.003
    assert config["ginlight/run_dir"] == str(run_dir)
    saved = {file.path for files in _of(records, "files") for file in files.files}
    assert FILES <= saved
    assert (offline / "files" / "operative_config.gin").read_text() == (run_dir / "operative_config.gin").read_text()
    assert max(row["epoch"] for row in _wandb_history(records) if "epoch" in row) == EPOCHS - 1


def _wait_for(condition, held: Held, what: str) -> None:
    """Polls ``condition`` while the held run waits; no timing is assumed."""
    deadline = time.monotonic() + 300
    while not condition():
        assert held.process.poll() is None, f"the run ended before {what}:\n{held.console.read_text()}"
        assert time.monotonic() < deadline, f"never: {what}"
        time.sleep(0.05)


def _epochs_0_and_1_written(part: Path) -> bool:
    """W&B has written epoch 1's rows to the offline run's file: as many as epoch 0's, which came before them."""
    epochs = [row["epoch"] for row in _wandb_history(wandb_records(part)) if "epoch" in row]
    return epochs.count(0) > 0 and epochs.count(1) == epochs.count(0)


LOGGERS = ("@MLFlowLogger()", "@WandbLogger()", "@CSVLogger()")  # as README's example binds them


def test_killed_and_resumed_it_stays_one_tracker_run_whose_metrics_cover_every_epoch(project, tmp_path, monkeypatch):
    """SIGKILL in epoch 2 (epochs 0 and 1 done), then --resume: one MLflow run, one W&B run id and one CSV version,
    each with every epoch."""
    root = tmp_path / "runs"
    for name, value in _wandb_env(tmp_path).items():
        monkeypatch.setenv(name, value)  # for the held process too
    # W&B's core writes an offline run's file every x_transaction_log_flush_interval seconds (15 by default), when a
    # 32 KiB block fills and when the run finishes: a killed process loses what W&B got since its last write. The run
    # is killed once W&B has written epoch 1; at 1 s, that wait is short.
    monkeypatch.setenv("WANDB__TRANSACTION_LOG_FLUSH_INTERVAL", "1")
    args = [f"--root_dir={root}", f"--project={project}", f"--gin_file={CONFIGS / 'classifier.gin'}",
            f"--gin_file={project / 'steered.gin'}",
            *bindings(*SETTINGS, "ModelCheckpoint.monitor = None", _loggers(*LOGGERS),
                      "CSVLogger.flush_logs_every_n_steps = 1")]  # each row on disk as it comes: none lost to the kill
    cwd = tmp_path / "cwd-0"
    cwd.mkdir()
    held = Held(args, cwd, step=2 * BATCHES_PER_EPOCH + 1)
    (run_dir,) = run_dirs(root)
    (killed,) = (root / "wandb").glob("offline-run-*")
    _wait_for(lambda: _epochs_0_and_1_written(killed), held, "W&B wrote epoch 1")
    held.kill()
    recorded = read_record(run_dir)["trackers"]["runs"]
    csv_dir = run_dir / "lightning_logs" / "version_0"  # bound without a save_dir: in the run directory
    csv_before = _csv_rows(csv_dir)
    assert {row["epoch"] for row in csv_before if "epoch" in row} == {"0", "1"}
    result = ginlight_train(f"--resume={run_dir}")
    assert result.returncode == 0, result.stderr[-3000:]
    resumed_entries = read_record(run_dir)["trackers"]["runs"]
    assert [entry["run_id"] for entry in resumed_entries] == [entry["run_id"] for entry in recorded]
    assert resumed_entries[2] == recorded[2] == {"logger": "CSVLogger", "run_id": str(csv_dir), "version": 0}
    validation_steps = [(epoch + 1) * BATCHES_PER_EPOCH - 1 for epoch in range(EPOCHS)]

    (run,) = _mlflow_runs(root)  # one tracker run, not two
    assert run.info.run_id == recorded[0]["run_id"] and run.info.status == "FINISHED"
    epochs = [m.value for m in _mlflow(root).get_metric_history(run.info.run_id, "epoch")]
    assert sorted(set(epochs)) == list(range(EPOCHS))
    validations = _mlflow(root).get_metric_history(run.info.run_id, "val/loss")
    assert [m.step for m in validations] == validation_steps

    # W&B offline keeps each process's part in a folder of its own, under the one run id.
    parts = sorted((root / "wandb").glob("offline-run-*"))
    assert parts[0] == killed and len(parts) == 2
    assert resumed_entries[1]["dir"] == str(parts[1] / "files")  # where the last part is
    records = [wandb_records(part) for part in parts]
    assert [[run.run_id for run in _of(part, "run")] for part in records] == [[recorded[1]["run_id"]]] * 2
    history = [row for part in records for row in _wandb_history(part)]
    assert [row["trainer/global_step"] for row in history if "val/loss" in row] == validation_steps
    assert {row["epoch"] for row in history if "epoch" in row} == set(range(EPOCHS))

    # CSV: the same version folder, its metrics.csv the killed process's rows and then the resumed one's.
    assert [path.name for path in (run_dir / "lightning_logs").iterdir()] == ["version_0"]
    csv_after = _csv_rows(csv_dir)
    assert csv_after[:len(csv_before)] == csv_before
    assert [int(row["step"]) for row in csv_after if "val/loss" in row] == validation_steps
    assert {row["epoch"] for row in csv_after[len(csv_before):] if "epoch" in row} == {str(EPOCHS - 1)}
    assert "Previous log files in this directory will be deleted" not in result.stderr  # as Lightning says it would

    # The README's example binds these loggers.
    assert ("ginlight-train --gin_file=configs/classifier.gin "
            f"--gin_bindings='{_loggers(*LOGGERS)}'") in (REPO / "README.md").read_text()


def test_reproduce_is_a_new_tracker_run_linked_to_the_original(four_loggers, tmp_path):
    """Under its own --root_dir, in the MLflow store there, tagged with the original run and its tracker run."""
    run_dir, root, *_ = four_loggers
    (original,) = _mlflow_runs(root)
    result = ginlight_train(f"--reproduce={run_dir}", f"--root_dir={tmp_path / 'runs'}")
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    (rerun,) = _mlflow_runs(tmp_path / "runs")
    assert rerun.data.tags["ginlight.reproduces"] == str(run_dir)
    assert rerun.data.tags["ginlight.reproduces_run_id"] == original.info.run_id
    assert rerun.data.params["ginlight/reproduces_run_id"] == original.info.run_id
    assert original.data.params["AdamW.lr"] == rerun.data.params["AdamW.lr"]


def test_each_trial_of_a_sweep_carries_the_sweep_and_its_number(tmp_path):
    """MLflow tags, and the W&B group; the trials' stores are under the sweep's --root_dir."""
    root = tmp_path / "runs"
    result = ginlight_sweep(f"--gin_file={CONFIGS / 'classifier.gin'}", f"--root_dir={root}",
                            *bindings(*SHORT, "MAX_EPOCHS=1", _loggers("@MLFlowLogger()", "@WandbLogger()")),
                            "--sweep=LR=[0.003, 0.01]", "--objective=val/accuracy", "--direction=max", timeout=600,
                            env=_wandb_env(tmp_path))
    assert result.returncode == 0, result.stderr[-3000:]
    (sweep_dir,) = (root / "classifier").glob("sweep-*")
    study = json.loads((sweep_dir / "sweep.json").read_text())["study"]
    runs = _mlflow_runs(root)
    assert sorted((run.data.tags["ginlight.sweep"], run.data.tags["ginlight.trial"]) for run in runs) == [
        (study, "0"), (study, "1")]
    assert sorted(run.data.params["AdamW.lr"] for run in runs) == ["0.003", "0.01"]
    trials = []
    for part in (root / "wandb").glob("offline-run-*"):
        records = wandb_records(part)
        (run,) = _of(records, "run")
        config = _wandb_config(records)
        trials.append((run.run_group, config["ginlight/sweep"], config["ginlight/trial"]))
    assert sorted(trials) == [(study, study, 0), (study, study, 1)]


def test_a_tracking_store_that_cannot_be_reached_fails_before_training_and_leaves_no_run(tmp_path):
    root = tmp_path / "runs"
    uri = "http://127.0.0.1:9"  # the discard port: nothing listens
    with pytest.raises(ginlight.ConfigError) as error:  # the command's exit 2 (test_bad_inputs.py)
        ginlight.train([CONFIGS / "classifier.gin"],
                       [*SHORT, "Trainer.logger = @MLFlowLogger()", f"MLFlowLogger.tracking_uri = '{uri}'"],
                       root_dir=root)
    assert str(error.value).startswith(f"--gin_bindings: cannot reach the MLflow tracking store {uri}")  # where bound
    assert run_dirs(root) == [] and not list(root.glob("*/*"))


def test_a_logger_whose_package_is_missing_names_what_to_install(tmp_path):
    with pytest.raises(ginlight.ConfigError) as error:
        ginlight.train([CONFIGS / "classifier.gin"], [*SHORT, "Trainer.logger = @LitLogger()"], root_dir=tmp_path)
    assert str(error.value).startswith(
        "--gin_bindings: LitLogger needs the 'litlogger' package, which is not installed")
    assert "pip install litlogger" in error.value.hint
    assert list(tmp_path.iterdir()) == []


# A Lightning logger of the user's own: each log_hyperparams call as a line of JSON.
NOTEBOOK_LOGGER = '''
import json

import gin
from lightning.pytorch.loggers import Logger


@gin.configurable
class Notebook(Logger):
    def __init__(self, path):
        super().__init__()
        self.path = path

    @property
    def name(self):
        return "notebook"

    @property
    def version(self):
        return 0

    def log_hyperparams(self, params, *args, **kwargs):
        with open(self.path, "a") as file:
            file.write(json.dumps(dict(params), default=repr) + "\\n")

    def log_metrics(self, metrics, step=None):
        pass
'''


# A Lightning logger whose disk is full from its third metrics on.
FULL_DISK_LOGGER = '''
import gin
from lightning.pytorch.loggers import Logger


@gin.configurable
class FullDisk(Logger):
    def __init__(self):
        super().__init__()
        self.logged = 0

    @property
    def name(self):
        return "fulldisk"

    @property
    def version(self):
        return 0

    def log_hyperparams(self, params, *args, **kwargs):
        pass

    def log_metrics(self, metrics, step=None):
        self.logged += 1
        if self.logged >= 3:
            raise OSError(28, "No space left on device")
'''


def test_a_tracker_failing_mid_run_leaves_the_run_records_complete(project, tmp_path):
    root = tmp_path / "runs"
    result = ginlight_train(f"--root_dir={root}", f"--project={project}", f"--gin_file={CONFIGS / 'classifier.gin'}",
                            *bindings(*SETTINGS, "Trainer.log_every_n_steps = 1",
                                      _loggers("@TensorBoardLogger()", "@fulldisk.FullDisk()"),
                                      f"TensorBoardLogger.save_dir = '{tmp_path / 'logs'}'"))
    assert result.returncode == 1
    (run_dir,) = run_dirs(root)
    record = read_record(run_dir)
    assert record["status"] == "failed" and "No space left on device" in record["error"]
    assert {"config.gin", "operative_config.gin", "run.json", "train.log"} <= {p.name for p in run_dir.iterdir()}
    assert (run_dir / "checkpoints" / "last.ckpt").is_file()
    assert [run["logger"] for run in record["trackers"]["runs"]] == ["TensorBoardLogger", "FullDisk"]
