"""The registry: the stack's components under their import names, picklable, quietly."""

from __future__ import annotations

import pickle
import subprocess
import sys

import gin
import pytest
import torch
from torch.utils.data import DataLoader

import ginlight
from ginlight.gin import parsing

ginlight.register_all()

NAMES_USERS_WRITE = [
    "torch.optim.NAdam.lr = 1e-3",
    "Adam.lr = 1e-3",
    "torch.optim.lr_scheduler.LinearLR.total_iters = 3",
    "torch.nn.CrossEntropyLoss.label_smoothing = 0.1",
    "torch.nn.GELU.approximate = 'tanh'",
    "torch.nn.Dropout.p = 0.5",
    "torch.utils.data.DataLoader.batch_size = 8",
    "torch.utils.data.Subset.indices = [0]",
    "torch.utils.data.ConcatDataset.datasets = []",
    "torch.utils.data.random_split.lengths = [1]",
    "torchmetrics.F1Score.task = 'multiclass'",
    "torchmetrics.classification.MulticlassAccuracy.num_classes = 3",
    "torchmetrics.MeanSquaredError.squared = True",
    "lightning.Trainer.max_epochs = 3",
    "Trainer.max_epochs = 3",
    "lightning.pytorch.callbacks.EarlyStopping.patience = 3",
    "lightning.pytorch.loggers.CSVLogger.save_dir = 'logs'",
    "lightning.seed_everything.seed = 1",
    "torch.sigmoid.input = None",
    "torch.nn.functional.one_hot.num_classes = 3",
    "torch.nn.init.kaiming_normal_.a = 0",
]


@pytest.mark.parametrize("binding", NAMES_USERS_WRITE)
def test_gin_accepts_the_names_users_import_things_by(binding):
    parsing.parse(bindings=[binding])


def test_every_optimizer_scheduler_callback_and_logger_is_registered():
    import lightning.pytorch.callbacks as callbacks
    import lightning.pytorch.loggers as loggers

    optimizers = {n: getattr(torch.optim, n) for n in torch.optim.__all__}
    expected = [f"torch.optim.{n}" for n, cls in optimizers.items()
                if isinstance(cls, type) and issubclass(cls, torch.optim.Optimizer) and cls is not torch.optim.Optimizer]
    assert len(expected) >= 13  # torch 2.x has more than a dozen; a broken enumeration would find none
    expected += [f"torch.optim.lr_scheduler.{n}" for n in torch.optim.lr_scheduler.__all__
                 if isinstance(getattr(torch.optim.lr_scheduler, n), type) and n not in ("LRScheduler", "Optimizer")]
    expected += [f"lightning.pytorch.callbacks.{n}" for n in callbacks.__all__ if n != "Callback"]
    expected += [f"lightning.pytorch.loggers.{n}" for n in loggers.__all__ if n != "Logger"]
    registered = {selector for selector, _ in gin.config._REGISTRY.items()}
    assert set(expected) - registered == set()


def test_each_object_is_registered_once_under_its_public_module():
    assert gin.get_configurable("torch.nn.Linear") is not None
    with pytest.raises(ValueError):
        gin.get_configurable("torch.nn.modules.linear.Linear")
    assert gin.get_configurable("Accuracy") is gin.get_configurable("torchmetrics.Accuracy")


def test_a_parameter_gin_cannot_bind_by_name_is_explained():
    with pytest.raises(ginlight.ConfigError, match=r"\*tensors"):
        parsing.parse(bindings=["torch.utils.data.TensorDataset.tensors = []"])


def test_registered_classes_build_instances_of_the_original_class():
    parsing.parse(bindings=["torch.nn.Linear.in_features = 3", "torch.nn.Linear.out_features = 2"])
    layer = gin.get_configurable("torch.nn.Linear")()
    assert type(layer) is torch.nn.Linear


def test_wrappers_and_what_holds_them_pickle():
    """A System holds @torch.optim.AdamW; adapters hold @torch.sigmoid; DDP and spawn pickle them."""
    for name in ("torch.optim.AdamW", "torch.sigmoid", "torch.nn.GELU", "lightning.seed_everything"):
        wrapper = gin.get_configurable(name)
        assert pickle.loads(pickle.dumps(wrapper)) is wrapper
    parsing.parse(bindings=[
        "System.model = @torch.nn.Linear()", "torch.nn.Linear.in_features = 4", "torch.nn.Linear.out_features = 1",
        "System.optimizer = @torch.optim.AdamW", "System.criterion = @torch.nn.MSELoss()",
        "System.adapters = {'train': {'metrics': @MetricsAdapter()}}",
        "MetricsAdapter.pred_transforms = [@torch.sigmoid]",
    ])
    system = gin.get_configurable("ginlight.System")()
    restored = pickle.loads(pickle.dumps(system))
    assert restored.optimizer is gin.get_configurable("torch.optim.AdamW")
    assert torch.equal(restored.model.weight, system.model.weight)


@pytest.mark.slow
def test_wrappers_unpickle_in_a_fresh_process():
    """What ddp_spawn ranks and spawned workers do: nothing is registered there yet."""
    payload = pickle.dumps([gin.get_configurable("torch.optim.AdamW"), gin.get_configurable("torch.sigmoid")])
    code = "import pickle, sys; print([w.__name__ for w in pickle.loads(sys.stdin.buffer.read())])"
    result = subprocess.run([sys.executable, "-c", code], input=payload, capture_output=True, check=True)
    assert result.stdout.decode().strip() == "['AdamW', 'sigmoid']"


@pytest.mark.slow
def test_torch_save_of_a_built_model_loads_without_ginlight(tmp_path):
    parsing.parse(bindings=["torch.nn.Linear.in_features = 3", "torch.nn.Linear.out_features = 2"])
    torch.save(gin.get_configurable("torch.nn.Linear")(), tmp_path / "layer.pt")
    code = f"import torch; print(type(torch.load({str(tmp_path / 'layer.pt')!r}, weights_only=False)).__name__)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "Linear"


@pytest.mark.slow
def test_a_registered_dataset_crosses_to_spawned_dataloader_workers():
    parsing.parse(bindings=[])
    dataset = gin.get_configurable("torch.utils.data.TensorDataset")(torch.arange(8.0))
    loader = DataLoader(dataset, batch_size=4, num_workers=2, multiprocessing_context="spawn")
    assert torch.cat([batch for (batch,) in loader]).tolist() == list(range(8))


@pytest.mark.slow
def test_registration_prints_no_warnings():
    code = "import warnings; warnings.simplefilter('always'); import ginlight; ginlight.register_all()"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "Warning" not in result.stderr, result.stderr


@pytest.mark.slow
def test_import_ginlight_loads_neither_torch_nor_lightning():
    code = "import sys, ginlight; print('torch' in sys.modules, 'lightning' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.split() == ["False", "False"]


def _fresh_process(code: str) -> str:
    """Runs ``code`` in a new interpreter, where nothing is registered yet; returns its output."""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.mark.slow
def test_parsing_registers_what_the_config_names_and_nothing_else():
    output = _fresh_process(
        "from ginlight import internals\nfrom ginlight.gin import parsing\n"
        "parsing.parse(bindings=['Adam.lr = 1e-3', 'ginlight.System.model = @nn.Linear()'])\n"
        "print(sorted(s for s in internals.selectors() if s.startswith(('torch', 'lightning'))))\n"
    )
    assert output.strip() == "['torch.nn.Linear', 'torch.optim.Adam']"


@pytest.mark.slow
def test_operative_configs_read_the_same_whatever_else_is_registered():
    """gin writes the shortest unambiguous name; a name that two modules export (torch.softmax,
    torch.nn.functional.softmax) must come out long enough to parse where both are registered."""
    output = _fresh_process(
        "import gin, torch\nfrom ginlight.gin import parsing, registry\n"
        "parsing.parse(bindings=['torch.nn.functional.softmax.dim = 1'])\n"
        "gin.get_configurable('torch.nn.functional.softmax')(torch.zeros(2, 3))\n"
        "text = gin.operative_config_str()\n"
        "registry.register_all()\n"
        "parsing.parse(bindings=[text])\n"
        "print(text)\n"
    )
    assert "functional.softmax.dim = 1" in output


@pytest.mark.slow
def test_an_unknown_name_is_suggested_from_every_component():
    output = _fresh_process(
        "from ginlight.gin import parsing\n"
        "try:\n    parsing.parse(bindings=['torchmetrics.BLEUScor.n_gram = 2'])\n"
        "except Exception as exc:\n    print(exc)\n"
    )
    assert "Did you mean 'torchmetrics.BLEUScore'" in output
