"""ginlight-sweep --pruner, and a sweep that loses no trial: workers dead before a heartbeat, grid
points run once, --retry_failed. Real Optuna studies in SQLite and in a throwaway PostgreSQL."""

from __future__ import annotations

import collections
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import optuna
import pytest
import torch
from conftest import REPO, run_dirs
from optuna.trial import TrialState
from ginlight import pruning
from ginlight.gin import parsing
from ginlight.errors import ConfigError
from ginlight.sweep import load_search_space, run_sweep
from test_sweep import (CLASSIFIER, TINY, module_command, postgres_url, probe_flags, probe_project, read_csv,  # noqa: F401
                        record, run, sweep_dir, wait_for)

pytestmark = pytest.mark.slow

EPOCHS = 3
SHORT_TRIAL = [f"MAX_EPOCHS={EPOCHS}", "Trainer.limit_train_batches=8", "Trainer.limit_val_batches=2",
               "Trainer.enable_progress_bar=False", "Trainer.enable_model_summary=False"]

# Runs ginlight-sweep with Optuna's Study.ask holding the worker, once it has created its trial, until
# the test kills the process: a worker that dies between creating a trial and its first heartbeat.
HELD_AFTER_ASK = '''
import os, time
from pathlib import Path

import optuna

from ginlight.cli import sweep

ask = optuna.Study.ask


def ask_and_hold(study, *args, **kwargs):
    trial = ask(study, *args, **kwargs)
    Path(os.environ["HOLD_MARKER"]).write_text(str(trial.number))
    while True:
        time.sleep(1)


optuna.Study.ask = ask_and_hold
sweep.run()
'''


def study_of(folder: Path, storage: str | None = None) -> optuna.Study:
    name = json.loads((folder / "sweep.json").read_text())["study"]
    return optuna.load_study(study_name=name, storage=storage or f"sqlite:///{folder / 'study.db'}")


def kill_after_ask(tmp_path: Path, root: Path, *flags: str) -> int:
    """Runs a sweep worker until it has created its first trial, then kills it (SIGKILL); the trial's number."""
    script, marker = tmp_path / "held_sweep.py", tmp_path / f"asked-{root.name}"
    script.write_text(HELD_AFTER_ASK)
    command = [sys.executable, str(script), *module_command(root, *flags)[3:]]
    worker = subprocess.Popen(command, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              env={**os.environ, "HOLD_MARKER": str(marker)})
    try:
        wait_for(marker.exists, "the worker to create a trial")
    finally:
        os.kill(worker.pid, signal.SIGKILL)
        worker.wait()
    return int(marker.read_text())


def longer(*flags: str) -> list[str]:
    """Trials of a few epochs (test_sweep's are one epoch of two batches), so that pruning can stop them early."""
    return [*(f"--gin_bindings={b}" for b in SHORT_TRIAL), *flags]


# ---- pruning ----------------------------------------------------------------------------------


def test_each_pruner_takes_its_settings_from_the_config_and_wrong_ones_fail_before_any_trial(tmp_path):
    parsing.parse([CLASSIFIER], ["optuna.pruners.SuccessiveHalvingPruner.reduction_factor = 3"])
    assert pruning.pruner_spec("halving") == {"class": "SuccessiveHalvingPruner", "settings": {"reduction_factor": 3}}
    for name, pruner in pruning.PRUNERS.items():
        assert type(pruning.make_pruner(pruning.pruner_spec(name))) is getattr(optuna.pruners, pruner)

    space = load_search_space(["BATCH_SIZE = [8, 16]"])
    with pytest.raises(ConfigError, match="the bindings of optuna.pruners.MedianPruner cannot make a pruner"):
        run_sweep([CLASSIFIER], [*TINY, "optuna.pruners.MedianPruner.n_startup_trials = -1"], space,
                  pruner="median", root_dir=tmp_path)
    with pytest.raises(ConfigError, match="unknown pruner 'mean'; the pruners are none, median, halving"):
        run_sweep([CLASSIFIER], TINY, space, pruner="mean", root_dir=tmp_path)
    assert not (tmp_path / "classifier").exists()


def test_the_median_pruner_stops_the_trials_that_fall_behind(tmp_path):
    root = tmp_path / "runs"
    # GridSampler's fixed shuffle (seed 0) runs the learning rate that learns first, then the two that crawl.
    flags = longer("--sweep=torch.optim.AdamW.lr=[1e-8, 1e-7, 1e-2]", "--pruner=median",
                 "--gin_bindings=optuna.pruners.MedianPruner.n_startup_trials = 1")
    result = run(module_command(root, *flags), cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    folder = sweep_dir(root)
    study = study_of(folder)
    states = {t.params["torch.optim.AdamW.lr"]: t.state for t in study.get_trials()}
    assert states == {"0.01": TrialState.COMPLETE, "1e-07": TrialState.PRUNED, "1e-08": TrialState.PRUNED}
    steps = {t.params["torch.optim.AdamW.lr"]: sorted(t.intermediate_values) for t in study.get_trials()}
    assert steps == {"0.01": [0, 1, 2], "1e-07": [0], "1e-08": [0]}  # the objective at every validation

    rows = {row["torch.optim.AdamW.lr"]: row for row in read_csv(folder / "sweep.csv")}
    assert {lr: (row["status"], row["stopped_at"]) for lr, row in rows.items()} == {
        "0.01": ("completed", f"epoch {EPOCHS}"), "1e-07": ("pruned", "epoch 1"), "1e-08": ("pruned", "epoch 1")}
    for lr in ("1e-07", "1e-08"):
        run_dir = Path(rows[lr]["run_dir"])
        assert record(run_dir)["status"] == "pruned" and record(run_dir)["error"] is None
        assert float(rows[lr]["objective"]) == record(run_dir)["metrics"]["val/loss"]  # at its last validation
        last = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)
        assert last["epoch"] == 0  # stopped after one epoch of three, cleanly
        assert f"{run_dir.name} pruned after epoch 1" in result.stdout
    assert record(Path(rows["0.01"]["run_dir"]))["status"] == "completed"
    summary = (folder / "summary.md").read_text()
    assert "1 completed, 2 pruned, 0 failed" in summary and "| stopped at |" in summary
    assert [line.split(" | ")[3] for line in summary.splitlines() if "| trial-" in line] == [
        "completed", "pruned", "pruned"]
    assert "1 of 3 trials completed, 2 pruned, 0 failed" in result.stdout

    # A pruned trial's operative config reruns outside the sweep: no study, no pruner, every epoch.
    pruned_dir = Path(rows["1e-07"]["run_dir"])
    rerun = run([sys.executable, "-m", "ginlight.cli.train", f"--gin_file={pruned_dir / 'operative_config.gin'}",
                 f"--root_dir={tmp_path / 'rerun'}"], cwd=tmp_path)
    assert rerun.returncode == 0, rerun.stderr
    (rerun_dir,) = run_dirs(tmp_path / "rerun")
    assert record(rerun_dir)["status"] == "completed"
    assert torch.load(rerun_dir / "checkpoints" / "last.ckpt", weights_only=True)["epoch"] == EPOCHS - 1


@pytest.mark.parametrize("mode", ["random", "tpe"])
def test_random_and_tpe_sweeps_prune_the_trials_that_fall_behind(tmp_path, mode):
    root, storage = tmp_path / "runs", f"sqlite:///{tmp_path / 'study.db'}"
    lr = "torch.optim.AdamW.lr"
    # The study starts with a learning rate that learns and one that crawls (Optuna's enqueue_trial); the
    # sampler draws the third trial's. The same value learns the same way (every trial has the config's seed).
    study = optuna.create_study(study_name="lr", storage=storage)  # the default objective, val/loss, minimized
    for value in ("0.01", "1e-08"):
        study.enqueue_trial({lr: value})
    flags = longer(f"--sweep={lr}=choice(1e-2, 1e-8, 1e-7)", f"--mode={mode}", "--trials=3",
                   f"--storage={storage}", "--study=lr",
                   "--pruner=median", "--gin_bindings=optuna.pruners.MedianPruner.n_startup_trials = 1")
    result = run(module_command(root, *flags), cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{mode} search, 3 trials" in result.stdout

    trials = study_of(sweep_dir(root), storage).get_trials()
    learns = {"0.01": True, "1e-08": False, "1e-07": False}
    assert [t.params[lr] for t in trials[:2]] == ["0.01", "1e-08"] and trials[2].params[lr] in learns
    # A crawling trial is pruned at its first validation, below the completed one; a learning one runs every epoch.
    assert [(t.state, sorted(t.intermediate_values)) for t in trials] == [
        (TrialState.COMPLETE, list(range(EPOCHS))) if learns[t.params[lr]] else (TrialState.PRUNED, [0])
        for t in trials]
    rows = read_csv(sweep_dir(root) / "sweep.csv")
    assert [(row["status"], row["stopped_at"]) for row in rows] == [
        ("completed", f"epoch {EPOCHS}") if learns[t.params[lr]] else ("pruned", "epoch 1") for t in trials]
    for row in rows:
        run_dir = Path(row["run_dir"])
        assert record(run_dir)["status"] == row["status"]
        last_epoch = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)["epoch"]
        assert last_epoch == (EPOCHS - 1 if row["status"] == "completed" else 0)


def test_the_pruning_benchmark_runs_both_sweeps_and_prints_its_table():
    """docs/sweeps.md: `python -m benchmarks.sweep_pruning` (its speed-up is measured there, never asserted here)."""
    result = subprocess.run([sys.executable, "-m", "benchmarks.sweep_pruning", "--trials=2", "--epochs=2",
                             "--repeats=1"], cwd=REPO, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    rows = {line.split(" | ")[0]: line for line in result.stdout.splitlines() if line.startswith("| ")}
    assert list(rows) == ["| sweep (2 trials of up to 2 epochs)", "| ---", "| no pruning",
                          "| `--pruner=halving`, `min_resource = 1`"]
    assert rows["| no pruning"].endswith("| 0 | 4 |")  # none pruned; two trials of two epochs
    assert rows["| `--pruner=halving`, `min_resource = 1`"].endswith(" | 4 |")  # judged after the last epoch
    assert "wall time without / with pruning: " in result.stdout


# ---- nothing lost -----------------------------------------------------------------------------


def test_a_worker_killed_right_after_creating_a_trial_is_found_and_the_trial_rerun(tmp_path):
    root = tmp_path / "runs"
    flags = ["--sweep=BATCH_SIZE=[8, 16]"]
    dead = kill_after_ask(tmp_path, root, *flags)
    folder = sweep_dir(root)
    (trial,) = study_of(folder).get_trials()
    assert (trial.number, trial.state, trial.params) == (dead, TrialState.RUNNING, {})  # no heartbeat, no values
    assert not list(folder.glob("trial-*"))

    result = run(module_command(root, *flags), cwd=tmp_path)  # continued: the silent trial is found
    assert result.returncode == 0, result.stdout + result.stderr
    trials = study_of(folder).get_trials()
    assert trials[dead].state == TrialState.FAIL
    completed = [t for t in trials if t.state == TrialState.COMPLETE]
    assert sorted(t.params["BATCH_SIZE"] for t in completed) == ["16", "8"]  # every grid point, once
    (rerun,) = [t for t in completed if t.system_attrs.get("failed_trial") == dead]
    rows = read_csv(folder / "sweep.csv")
    assert sorted((int(row["trial"]), row["status"]) for row in rows) == sorted(
        (t.number, "completed") for t in completed)
    assert (folder / f"trial-{rerun.number:03d}" / "run.json").is_file()


def test_two_workers_never_complete_one_grid_point_twice(tmp_path, postgres_url):
    flags = [f"--storage={postgres_url}", "--study=reruns", "--sweep=BATCH_SIZE=[8, 16]"]
    roots = [tmp_path / "machine-a", tmp_path / "machine-b", tmp_path / "machine-c"]
    dead = kill_after_ask(tmp_path, roots[0], *flags)
    # Two workers that both found the dead trial each queue a rerun (SQLite does not stop that race).
    storage = optuna.storages.RDBStorage(postgres_url.replace("postgresql://", "postgresql+psycopg2://"))
    study = optuna.load_study(study_name="reruns", storage=storage)
    dead_id = storage.get_trial_id_from_study_id_trial_number(storage.get_study_id_from_name("reruns"), dead)
    assert storage.set_trial_state_values(dead_id, TrialState.FAIL)
    for _ in range(2):
        optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=3)(study, storage.get_trial(dead_id))

    workers = [subprocess.Popen(module_command(root, *flags), cwd=tmp_path, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True) for root in roots[1:]]
    outputs = [worker.communicate(timeout=400)[0] for worker in workers]
    assert [worker.returncode for worker in workers] == [0, 0], outputs

    trials = study.get_trials()
    completed = collections.Counter(t.params["BATCH_SIZE"] for t in trials if t.state == TrialState.COMPLETE)
    assert completed == {"8": 1, "16": 1}
    reruns = [t for t in trials if t.system_attrs.get("failed_trial") == dead]
    assert sorted(t.state for t in reruns) == [TrialState.COMPLETE, TrialState.PRUNED]  # the second one skipped
    for root in roots[1:]:
        rows = read_csv(sweep_dir(root) / "sweep.csv")
        assert sorted(row["BATCH_SIZE"] for row in rows) == ["16", "8"]
        assert {row["status"] for row in rows} == {"completed"}


def test_retry_failed_reruns_each_failed_trial_in_a_new_directory(tmp_path, probe_project):
    root = tmp_path / "runs"
    command = module_command(root, *probe_flags(probe_project), "--sweep=BATCH_SIZE=[8, 16]")
    first = run(command, cwd=tmp_path, env={"STEER_RUN": "trial-001", "STOP_AT_STEP": "1"})  # tests/steering.py
    assert first.returncode == 0, first.stdout + first.stderr
    folder = sweep_dir(root)
    assert [(row["trial"], row["status"]) for row in read_csv(folder / "sweep.csv")] == [
        ("0", "completed"), ("1", "failed")]
    failed = record(folder / "trial-001")
    assert failed["status"] == "failed" and "stopping at step 1, as asked" in failed["error"]

    again = run(command, cwd=tmp_path)  # continuing keeps failed trials
    assert again.returncode == 0 and not (folder / "trial-002").exists()
    retried = run([*command, "--retry_failed"], cwd=tmp_path)
    assert retried.returncode == 0, retried.stdout + retried.stderr
    assert "rerunning 1 failed trial(s)" in retried.stdout
    rows = read_csv(folder / "sweep.csv")
    assert [(row["trial"], row["status"]) for row in rows] == [("0", "completed"), ("2", "completed")]
    assert record(folder / "trial-001") == failed  # the old directory is kept as it was
    assert record(folder / "trial-002")["status"] == "completed"
    assert f"--gin_bindings=BATCH_SIZE = {rows[1]['BATCH_SIZE']}" in failed["argv"]  # the same value, rerun
