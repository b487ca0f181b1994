"""Many processes, one configuration: DDP ranks, launchers, spawned workers."""

from __future__ import annotations

import csv
import os
import subprocess

import pytest
import torch
from conftest import CONFIGS, bindings, command, ginlight_train, read_record, run_dirs
from outcomes import assert_same_outcome

import ginlight
from ginlight.data import digits

pytestmark = pytest.mark.slow

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
    result = ginlight_train(f"--gin_file={CONFIGS / 'classifier.gin'}", f"--root_dir={root / 'runs'}",
                            "--gin_bindings=Trainer.strategy='ddp'", *TWO_RANKS, cwd=root)
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("ginlight-train: completed; run directory:") == 1  # not once per rank
    return only_run(root / "runs")


def test_ddp_ranks_share_one_run_directory_and_seed(ddp_run):
    record = read_record(ddp_run)
    assert record["status"] == "completed"
    assert record["seed"] == 0
    assert "Trainer.strategy = 'ddp'" in (ddp_run / "operative_config.gin").read_text()
    assert (ddp_run / "checkpoints" / "last.ckpt").is_file()


def test_ddp_epoch_metrics_are_reduced_across_ranks(ddp_run):
    """Each rank validated 2 batches of 32, rank 0 the even samples of the first 128, rank 1 the odd ones:
    the logged values are those of all 128 samples, with the weights that validated them (the last epoch's)."""
    log = (ddp_run / "train.log").read_text()
    assert "distributed_backend=gloo" in log
    assert "All distributed processes registered. Starting with 2 processes" in log
    system = ginlight.load_system(ddp_run / "checkpoints" / "last.ckpt").eval()
    images, labels = digits(split="val", flatten=False).tensors  # as the run read them, whatever an earlier test bound
    with torch.no_grad():
        logits = system.model(images[:128])

    def values(samples: slice) -> dict[str, float]:
        return {"val/loss": torch.nn.functional.cross_entropy(logits[samples], labels[:128][samples]).item(),
                "val/accuracy": (logits[samples].argmax(1) == labels[:128][samples]).float().mean().item()}

    both, rank_zero = values(slice(None)), values(slice(0, None, 2))
    assert both["val/loss"] != rank_zero["val/loss"]  # so that an unreduced value would show
    metrics = read_record(ddp_run)["metrics"]
    assert metrics["val/accuracy"] == pytest.approx(both["val/accuracy"], abs=1e-6)
    assert metrics["val/loss"] == pytest.approx(both["val/loss"], rel=1e-5)


def test_ddp_rerun_is_the_same_run(ddp_run, tmp_path):
    result = ginlight_train(f"--gin_file={ddp_run / 'operative_config.gin'}", f"--root_dir={tmp_path}")
    assert result.returncode == 0, result.stderr
    assert_same_outcome(ddp_run, only_run(tmp_path))


def test_torchrun_ranks_agree_on_one_run_directory_and_make_the_same_run(ddp_run, tmp_path):
    """As on a cluster: the launcher starts both ranks, each runs the whole command (from the directory the
    Lightning-launched run came from, which both runs record). torchrun gives each rank one intra-op thread
    unless OMP_NUM_THREADS says otherwise; here it says the count the Lightning-launched run recorded."""
    threads = {"OMP_NUM_THREADS": str(read_record(ddp_run)["torch_threads"])}
    result = subprocess.run(
        command("torchrun", "--nproc_per_node=2", "--no-python", *command(
            "ginlight-train", f"--gin_file={CONFIGS / 'classifier.gin'}", f"--root_dir={tmp_path / 'runs'}",
            "--gin_bindings=Trainer.strategy='ddp'", *TWO_RANKS)),
        cwd=read_record(ddp_run)["cwd"], capture_output=True, text=True, timeout=300, env={**os.environ, **threads},
    )
    assert result.returncode == 0, result.stderr
    assert_same_outcome(ddp_run, only_run(tmp_path / "runs"))


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
    args = command("ginlight-train", f"--gin_file={CONFIGS / 'classifier.gin'}", f"--root_dir={tmp_path}",
                   *bindings("MAX_EPOCHS=1", "Trainer.limit_train_batches=1", "Trainer.limit_val_batches=1",
                             "Trainer.enable_progress_bar=False"))
    processes = [subprocess.Popen(args, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
                 for _ in range(8)]
    errors = [p.communicate(timeout=600)[1] for p in processes]
    assert [p.returncode for p in processes] == [0] * 8, errors
    dirs = run_dirs(tmp_path)
    assert len(set(dirs)) == 8
    for run_dir in dirs:
        assert read_record(run_dir)["status"] == "completed"
        assert (run_dir / "operative_config.gin").is_file() and (run_dir / "checkpoints" / "last.ckpt").is_file()
