"""The System through whole runs: schedules, logged values, stages from checkpoints, predictions."""

from __future__ import annotations

import csv
import json

import gin
import pytest
import torch
import torchmetrics
from conftest import CONFIGS, SHORT, ginlight_train, read_record, run_dirs
from torch.utils.data import DataLoader

import ginlight
from ginlight.data import digits
from ginlight.checkpoint import weights_hash

pytestmark = pytest.mark.slow


@gin.configurable
def cross_entropy_and_l1(pred: torch.Tensor, target: torch.Tensor) -> dict[str, torch.Tensor]:
    """A criterion returning named losses, the way multi-term objectives do."""
    ce = torch.nn.functional.cross_entropy(pred, target)
    l1 = pred.abs().mean() * 1e-3
    return {"total": ce + l1, "ce": ce, "l1": l1}


@pytest.fixture(scope="module")
def classifier_run(tmp_path_factory):
    """Three epochs with validation over the whole val split and a cosine schedule."""
    root = tmp_path_factory.mktemp("runs")
    return ginlight.train(
        [CONFIGS / "classifier.gin"],
        ["MAX_EPOCHS=3", "Trainer.limit_train_batches=5", "Trainer.enable_progress_bar=False"],
        root_dir=root,
    )


def test_fit_with_validation_and_a_scheduler_runs_every_epoch(classifier_run):
    assert classifier_run.status == "completed"
    last = torch.load(classifier_run.run_dir / "checkpoints" / "last.ckpt", weights_only=True)
    assert last["epoch"] == 2
    assert last["lr_schedulers"][0]["last_epoch"] == 3  # stepped once per epoch
    assert last["optimizer_states"][0]["param_groups"][0]["lr"] < 3e-3


def test_epoch_metrics_equal_compute_over_all_samples(classifier_run):
    """The logged val/accuracy and val/loss are over the 269 samples, not means of batch values."""
    system = ginlight.load_system(classifier_run.run_dir / "checkpoints" / "last.ckpt").eval()
    val = digits(split="val", flatten=False)  # as the run read them, whatever an earlier test bound
    images, labels = val.tensors
    with torch.no_grad():
        logits = torch.cat([system.model(x) for (x, _) in DataLoader(val, batch_size=32)])
    accuracy = torchmetrics.functional.accuracy(logits, labels, task="multiclass", num_classes=10)
    loss = torch.nn.functional.cross_entropy(logits, labels)
    assert len(val) % 32 != 0  # a partial last batch: a mean of batch means would differ
    assert classifier_run.metrics["val/accuracy"] == pytest.approx(accuracy.item(), abs=1e-6)
    assert classifier_run.metrics["val/loss"] == pytest.approx(loss.item(), rel=1e-5)


def test_a_dict_of_losses_logs_each_one(tmp_path):
    result = ginlight.train(
        [CONFIGS / "classifier.gin"],
        ["MAX_EPOCHS=1", "System.criterion = @cross_entropy_and_l1", *SHORT],
        root_dir=tmp_path,
    )
    metrics = result.metrics
    assert {"train/loss", "train/loss/ce", "train/loss/l1", "val/loss", "val/loss/ce"} <= set(metrics)
    assert metrics["train/loss"] == pytest.approx(metrics["train/loss/ce"] + metrics["train/loss/l1"], rel=1e-5)


@gin.configurable
class UpdateCount(torchmetrics.Metric):
    """A user's own metric: its state counts its updates."""

    def __init__(self):
        super().__init__()
        self.add_state("updates", default=torch.tensor(0.0), dist_reduce_fx="sum")

    def update(self, pred: torch.Tensor, target: torch.Tensor) -> None:
        self.updates += 1

    def compute(self) -> torch.Tensor:
        return self.updates


def test_a_users_metric_gets_one_update_per_batch(tmp_path):
    result = ginlight.train(
        [CONFIGS / "classifier.gin"],
        ["MAX_EPOCHS=1", *SHORT, "Trainer.limit_val_batches=3", "Trainer.num_sanity_val_steps=0",
         "System.metrics = {'val': [@UpdateCount(), @val/torchmetrics.Accuracy()]}"],
        root_dir=tmp_path,
    )
    assert result.metrics["val/updatecount"] == 3, result.metrics


@pytest.fixture(scope="module")
def dict_batch_checkpoint(tmp_path_factory):
    """A dict-batch run's last checkpoint, trained in this process: the stages below start from it."""
    result = ginlight.train([CONFIGS / "dict_batch.gin"], ["MAX_EPOCHS=1", *SHORT],
                            root_dir=tmp_path_factory.mktemp("runs"))
    assert result.status == "completed"
    return result.run_dir / "checkpoints" / "last.ckpt"


@pytest.mark.parametrize("stage, metric", [("validate", "val/accuracy"), ("test", "test/accuracy")])
def test_validate_and_test_run_on_their_own_from_a_checkpoint(stage, metric, dict_batch_checkpoint, tmp_path):
    """In this process (ginlight.train's stage and ckpt_path); --stage=predict below is the real command's."""
    ginlight.train([CONFIGS / "dict_batch.gin"], stage=stage, ckpt_path=str(dict_batch_checkpoint), root_dir=tmp_path)
    (run_dir,) = run_dirs(tmp_path)
    record = read_record(run_dir)
    assert record["status"] == "completed" and metric in record["metrics"]
    # The stage ran the checkpoint's weights: the System ends with them, unchanged.
    checkpoint = torch.load(dict_batch_checkpoint, weights_only=True)
    assert record["weights_sha256"] == weights_hash(checkpoint["state_dict"])
    if stage == "validate":  # the same weights on the same batches as the training run's validation
        trained = read_record(dict_batch_checkpoint.parent.parent)
        assert record["metrics"]["val/accuracy"] == trained["metrics"]["val/accuracy"]


def test_predict_from_a_checkpoint_writes_one_row_per_sample(dict_batch_checkpoint, tmp_path):
    # The checkpoint's own config limited predict batches; all of them this time.
    result = ginlight_train(f"--gin_file={CONFIGS / 'dict_batch.gin'}", "--stage=predict",
                            f"--ckpt_path={dict_batch_checkpoint}", f"--root_dir={tmp_path}",
                            "--gin_bindings=Trainer.limit_predict_batches=1.0")
    assert result.returncode == 0, result.stderr
    (run_dir,) = run_dirs(tmp_path)
    with open(run_dir / "predictions" / "predictions.csv") as handle:
        rows = list(csv.DictReader(handle))
    test_ids = digits(split="test", as_dict=True).tensors["id"].tolist()
    assert sorted(int(row["identifier"]) for row in rows) == sorted(test_ids)
    assert {int(row["prediction"]) for row in rows} <= set(range(10))


def test_prediction_writer_can_write_one_file_per_sample(dict_batch_checkpoint, tmp_path):
    ginlight.train([CONFIGS / "dict_batch.gin"], ["ginlight.callbacks.PredictionWriter.format = 'files'",
                                                  "Trainer.limit_predict_batches=1"],
                   stage="predict", ckpt_path=str(dict_batch_checkpoint), root_dir=tmp_path)
    (run_dir,) = run_dirs(tmp_path)
    files = sorted((run_dir / "predictions").glob("*.pt"))
    assert len(files) == 32
    assert torch.load(files[0], weights_only=True).shape == ()


def test_regression_logs_its_named_metrics(tmp_path):
    result = ginlight.train([CONFIGS / "regression.gin"], ["MAX_EPOCHS=2", *SHORT], root_dir=tmp_path)
    assert {"train/loss", "val/loss", "val/mae", "val/r2"} <= set(result.metrics)


def test_the_classifier_reaches_95_percent_with_its_own_settings(tmp_path):
    result = ginlight.train([CONFIGS / "classifier.gin"], ["Trainer.enable_progress_bar=False"], root_dir=tmp_path)
    assert result.metrics["val/accuracy"] >= 0.95
    assert json.loads((result.run_dir / "run.json").read_text())["status"] == "completed"


DIVERGING = ["MAX_EPOCHS=1", "System.optimizer = @torch.optim.SGD", "torch.optim.SGD.lr = 1e38",
             "Trainer.log_every_n_steps = 1", "Trainer.limit_train_batches = 4", "Trainer.limit_val_batches = 1",
             "Trainer.enable_progress_bar = False"]


def test_a_nonfinite_loss_fails_the_run_naming_its_step(tmp_path):
    with pytest.raises(ginlight.RunError, match=r"training loss is nan at step (\d+) \(epoch 0, batch \1\)"):
        ginlight.train([CONFIGS / "classifier.gin"], DIVERGING, root_dir=tmp_path)
    (run_dir,) = run_dirs(tmp_path)
    assert read_record(run_dir)["status"] == "failed"


def test_stop_on_nonfinite_loss_false_trains_on(tmp_path):
    result = ginlight.train([CONFIGS / "classifier.gin"], [*DIVERGING, "System.stop_on_nonfinite_loss = False"],
                            root_dir=tmp_path)
    assert result.status == "completed"
    assert not torch.isfinite(torch.tensor(result.metrics["train/loss"]))


def test_learning_rates_are_logged_when_a_scheduler_changes_them(classifier_run, tmp_path):
    assert "lr-AdamW" in classifier_run.metrics
    constant = ginlight.train([CONFIGS / "classifier.gin"], ["MAX_EPOCHS=1", "System.scheduler = None", *SHORT],
                              root_dir=tmp_path)
    assert constant.status == "completed"
    assert not any(key.startswith("lr-") for key in constant.metrics)
