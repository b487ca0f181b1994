"""ginlight-train --resume: killed and interrupted runs continue in their own directory, to the same weights."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from conftest import CONFIGS, SHORT, ginlight_train, read_record, run_dirs

import ginlight
from ginlight.experiment import resume

# A model wrapper that, in the process where HOLD_AT_STEP is set, blocks in that
# training step's forward pass while the HOLD_MARKER file exists: the test knows
# exactly where the run is when it sends a signal. Without the variable it is the
# wrapped model, so the uninterrupted and resumed runs use the same config.
HOLD_MODULE = '''
import os, time
from pathlib import Path

import gin
import torch


@gin.configurable
class Hold(torch.nn.Module):
    def __init__(self, module):
        super().__init__()
        self.module = module
        self.steps = 0

    def forward(self, x):
        if self.training:
            self.steps += 1
            if str(self.steps) == os.environ.get("HOLD_AT_STEP"):
                marker = Path(os.environ["HOLD_MARKER"])
                marker.touch()
                while marker.exists():
                    time.sleep(0.02)
        return self.module(x)


@gin.configurable
class LastCheckpointProbe(torch.nn.Module):
    # The global step held by the run's checkpoints/last.ckpt at each epoch's first training step.
    seen = []

    def __init__(self, module, batches_per_epoch):
        super().__init__()
        self.module = module
        self.batches_per_epoch = batches_per_epoch
        self.steps = 0

    def forward(self, x):
        if self.training:
            if self.steps % self.batches_per_epoch == 0:
                last = Path(os.environ["GINLIGHT_RUN_DIR"]) / "checkpoints" / "last.ckpt"
                self.seen.append(torch.load(last, weights_only=True)["global_step"] if last.exists() else None)
            self.steps += 1
        return self.module(x)
'''
HOLD_CONFIG = """
System.model = @holdmod.Hold()
holdmod.Hold.module = @ginlight.models.ConvNet()
"""
BATCHES_PER_EPOCH = 3  # Trainer.limit_train_batches in SHORT
EPOCHS = ["MAX_EPOCHS=3"]


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("project")
    (folder / "holdmod.py").write_text(HOLD_MODULE)
    (folder / "hold.gin").write_text(HOLD_CONFIG)
    return folder


def _gin_files(project: Path) -> list[Path]:
    return [CONFIGS / "classifier.gin", project / "hold.gin"]


def _start(project: Path, root: Path, hold_at_step: int, marker: Path) -> subprocess.Popen:
    """ginlight-train in the background, held at a training step; output goes to root/console.txt."""
    root.mkdir()
    command = [sys.executable, "-m", "ginlight.cli.train", f"--root_dir={root}", f"--project={project}",
               *(f"--gin_file={f}" for f in _gin_files(project)), *(f"--gin_bindings={b}" for b in [*SHORT, *EPOCHS])]
    return subprocess.Popen(
        command, cwd=root, stdout=open(root / "console.txt", "w"), stderr=subprocess.STDOUT,
        env={**os.environ, "HOLD_AT_STEP": str(hold_at_step), "HOLD_MARKER": str(marker)},
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),  # a background shell may ignore it
    )


def _wait_until_held(process: subprocess.Popen, marker: Path, root: Path) -> None:
    deadline = time.monotonic() + 300
    while not marker.exists():
        assert process.poll() is None, f"the run ended before the held step:\n{(root / 'console.txt').read_text()}"
        assert time.monotonic() < deadline, "the run never reached the held step"
        time.sleep(0.05)


def _last_checkpoint(run_dir: Path) -> dict:
    return torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)


def test_a_run_killed_after_an_epoch_resumes_to_the_weights_of_an_uninterrupted_run(project, tmp_path):
    uninterrupted = ginlight.train(_gin_files(project), [*SHORT, *EPOCHS], projects=[str(project)],
                                   root_dir=tmp_path / "uninterrupted")
    marker = tmp_path / "held"
    killed = _start(project, tmp_path / "killed", hold_at_step=2 * BATCHES_PER_EPOCH + 1, marker=marker)
    _wait_until_held(killed, marker, tmp_path / "killed")
    killed.kill()  # SIGKILL, in the third epoch's first step
    killed.wait()
    (run_dir,) = run_dirs(tmp_path / "killed")
    assert read_record(run_dir)["status"] == "running"  # nothing could record the kill
    assert _last_checkpoint(run_dir)["epoch"] == 1

    result = ginlight_train(f"--resume={run_dir}", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    record = read_record(run_dir)
    assert record["status"] == "completed"
    assert record["resumptions"] == [{"time": record["resumptions"][0]["time"],
                                      "from_checkpoint": str(run_dir / "checkpoints" / "last.ckpt")}]
    reference = read_record(uninterrupted.run_dir)
    assert record["weights_sha256"] == reference["weights_sha256"]
    # The final metrics are what was logged since the resumption: all of the epoch's, equal.
    assert {"train/loss", "val/loss", "val/accuracy"} <= set(record["metrics"])
    assert {key: reference["metrics"][key] for key in record["metrics"]} == record["metrics"]
    assert run_dirs(tmp_path / "killed") == [run_dir]  # resumed in place, no new directory


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_signal_saves_a_checkpoint_and_leaves_the_run_interrupted_and_resumable(signum, project, tmp_path):
    marker = tmp_path / "held"
    root = tmp_path / "runs"
    held_step = BATCHES_PER_EPOCH + 2  # mid second epoch
    process = _start(project, root, hold_at_step=held_step, marker=marker)
    _wait_until_held(process, marker, root)
    process.send_signal(signum)
    marker.unlink()
    assert process.wait(timeout=300) == 1
    (run_dir,) = run_dirs(root)
    console = (root / "console.txt").read_text()
    assert "ginlight-train: interrupted" in console and f"--resume={run_dir}" in console
    record = read_record(run_dir)
    assert record["status"] == "interrupted" and record["error"] is None
    # SIGTERM lets the held step finish; SIGINT raises KeyboardInterrupt inside it.
    saved_step = held_step if signum == signal.SIGTERM else held_step - 1
    assert _last_checkpoint(run_dir)["global_step"] == saved_step

    with pytest.warns(UserWarning, match="resuming from a checkpoint that ended before the epoch ended"):
        result = resume(run_dir)
    assert result.status == "completed"
    assert _last_checkpoint(run_dir)["global_step"] == 3 * BATCHES_PER_EPOCH
    assert len(read_record(run_dir)["resumptions"]) == 1


@pytest.mark.parametrize("monitor", ["'val/accuracy'", "None"], ids=["monitored", "unmonitored"])
def test_last_checkpoint_holds_every_epoch_end(monitor, project, tmp_path):
    """What a killed run resumes from, whether or not ModelCheckpoint watches a metric."""
    probe = ["System.model = @holdmod.LastCheckpointProbe()",
             "holdmod.LastCheckpointProbe.module = @ginlight.models.ConvNet()",
             f"holdmod.LastCheckpointProbe.batches_per_epoch = {BATCHES_PER_EPOCH}",
             f"ModelCheckpoint.monitor = {monitor}"]
    ginlight.train([CONFIGS / "classifier.gin"], [*SHORT, *EPOCHS, *probe], projects=[str(project)], root_dir=tmp_path)
    seen = sys.modules["holdmod"].LastCheckpointProbe.seen
    assert seen[-3:] == [None, BATCHES_PER_EPOCH, 2 * BATCHES_PER_EPOCH]


def test_resuming_a_completed_run_says_so_and_changes_nothing(project, tmp_path, caplog):
    run_dir = ginlight.train([CONFIGS / "classifier.gin"], [*SHORT, "MAX_EPOCHS=1"], root_dir=tmp_path).run_dir
    before = {path: path.read_bytes() for path in run_dir.rglob("*") if path.is_file()}
    with caplog.at_level(logging.INFO):
        result = resume(run_dir)
    assert result.status == "completed" and result.metrics == read_record(run_dir)["metrics"]
    assert "already completed; there is nothing to resume" in caplog.text
    assert {path: path.read_bytes() for path in run_dir.rglob("*") if path.is_file()} == before


def test_resume_refuses_what_is_not_a_training_run(tmp_path):
    with pytest.raises(ginlight.ConfigError, match="is not a run directory"):
        resume(tmp_path)
    (tmp_path / "operative_config.gin").write_text("")
    (tmp_path / "run.json").write_text(json.dumps({"status": "completed", "stage": "test"}))
    with pytest.raises(ginlight.ConfigError, match="only training runs can be resumed"):
        resume(tmp_path)


def test_resume_explains_a_checkpoint_cut_short_by_a_kill(tmp_path):
    (tmp_path / "operative_config.gin").write_text("")
    (tmp_path / "run.json").write_text(json.dumps({"status": "running", "stage": "fit"}))
    (tmp_path / "checkpoints").mkdir()
    buffer = tmp_path / "whole.ckpt"
    torch.save({"state_dict": {"w": torch.zeros(1000)}}, buffer)
    (tmp_path / "checkpoints" / "last.ckpt").write_bytes(buffer.read_bytes()[:1000])
    with pytest.raises(ginlight.ConfigError, match="cannot read checkpoint") as error:
        resume(tmp_path)
    assert "delete it to resume from the start" in error.value.hint
