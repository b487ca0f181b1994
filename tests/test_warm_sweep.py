"""Trials forked from the sweep's warm worker are still runs of their own.

One sweep on one worker runs six trials in turn, each forked from the same warm server: a trial
that raises (after polluting gin, the seeds and the console), a fine one, one killed by SIGKILL,
a fine one, one pruned, and a fine one. Each fault is recorded as a fresh process's would be, and
each fine trial, the next in the pool after a fault, leaves the run directory that a standalone
``ginlight-train`` of its point leaves (tests/outcomes.py), with only its own output in its log.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest
from conftest import ginlight_sweep, ginlight_train, run_dirs
from outcomes import assert_same_outcome
from test_sweep import CLASSIFIER, read_csv, record, sweep_dir

from ginlight.sweep import warm

pytestmark = pytest.mark.slow

FAULTY = '''
import json, os, random, signal
from pathlib import Path

import gin
import torch


@gin.configurable
class Faulty(torch.nn.Module):
    """The wrapped model; in the run named in FAULTS, at its first training step, that run's fault."""

    def __init__(self, module):
        super().__init__()
        self.module = module

    def forward(self, x):
        fault = json.loads(os.environ.get("FAULTS", "{}")).get(Path(os.environ.get("GINLIGHT_RUN_DIR", "")).name)
        if fault == "raise" and self.training:
            gin.bind_parameter("torch.optim.AdamW.lr", 0.5)  # what a fork must not pass on
            torch.manual_seed(1234)
            random.seed(1234)
            print("FAULT: raising in", os.environ["GINLIGHT_RUN_DIR"], flush=True)
            os.write(2, b"FAULT: written to file descriptor 2\\n")
            raise RuntimeError("a fault, as the test asked")
        if fault == "kill" and self.training:
            os.kill(os.getpid(), signal.SIGKILL)
        if fault == "crawl":  # a constant prediction: behind every trial that learns, so pruned
            return self.module(x) * 0
        return self.module(x)
'''
FAULTS = {"trial-000": "raise", "trial-002": "kill", "trial-004": "crawl"}
FINE = ["trial-001", "trial-003", "trial-005"]
FLAGS = [f"--gin_file={CLASSIFIER}",
         *(f"--gin_bindings={b}" for b in [
             "MAX_EPOCHS=2", "Trainer.limit_train_batches=8", "Trainer.limit_val_batches=2",
             "Trainer.enable_progress_bar=False", "Trainer.enable_model_summary=False",
             "System.model = @faulty.Faulty()", "faulty.Faulty.module = @ginlight.models.ConvNet()",
             "optuna.pruners.MedianPruner.n_startup_trials = 1"])]


@pytest.fixture(scope="module")
def sweep(tmp_path_factory) -> tuple[Path, str, Path]:
    """The six-trial sweep on one worker: its directory, its console, and the project of the faulty model."""
    tmp = tmp_path_factory.mktemp("warm")
    project = tmp / "project"
    project.mkdir()
    (project / "faulty.py").write_text(FAULTY)
    # log_every_n_steps changes nothing a trial learns, so every fine trial reaches the same losses.
    result = ginlight_sweep(*FLAGS, f"--project={project}", "--sweep=Trainer.log_every_n_steps=[1, 2, 3, 4, 5, 6]",
                            "--pruner=median", "--workers=1", f"--root_dir={tmp / 'runs'}", cwd=tmp, timeout=900,
                            env={"FAULTS": json.dumps(FAULTS)})
    assert result.returncode == 0, result.stdout + result.stderr
    return sweep_dir(tmp / "runs"), result.stdout, project


def test_each_fault_is_recorded_as_a_fresh_process_would_record_it(sweep):
    folder, console, _ = sweep
    rows = {f"trial-{int(row['trial']):03d}": row for row in read_csv(folder / "sweep.csv")}
    assert {name: row["status"] for name, row in rows.items()} == {
        "trial-000": "failed", "trial-001": "completed", "trial-002": "failed", "trial-003": "completed",
        "trial-004": "pruned", "trial-005": "completed"}
    assert rows["trial-000"]["error"] == "RuntimeError: a fault, as the test asked"
    assert record(folder / "trial-000")["status"] == "failed"
    assert rows["trial-002"]["error"] == "killed by SIGKILL (out of memory?)"
    assert record(folder / "trial-002")["status"] == "running"  # killed: nothing could record how it ended
    assert record(folder / "trial-004")["status"] == "pruned"
    assert "trial-004 pruned after epoch 1" in console
    logs = folder / "logs"
    raised = (logs / "trial-000.log").read_text()
    assert "FAULT: raising in" in raised and "FAULT: written to file descriptor 2" in raised
    assert "RuntimeError: a fault, as the test asked" in raised


@pytest.mark.parametrize("name", FINE)
def test_the_next_trial_in_the_pool_is_a_standalone_run_of_its_point(sweep, tmp_path, name):
    """Its gin state, seed and weights are a standalone ginlight-train's, and its log holds its own output."""
    folder, _, project = sweep
    trial = folder / name
    argv = record(trial)["argv"]
    point = [arg for arg in argv if arg.startswith(("--gin_file=", "--gin_bindings=", "--project="))]
    assert f"--project={project}" in point and any("log_every_n_steps" in arg for arg in point)
    result = ginlight_train(*point, f"--root_dir={tmp_path}", env={"FAULTS": json.dumps(FAULTS)})
    assert result.returncode == 0, result.stderr[-3000:]
    (standalone,) = run_dirs(tmp_path)
    assert_same_outcome(standalone, trial)
    log = (folder / "logs" / f"{name}.log").read_text()
    assert "FAULT" not in log and "trial: completed; run directory: " in log
    # slurm-wlm's srun is installed on the test machine, which is no SLURM allocation: Lightning's warning stays out.
    assert "`srun`" not in log and "`srun`" not in result.stderr


def test_the_server_is_never_forked_from_a_process_running_a_thread():
    """A fork holds only the thread that forked: a lock another thread held would stay held in every trial."""
    release = threading.Event()
    thread = threading.Thread(target=release.wait, name="holder")
    thread.start()
    try:
        with pytest.raises(RuntimeError, match="holder"):
            warm.start_server([])
    finally:
        release.set()
        thread.join()
