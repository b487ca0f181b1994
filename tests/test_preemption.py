"""Preemption: a signal at a random step inside an epoch, then --resume, ends as the uninterrupted run; a
LightningModule whose loader cannot resume mid-epoch falls back to the epoch end and says so; the kill loop
(benchmarks/kill_loop.py) with a few kills at random instants, saves included."""

from __future__ import annotations

import random
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import steering
import torch
from conftest import REPO, ginlight_train, read_record, run_dirs
from outcomes import assert_same_outcome
from steering import Held

pytestmark = pytest.mark.slow

BATCHES_PER_EPOCH = 5
EPOCHS = 3
SETTINGS = [f"Trainer.limit_train_batches={BATCHES_PER_EPOCH}", "Trainer.limit_val_batches=2", "BATCH_SIZE=8",
            f"MAX_EPOCHS={EPOCHS}", "ModelCheckpoint.monitor = None", "Trainer.enable_progress_bar = False"]


def _fresh(path: Path) -> Path:
    path.mkdir(parents=True)
    return path


def _last(run_dir: Path) -> dict:
    return torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)


def _stopped_and_resumed(args: list[str], folder: Path, step: int, signum: int) -> tuple[Path, str]:
    """A run held at ``step``, sent ``signum`` there, then resumed from another directory to its end: its
    directory and the held process's console."""
    held = Held(args, _fresh(folder / "cwd-0"), step=step)
    held.process.send_signal(signum)
    held.marker.unlink()
    assert held.process.wait(timeout=300) == 1, held.console.read_text()[-3000:]
    (run_dir,) = run_dirs(folder / "runs")
    console = held.console.read_text()
    resumed = ginlight_train(f"--resume={run_dir}", cwd=_fresh(folder / "cwd-1"))
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    return run_dir, console


# ---- the System: its training loader resumes where the epoch stopped ----------------------------


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    return steering.write_project(tmp_path_factory.mktemp("project"))



@pytest.fixture(scope="module")
def uninterrupted(project, tmp_path_factory) -> Path:
    return steering.uninterrupted_run(project, tmp_path_factory.mktemp("uninterrupted"), SETTINGS)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_signal_at_a_random_step_then_resume_ends_as_the_uninterrupted_run(signum, project, uninterrupted,
                                                                             tmp_path):
    # Any step before the last epoch, epoch ends included. (Inside the last epoch the weights are the same too,
    # but that epoch's training metrics average the steps after the resumption: docs/reproducibility.md.)
    step = random.randrange(1, (EPOCHS - 1) * BATCHES_PER_EPOCH + 1)
    print(f"held at step {step}")  # shown with a failure
    args = steering.classifier_args(project, tmp_path / "runs", SETTINGS)
    run_dir, console = _stopped_and_resumed(args, tmp_path, step, signum)
    assert "--resume=" in console, f"held at step {step}"
    # Files, every checkpoint tensor by tensor (weights, optimizer, loops and the loader's place, random states),
    # config, record.
    assert_same_outcome(uninterrupted, run_dir, ignore_record=["resumptions"])
    assert [r["from_checkpoint"] for r in read_record(run_dir)["resumptions"]] == \
        [str(run_dir / "checkpoints" / "last.ckpt")], f"held at step {step}"


# ---- a LightningModule of the user's, with a plain DataLoader: back to the epoch end -------------

PLAIN_MODULE = '''
import os, time
from pathlib import Path

import gin
import lightning
import torch
from torch.utils.data import DataLoader, TensorDataset


@gin.configurable
class Plain(lightning.LightningModule):
    def __init__(self):
        super().__init__()
        self.layer = torch.nn.Linear(4, 1)
        self.steps = 0

    def training_step(self, batch, batch_idx):
        self.steps += 1
        if str(self.steps) == os.environ.get("HOLD_AT_STEP"):
            marker = Path(os.environ["HOLD_MARKER"])
            marker.touch()
            while marker.exists():
                time.sleep(0.02)
        x, y = batch
        return torch.nn.functional.mse_loss(self.layer(x), y)

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)

    def train_dataloader(self):
        generator = torch.Generator().manual_seed(0)
        data = TensorDataset(torch.randn(40, 4, generator=generator), torch.randn(40, 1, generator=generator))
        return DataLoader(data, batch_size=8, shuffle=True)
'''
PLAIN_CONFIG = """
import plain
Experiment.system = @plain.Plain()
Trainer.max_epochs = 3
Trainer.enable_progress_bar = False
"""


def test_a_module_whose_loader_cannot_resume_mid_epoch_keeps_the_epoch_end_and_says_so(tmp_path):
    project = _fresh(tmp_path / "project")
    (project / "plain.py").write_text(PLAIN_MODULE)
    (project / "plain.gin").write_text(PLAIN_CONFIG)
    args = [f"--project={project}", f"--gin_file={project / 'plain.gin'}"]
    reference = ginlight_train(*args, f"--root_dir={tmp_path / 'reference'}", cwd=_fresh(tmp_path / "cwd-ref"))
    assert reference.returncode == 0, reference.stderr[-3000:]
    (uninterrupted,) = run_dirs(tmp_path / "reference")

    held = Held([*args, f"--root_dir={tmp_path / 'runs'}"], _fresh(tmp_path / "cwd-0"), step=7)  # epoch 1, step 2
    held.process.send_signal(signal.SIGTERM)
    held.marker.unlink()
    assert held.process.wait(timeout=300) == 1
    (run_dir,) = run_dirs(tmp_path / "runs")
    assert "checkpoints/last.ckpt stays at the latest epoch end" in held.console.read_text()
    record = read_record(run_dir)
    assert record["status"] == "interrupted" and record["resume_point"] == "the latest epoch end"
    assert (_last(run_dir)["epoch"], _last(run_dir)["global_step"]) == (0, 5)  # 5 batches an epoch

    resumed = ginlight_train(f"--resume={run_dir}", cwd=_fresh(tmp_path / "cwd-1"))
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert_same_outcome(uninterrupted, run_dir, ignore_record=["resumptions"])


# ---- the kill loop ----------------------------------------------------------------------------


def test_the_kill_loop_ends_every_run_as_the_uninterrupted_one(tmp_path):
    """benchmarks/kill_loop.py with 3 kills (docs/reproducibility.md has a fuller run's figure)."""
    result = subprocess.run([sys.executable, "-m", "benchmarks.kill_loop", "--kills=3", f"--work_dir={tmp_path}"],
                            cwd=REPO, capture_output=True, text=True, timeout=1200)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "every run ended as the uninterrupted run" in result.stdout
    assert '"kills": 3' in result.stdout and "(another filesystem)" in result.stdout
