"""Any importable class or callable, named by its import path in a gin file, with no registration code.

Third-party libraries (transformers, einops, Lightning's demo classes) and a user's
undecorated module run through the real ``ginlight-train`` command, from a working
directory outside the repository. Nothing is downloaded: the BERT is built from a
config (HF_HUB_OFFLINE=1 makes any attempt fail).
"""

from __future__ import annotations

import os
import pickle
import re
import subprocess
import sys
from pathlib import Path

import gin
import pytest
import torch
from conftest import REPO, SHORT, bindings, read_record, run_dirs

import ginlight
from ginlight.gin import parsing
from ginlight.config_carrier import GinConfigCarrier

pytestmark = pytest.mark.slow

TRAIN = Path(sys.executable).parent / "ginlight-train"
OFFLINE = {**os.environ, "HF_HUB_OFFLINE": "1"}


def ginlight_train(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    """The installed console script, offline."""
    return subprocess.run([str(TRAIN), *args], cwd=cwd, capture_output=True, text=True, timeout=600, env=OFFLINE)


def weights(run_dir: Path) -> dict[str, torch.Tensor]:
    return torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]


README = (REPO / "README.md").read_text()


def readme_block(first_line: str) -> str:
    """The README's code block that starts with ``first_line``."""
    (block,) = [b for b in re.findall(r"```(?:python)?\n(.*?)```", README, re.S) if b.startswith(first_line)]
    return block


def test_a_transformers_model_with_undecorated_glue_trains_and_its_operative_config_reruns(tmp_path):
    """README's "Use any library": a BERT of one layer reads the digits' pixels as tokens."""
    (tmp_path / "lab").mkdir()
    (tmp_path / "lab" / "__init__.py").write_text("")
    (tmp_path / "lab" / "glue.py").write_text(readme_block("# lab/glue.py"))
    (tmp_path / "bert.gin").write_text(readme_block("# bert.gin"))
    assert "    ginlight-train --project=lab --gin_file=bert.gin\n" in README
    result = ginlight_train("--project=lab", "--gin_file=bert.gin", f"--root_dir={tmp_path / 'runs'}",
                            *bindings(*SHORT), cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    (run_dir,) = run_dirs(tmp_path / "runs")
    assert read_record(run_dir)["status"] == "completed"
    operative = (run_dir / "operative_config.gin").read_text()
    for path in ("transformers.BertConfig", "transformers.BertForSequenceClassification",
                 "lab.glue.pixel_tokens", "lab.glue.logits"):
        assert f"# ginlight-register: {path}\n" in operative
    assert "BertConfig.hidden_size = 32" in operative and "BertConfig.num_hidden_layers = 1" in operative

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    rerun = ginlight_train(f"--gin_file={run_dir / 'operative_config.gin'}", f"--root_dir={tmp_path / 'reruns'}",
                           cwd=elsewhere)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    (rerun_dir,) = run_dirs(tmp_path / "reruns")
    first, second = weights(run_dir), weights(rerun_dir)
    assert first.keys() == second.keys() and any(key.startswith("model.bert.encoder.layer.0.") for key in first)
    assert all(torch.equal(first[key], second[key]) for key in first)
    assert read_record(rerun_dir)["metrics"] == read_record(run_dir)["metrics"]


def test_lightning_demo_classes_as_system_and_datamodule_from_a_gin_file_alone(tmp_path):
    (tmp_path / "boring.gin").write_text(readme_block("# boring.gin"))
    assert "    ginlight-train --gin_file=boring.gin\n" in README
    result = ginlight_train("--gin_file=boring.gin", f"--root_dir={tmp_path / 'runs'}", *bindings(*SHORT),
                            cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    (run_dir,) = run_dirs(tmp_path / "runs")
    assert read_record(run_dir)["status"] == "completed"
    assert set(weights(run_dir)) == {"layer.weight", "layer.bias"}  # BoringModel's one Linear
    assert "Experiment.system = @lightning.pytorch.demos.boring_classes.BoringModel()" in (
        run_dir / "operative_config.gin").read_text()


def test_a_third_party_collate_function_runs_in_spawned_dataloader_workers(tmp_path):
    """The loaders' collate_fn is gin's wrapper of transformers.default_data_collator: it is
    pickled into each spawned worker and found there by its path alone."""
    (tmp_path / "collate.gin").write_text(
        "Experiment.system = @System()\n"
        "System.model = @ginlight.models.MLP()\n"
        "ginlight.models.MLP.in_features = 64\n"
        "ginlight.models.MLP.out_features = 10\n"
        "System.criterion = @torch.nn.CrossEntropyLoss()\n"
        "System.optimizer = @torch.optim.SGD\n"
        "torch.optim.SGD.lr = 0.1\n"
        "System.adapters = {'train': {'batch': @BatchAdapter()}, 'val': {'batch': @BatchAdapter()}}\n"
        "BatchAdapter.input_accessor = 'image'\n"
        "BatchAdapter.target_accessor = 'labels'  # default_data_collator renames 'label'\n"
        "System.dataloaders = {'train': @train/DataLoader(), 'val': @val/DataLoader()}\n"
        "DataLoader.dataset = @ginlight.data.digits()\n"
        "ginlight.data.digits.as_dict = True\n"
        "ginlight.data.digits.flatten = True\n"
        "train/ginlight.data.digits.split = 'train'\n"
        "val/ginlight.data.digits.split = 'val'\n"
        "DataLoader.batch_size = 16\n"
        "DataLoader.collate_fn = @transformers.default_data_collator\n"
        "DataLoader.num_workers = 1\n"
        "DataLoader.multiprocessing_context = 'spawn'\n"
        "Trainer.max_epochs = 1\n"
    )
    result = ginlight_train("--gin_file=collate.gin", f"--root_dir={tmp_path / 'runs'}", *bindings(*SHORT),
                            cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    (run_dir,) = run_dirs(tmp_path / "runs")
    assert {"train/loss", "val/loss"} <= set(read_record(run_dir)["metrics"])


def test_a_misspelt_path_is_located_and_corrected_from_the_modules_names(tmp_path):
    (tmp_path / "typo.gin").write_text("Experiment.system = @System()\n"
                                       "einops.layers.torch.Rearange.pattern = 'b c h w -> b (c h w)'\n")
    result = ginlight_train("--gin_file=typo.gin", cwd=tmp_path)
    assert result.returncode == 2
    assert "typo.gin:2: unknown configurable 'einops.layers.torch.Rearange': 'einops.layers.torch' has no " \
           "attribute 'Rearange'." in result.stderr
    assert "Did you mean 'einops.layers.torch.Rearrange'" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_module_whose_dependency_is_not_installed_names_the_dependency():
    with pytest.raises(ginlight.ConfigError, match="importing 'einops.layers.tensorflow' needs 'tensorflow', which "
                                                   "is not installed.\nInstall the package that provides 'tensorflow'"):
        parsing.parse(bindings=["einops.layers.tensorflow.Rearrange.pattern = 'a -> a'"])


@pytest.mark.parametrize("written, says", [("x = @math.pi()", r"'math.pi' is a float \(3.14"),
                                            ("x = @einops.layers()", "'einops.layers' is a module")])
def test_a_name_that_is_neither_class_nor_callable_is_refused_with_the_reason(written, says):
    with pytest.raises(ginlight.ConfigError, match=f"{says}.*neither a class nor a callable"):
        parsing.parse(bindings=[written])


def test_an_object_registered_under_another_name_is_pointed_to_it():
    with pytest.raises(ginlight.ConfigError, match="that object is registered as 'torch.nn.Linear'"):
        parsing.parse(bindings=["torch.nn.modules.linear.Linear.in_features = 3"])


def test_scopes_and_macros_apply_and_a_class_method_is_configurable():
    parsing.parse(bindings=[
        "PATTERN = 'b c h w -> b (c h w)'",
        "flat/einops.layers.torch.Rearrange.pattern = %PATTERN",
        "einops.layers.torch.Rearrange.pattern = 'b c h w -> b h w c'",
        "transformers.BertConfig.from_dict.config_dict = {'hidden_size': 32, 'num_labels': 3}",
    ])
    rearrange = gin.get_configurable("einops.layers.torch.Rearrange")
    with gin.config_scope("flat"):
        assert rearrange()(torch.zeros(2, 3, 4, 5)).shape == (2, 60)
    assert rearrange()(torch.zeros(2, 3, 4, 5)).shape == (2, 4, 5, 3)
    bert_config = gin.get_configurable("transformers.BertConfig.from_dict")()
    assert (type(bert_config).__name__, bert_config.hidden_size, bert_config.num_labels) == ("BertConfig", 32, 3)


def test_a_wrapper_registered_by_path_unpickles_in_a_fresh_process():
    """What a spawned worker does with a transform it receives before its config is restored."""
    parsing.parse(bindings=["einops.rearrange.pattern = 'b c -> c b'"])
    wrapper = gin.get_configurable("einops.rearrange")
    assert pickle.loads(pickle.dumps(wrapper)) is wrapper
    code = ("import pickle, sys, gin, torch\n"
            "wrapper = pickle.loads(sys.stdin.buffer.read())\n"
            "gin.parse_config(\"einops.rearrange.pattern = 'b c -> c b'\")\n"
            "print(wrapper.__name__, tuple(wrapper(torch.zeros(2, 3)).shape))\n")
    result = subprocess.run([sys.executable, "-c", code], input=pickle.dumps(wrapper), capture_output=True)
    assert result.returncode == 0, result.stderr.decode()[-2000:]
    assert result.stdout.decode().split() == ["rearrange", "(3,", "2)"]


@pytest.mark.parametrize("binding, imported", [
    ("torch.optim.Adam.lr = 1e-3", []),
    ("einops.layers.torch.Rearrange.pattern = 'a -> a'", ["einops.layers.torch"]),
])
def test_parsing_imports_only_what_the_config_names(binding, imported):
    watched = ["einops.layers.torch", "transformers.models.bert", "lightning.pytorch.demos.boring_classes"]
    code = ("import sys\nfrom ginlight.gin import parsing\n"
            f"parsing.parse(bindings=[{binding!r}])\n"
            f"print([m for m in {watched!r} if m in sys.modules])\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=OFFLINE)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == repr(imported)


def test_listing_a_libraries_module_by_pattern(tmp_path):
    result = ginlight_train("--list_configurables=einops.layers.*", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "einops.layers.torch.Rearrange(pattern, **axes_lengths)" in result.stdout.splitlines()
    assert "einops.layers.torch.Reduce(pattern, reduction, **axes_lengths)" in result.stdout.splitlines()


def test_print_config_shows_the_defaults_of_an_object_named_by_path(tmp_path):
    (tmp_path / "print.gin").write_text("Experiment.system = @System()\nSystem.model = @torch.nn.Linear()\n"
                                        "torch.nn.Linear.in_features = @transformers.BertConfig()\n"
                                        "transformers.BertConfig.hidden_size = 32\nTrainer.max_epochs = 1\n")
    result = ginlight_train("--gin_file=print.gin", "--print_config", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    lines = [" ".join(line.split()) for line in result.stdout.splitlines()]
    assert "transformers.BertConfig.hidden_size = 32 # print.gin:4" in lines
    assert "transformers.BertConfig.num_hidden_layers = 12 # default" in lines


def test_parse_time_benchmark_prints_its_table():
    """docs/performance.md: `python -m benchmarks.parse_time` (speed itself is not asserted here)."""
    result = subprocess.run([sys.executable, "-m", "benchmarks.parse_time", "--repeats=1"], cwd=REPO,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    rows = {row.split(" | ")[0].lstrip("| "): row for row in result.stdout.splitlines() if row.startswith("| ")}
    assert rows["stack only (configs/classifier.gin)"].endswith("| none |")
    assert rows["classifier.gin + einops, transformers, Lightning demos by path"].endswith("| einops |")


def test_the_config_carried_into_a_fresh_process_registers_what_it_names_by_path():
    """What ddp_spawn ranks and spawned workers receive: gin writes `Rearrange` short, the carrier
    adds where to import it from."""
    parsing.parse(bindings=["flat/einops.layers.torch.Rearrange.pattern = 'b c h w -> b (c h w)'"])
    code = ("import pickle, sys, gin, torch\n"
            "pickle.loads(sys.stdin.buffer.read())\n"
            "with gin.config_scope('flat'):\n"
            "    print(tuple(gin.get_configurable('einops.layers.torch.Rearrange')()(torch.zeros(2, 3, 4, 5)).shape))\n")
    result = subprocess.run([sys.executable, "-c", code], input=pickle.dumps(GinConfigCarrier(paths=[])),
                            capture_output=True)
    assert result.returncode == 0, result.stderr.decode()[-2000:]
    assert result.stdout.decode().strip() == "(2, 60)"
