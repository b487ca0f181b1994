"""Configs in gin 0.5's other syntaxes, through the real commands: block declarations, dynamic registration,
and includes written from a repository's root."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from conftest import SHORT, bindings, ginlight_diff, ginlight_sweep, ginlight_train, run_dirs
from outcomes import assert_same_outcome

pytestmark = pytest.mark.slow

#: The digits classifier, each configurable's parameters in a block.
BLOCKS = """\
# The digits classifier in block syntax.
Experiment.system = @System()

System:
  model = @ginlight.models.MLP()
  criterion = @torch.nn.CrossEntropyLoss()
  optimizer = @torch.optim.AdamW
  dataloaders = {'train': @train/torch.utils.data.DataLoader(), 'val': @val/torch.utils.data.DataLoader()}

ginlight.models.MLP:
  in_features = 64
  out_features = 10

torch.optim.AdamW:
  lr = 0.003
  # the decay, on its own line
  weight_decay = 0.01

torch.utils.data.DataLoader:
  dataset = @ginlight.data.digits()
  batch_size = 32
train/torch.utils.data.DataLoader.shuffle = True
train/ginlight.data.digits.split = 'train'
val/ginlight.data.digits.split = 'val'

Trainer:
  max_epochs = 1
  accelerator = 'cpu'
"""

#: The same classifier under dynamic registration: every name by the import that binds it.
DYNAMIC = """\
from __gin__ import dynamic_registration
from ginlight import models
from ginlight import data
import ginlight.experiment
import ginlight.system as system
import torch.nn
import torch.optim as optim
import torch.utils.data
import lightning

ginlight.experiment.Experiment.system = @system.System()
system.System:
  model = @models.MLP()
  criterion = @torch.nn.CrossEntropyLoss()
  optimizer = @optim.AdamW
  dataloaders = {'train': @train/torch.utils.data.DataLoader(), 'val': @val/torch.utils.data.DataLoader()}
models.MLP:
  in_features = 64
  out_features = 10
optim.AdamW.lr = 0.003
torch.utils.data.DataLoader.dataset = @data.digits()
torch.utils.data.DataLoader.batch_size = 32
train/torch.utils.data.DataLoader.shuffle = True
train/data.digits.split = 'train'
val/data.digits.split = 'val'
lightning.Trainer.max_epochs = 1
lightning.Trainer.accelerator = 'cpu'
"""


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def _train_and_rerun(tmp_path: Path, config: Path) -> None:
    """Trains ``config``, then its operative config from another directory: the same run, weights and all."""
    original = ginlight_train(f"--gin_file={config}", f"--root_dir={tmp_path / 'original'}", *bindings(*SHORT),
                              cwd=config.parent)
    assert original.returncode == 0, original.stderr[-3000:]
    (run,) = run_dirs(tmp_path / "original")
    elsewhere = _write(tmp_path / "elsewhere" / "README", "another directory\n").parent
    rerun = ginlight_train(f"--gin_file={run / 'operative_config.gin'}", f"--root_dir={tmp_path / 'rerun'}",
                           cwd=elsewhere)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    (again,) = run_dirs(tmp_path / "rerun")
    assert_same_outcome(run, again)


def test_a_classifier_in_block_syntax_trains_and_its_operative_config_reruns_to_the_same_weights(tmp_path):
    _train_and_rerun(tmp_path, _write(tmp_path / "config" / "blocks.gin", BLOCKS))


def test_a_classifier_under_dynamic_registration_trains_and_reruns_from_another_directory(tmp_path):
    _train_and_rerun(tmp_path, _write(tmp_path / "config" / "dynamic.gin", DYNAMIC))


def test_print_config_locates_a_value_set_in_a_block_and_a_binding_overrides_it(tmp_path):
    config = _write(tmp_path / "blocks.gin", BLOCKS)
    result = ginlight_train(f"--gin_file={config}", "--print_config", "--gin_bindings=torch.optim.AdamW.lr=0.5")
    assert result.returncode == 0, result.stderr[-3000:]
    lines = {line.split(" = ")[0]: line for line in result.stdout.splitlines() if " = " in line}
    assert lines["torch.optim.AdamW.weight_decay"].split() == ["torch.optim.AdamW.weight_decay", "=", "0.01", "#",
                                                              f"{config}:17"]
    assert lines["torch.optim.AdamW.lr"].split() == ["torch.optim.AdamW.lr", "=", "0.5", "#", "--gin_bindings"]
    assert lines["ginlight.models.MLP.in_features"].endswith(f"# {config}:11")

    broken = _write(tmp_path / "broken.gin", BLOCKS.replace("  weight_decay = 0.01", "  weight_decay 0.01"))
    result = ginlight_train(f"--gin_file={broken}", "--print_config")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert f"{broken}:17" in result.stderr and "gin syntax error" in result.stderr


def test_diff_of_two_block_configs_reports_the_one_value_that_differs_inside_a_block(tmp_path):
    a = _write(tmp_path / "a.gin", BLOCKS)
    b = _write(tmp_path / "b.gin", BLOCKS.replace("  weight_decay = 0.01", "  weight_decay = 0.1"))
    result = ginlight_diff(str(a), str(b), "--format=json")
    assert result.returncode == 0, result.stderr[-3000:]
    assert json.loads(result.stdout)["bindings"] == [
        {"configurable": "torch.optim.AdamW", "parameter": "weight_decay", "kind": "changed", "a": "0.01", "b": "0.1"}]


def test_an_include_written_from_the_repository_root_resolves_in_every_command_run_from_there(tmp_path):
    root = tmp_path / "repo"
    _write(root / "pkg" / "configs" / "base.gin", BLOCKS)
    top, other = (_write(root / "pkg" / "configs" / f"{name}.gin", f"include 'pkg/configs/base.gin'\n"
                                                                   f"torch.optim.AdamW.lr = {lr}\n")
                  for name, lr in (("top", 0.01), ("other", 0.02)))
    relative = [str(path.relative_to(root)) for path in (top, other)]

    printed = ginlight_train(f"--gin_file={relative[0]}", "--print_config", cwd=root)
    assert printed.returncode == 0, printed.stderr[-3000:]
    assert "# pkg/configs/base.gin:17" in printed.stdout  # weight_decay, in the included file's block

    diffed = ginlight_diff(*relative, "--format=json", cwd=root)
    assert diffed.returncode == 0, diffed.stderr[-3000:]
    assert [(d["configurable"], d["parameter"]) for d in json.loads(diffed.stdout)["bindings"]] == [
        ("torch.optim.AdamW", "lr")]
    elsewhere = ginlight_diff(*map(str, (top, other)), f"--gin_search_paths={root}", "--format=json")
    assert elsewhere.returncode == 0, elsewhere.stderr[-3000:]
    assert json.loads(elsewhere.stdout)["bindings"] == json.loads(diffed.stdout)["bindings"]

    trained = ginlight_train(f"--gin_file={relative[0]}", "--root_dir=runs", *bindings(*SHORT), cwd=root)
    assert trained.returncode == 0, trained.stderr[-3000:]
    assert len(run_dirs(root / "runs")) == 1

    swept = ginlight_sweep(f"--gin_file={relative[0]}", "--sweep=torch.optim.AdamW.weight_decay=[0.001]",
                           "--root_dir=sweeps", *bindings(*SHORT), cwd=root, timeout=600)
    assert swept.returncode == 0, swept.stderr[-3000:] + swept.stdout[-3000:]
    assert "1 of 1 trials completed" in swept.stdout
