"""ginlight.dry_run: the dry run of one batch before training, which must change nothing training sees."""

from __future__ import annotations

import copy

import gin
import pytest
import torch
import torchmetrics
from conftest import CONFIGS, SHORT
from lightning import Trainer
from torch.utils.data import DataLoader, TensorDataset

import ginlight
from ginlight import internals
from ginlight.gin import parsing
from ginlight.system import System
from ginlight.dry_run import check_system, describe, trains_on_cpu


def _loader(n: int = 8, features: int = 4) -> DataLoader:
    generator = torch.Generator().manual_seed(0)
    data = TensorDataset(torch.randn(n, features, generator=generator), torch.randint(0, 3, (n,), generator=generator))
    return DataLoader(data, batch_size=4)


def _system(**overrides) -> System:
    settings = dict(
        model=torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.Dropout(0.5)),
        criterion=torch.nn.CrossEntropyLoss(), optimizer=torch.optim.SGD,
        metrics={"val": torchmetrics.Accuracy(task="multiclass", num_classes=3)},
        dataloaders={"train": _loader(), "val": _loader()},
    )
    return System(**{**settings, **overrides})


def test_the_dry_pass_changes_no_weight_no_metric_no_mode_and_no_random_state():
    system = _system()
    system.train()
    weights = copy.deepcopy(system.state_dict())
    torch.manual_seed(11)
    check_system(system, "fit", uses_datamodule=False)
    after = torch.rand(3)
    torch.manual_seed(11)
    assert torch.equal(after, torch.rand(3))  # the generator is where it was
    assert system.training and all(module.training for module in system.modules())
    assert all(torch.equal(weights[key], value) for key, value in system.state_dict().items())
    assert all(parameter.grad is None for parameter in system.parameters())
    assert [metric.update_count for metric in system.val_metrics.values()] == [0]


def test_a_stage_without_its_loader_is_refused_naming_the_loaders_there_are():
    with pytest.raises(ginlight.ConfigError, match=r"--stage=test needs a 'test' dataloader .*\(it has: train, val\)"):
        check_system(_system(), "test", uses_datamodule=False)


def test_fit_without_a_val_loader_is_fine():
    check_system(_system(dataloaders={"train": _loader()}), "fit", uses_datamodule=False)


def test_a_loader_with_no_batches_is_refused():
    with pytest.raises(ginlight.ConfigError, match="the 'val' dataloader yields no batches"):
        check_system(_system(dataloaders={"train": _loader(), "val": DataLoader([])}), "fit", uses_datamodule=False)


def test_a_model_that_does_not_fit_the_data_is_refused_with_the_batchs_shape():
    system = _system(model=torch.nn.Linear(5, 3))
    with pytest.raises(ginlight.ConfigError, match=r"the model failed on the first 'train' batch's input, "
                                                   r"a tensor of shape \(4, 4\) \(float32\)"):
        check_system(system, "fit", uses_datamodule=False)


def test_metrics_that_do_not_fit_the_predictions_are_refused_before_training():
    system = _system(metrics={"val": torchmetrics.Accuracy(task="multiclass", num_classes=2)})
    with pytest.raises(ginlight.ConfigError, match="the val metrics failed on the first 'val' batch"):
        check_system(system, "fit", uses_datamodule=False)


def test_with_a_datamodule_only_the_system_itself_is_checked():
    """Its loaders come from Lightning's hooks later: a System with none passes."""
    check_system(_system(dataloaders={}), "fit", uses_datamodule=True)
    with pytest.raises(ginlight.ConfigError, match="System.criterion is the class CrossEntropyLoss, not an instance"):
        check_system(_system(dataloaders={}, criterion=torch.nn.CrossEntropyLoss), "fit", uses_datamodule=True)


@pytest.fixture
def parsed():
    gin.clear_config()
    yield parsing.parse
    gin.clear_config()


@pytest.mark.parametrize("accelerator, on_cpu", [("'cpu'", True), ("'cuda'", False), ("'gpu'", False), ("'mps'", False)])
def test_the_dry_run_knows_a_bound_accelerator_before_the_trainer_is_built(accelerator, on_cpu, parsed):
    parsed([], [f"Trainer.accelerator = {accelerator}"])
    assert trains_on_cpu(None) is on_cpu


def test_the_dry_run_resolves_auto_as_lightning_does_and_reads_a_bound_trainer(parsed):
    parsed([], ["Trainer.max_epochs = 1"])
    assert trains_on_cpu(None) is (internals.auto_accelerator() == "cpu")
    assert trains_on_cpu(Trainer(accelerator="cpu", logger=False, enable_checkpointing=False))


MISFIT = ["System.model = @torch.nn.Linear()", "torch.nn.Linear.in_features = 3", "torch.nn.Linear.out_features = 10"]


def test_the_dry_run_is_a_switch_on_by_default(tmp_path):
    with pytest.raises(ginlight.ConfigError, match="the model failed on the first 'train' batch's input"):
        ginlight.train([CONFIGS / "classifier.gin"], ["MAX_EPOCHS=1", *SHORT, *MISFIT], root_dir=tmp_path)
    assert not any(tmp_path.rglob("run.json"))  # refused before the run directory
    # Switched off, the same mistake surfaces where the model first meets a batch in the run itself.
    with pytest.raises(ginlight.RunError, match="shapes cannot be multiplied"):
        ginlight.train([CONFIGS / "classifier.gin"], ["MAX_EPOCHS=1", *SHORT, *MISFIT, "Experiment.dry_run = False"],
                       root_dir=tmp_path)
    (record,) = tmp_path.rglob("run.json")
    assert '"status": "failed"' in record.read_text()


@pytest.mark.parametrize("value, expected", [
    (torch.zeros(2, 3, dtype=torch.int64), "a tensor of shape (2, 3) (int64)"),
    ({"image": torch.zeros(1), "id": 3}, "a dict {'image': a tensor of shape (1,) (float32), 'id': int}"),
    ([torch.zeros(1)] * 2, "a list of a tensor of shape (1,) (float32), a tensor of shape (1,) (float32)"),
    (tuple(range(6)), "a tuple of int, int, int, int, ..."),
    ("text", "str"),
])
def test_describe_gives_structure_not_values(value, expected):
    assert describe(value) == expected
