"""Many processes, one configuration: DDP ranks, launchers, spawned workers."""

from __future__ import annotations

import csv
import subprocess
import sys

import pytest
from conftest import CONFIGS, REPO, bindings, ginlight_train, read_record, run_dirs

TWO_RANKS = bindings(
    "MAX_EPOCHS=1", "Trainer.devices=2", "Trainer.limit_train_batches=3", "Trainer.limit_val_batches=2",
    "Trainer.enable_progress_bar=False", "Trainer.enable_model_summary=False",
)


def only_run(root):
    (run_dir,) = run_dirs(root)
    assert len(list((run_dir.parent).iterdir())) == 1
    return run_dir


@pytest.fixture(scope="module")
def ddp_run(tmp_path_factory):
    """Lightning's own launcher: rank 0 reruns the command for rank 1."""
    root = tmp_path_factory.mktemp("ddp")
    result = ginlight_train(f"--gin_file={CONFIGS / 'classifier.gin'}", f"--root_dir={root}",
                            "--gin_bindings=Trainer.strategy='ddp'", *TWO_RANKS)
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("ginlight-train: completed; run directory:") == 1  # not once per rank
    return only_run(root)


def test_ddp_ranks_share_one_run_directory_and_seed(ddp_run):
    record = read_record(ddp_run)
    assert record["status"] == "completed"
    assert record["seed"] == 0
    assert "Trainer.strategy = 'ddp'" in (ddp_run / "operative_config.gin").read_text()
    assert (ddp_run / "checkpoints" / "last.ckpt").is_file()


def test_ddp_epoch_metrics_are_reduced_across_ranks(ddp_run):
    """Each rank saw half of the val batches; the logged accuracy counts both halves."""
    log = (ddp_run / "train.log").read_text()
    assert "distributed_backend=gloo" in log
    assert "All distributed processes registered. Starting with 2 processes" in log
    metrics = read_record(ddp_run)["metrics"]
    # 2 val batches of 32 per rank: an accuracy over all 128 samples is a multiple of 1/128,
    # one over a single rank's 64 samples need not be.
    assert (metrics["val/accuracy"] * 128) == pytest.approx(round(metrics["val/accuracy"] * 128), abs=1e-3)


def test_ddp_rerun_gives_the_same_result(ddp_run, tmp_path):
    result = ginlight_train(f"--gin_file={ddp_run / 'operative_config.gin'}", f"--root_dir={tmp_path}")
    assert result.returncode == 0, result.stderr
    assert read_record(only_run(tmp_path))["metrics"] == read_record(ddp_run)["metrics"]


def test_torchrun_ranks_agree_on_one_run_directory(ddp_run, tmp_path):
    """As on a cluster: the launcher starts both ranks, each runs the whole command."""
    result = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "-m", "ginlight.cli.train",
         f"--gin_file={CONFIGS / 'classifier.gin'}", f"--root_dir={tmp_path}", "--gin_bindings=Trainer.strategy='ddp'",
         *TWO_RANKS],
        cwd=REPO, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr
    record = read_record(only_run(tmp_path))
    assert record["status"] == "completed"
    assert record["metrics"] == read_record(ddp_run)["metrics"]


def test_ddp_spawn_ranks_see_the_gin_bindings(tmp_path):
    """Spawned ranks start with gin empty; the optimizer they build must still get lr=0.5."""
    result = ginlight_train(f"--gin_file={CONFIGS / 'classifier.gin'}", f"--root_dir={tmp_path}",
                            "--gin_bindings=Trainer.strategy='ddp_spawn'", "--gin_bindings=AdamW.lr=0.5", *TWO_RANKS)
    assert result.returncode == 0, result.stderr
    run_dir = only_run(tmp_path)
    assert read_record(run_dir)["metrics"]["lr-AdamW"] == 0.5
    assert "AdamW.lr = 0.5" in (run_dir / "operative_config.gin").read_text()


SCALED_DATA = '''
import gin
import torch


@gin.configurable
def scale(value, factor=1.0):
    return value * factor


class Ramp(torch.utils.data.Dataset):
    """Item i is scale(i): computed in whichever process loads it."""

    def __len__(self):
        return 8

    def __getitem__(self, index):
        return (torch.tensor([scale(float(index))]),)


gin.external_configurable(Ramp)
'''


def test_spawned_dataloader_workers_follow_the_gin_bindings(tmp_path):
    (tmp_path / "project").mkdir()
    (tmp_path / "project" / "scaled_data.py").write_text(SCALED_DATA)
    (tmp_path / "predict.gin").write_text(
        "Experiment.system = @System()\n"
        "System.model = @torch.nn.Identity()\n"
        "System.dataloaders = {'predict': @DataLoader()}\n"
        "DataLoader.dataset = @Ramp()\n"
        "DataLoader.batch_size = 2\n"
        "DataLoader.num_workers = 2\n"
        "DataLoader.multiprocessing_context = 'spawn'\n"
        "scale.factor = 10.0\n"
        "Trainer.enable_progress_bar = False\n"
    )
    result = ginlight_train("--gin_file=predict.gin", "--project=project", "--stage=predict",
                            f"--root_dir={tmp_path / 'runs'}", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    with open(only_run(tmp_path / "runs") / "predictions" / "predictions.csv") as handle:
        predictions = [float(row["prediction"]) for row in csv.DictReader(handle)]
    assert predictions == [10.0 * i for i in range(8)]


def test_eight_launches_at_once_get_eight_complete_run_directories(tmp_path):
    args = [sys.executable, "-m", "ginlight.cli.train", f"--gin_file={CONFIGS / 'classifier.gin'}",
            f"--root_dir={tmp_path}", *bindings("MAX_EPOCHS=1", "Trainer.limit_train_batches=1",
                                                "Trainer.limit_val_batches=1", "Trainer.enable_progress_bar=False")]
    processes = [subprocess.Popen(args, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
                 for _ in range(8)]
    errors = [p.communicate(timeout=600)[1] for p in processes]
    assert [p.returncode for p in processes] == [0] * 8, errors
    dirs = run_dirs(tmp_path)
    assert len(set(dirs)) == 8
    for run_dir in dirs:
        assert read_record(run_dir)["status"] == "completed"
        assert (run_dir / "operative_config.gin").is_file() and (run_dir / "checkpoints" / "last.ckpt").is_file()
