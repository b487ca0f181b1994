"""The overhead benchmark runs, and the System's cheaper bookkeeping logs what torchmetrics would.

Speed itself is never asserted here: it is measured by ``python -m benchmarks.overhead``.
"""

from __future__ import annotations

import subprocess
import sys
import time

import pytest
import torch
from conftest import CONFIGS, REPO, SHORT, bindings, ginlight_train, run_dirs
from torchmetrics.classification import MulticlassAccuracy, MulticlassF1Score

import ginlight
from benchmarks.overhead import Turns, _median_interval
from ginlight.models import MLP


# `python -m` from the repository root: the benchmark is the repository's own script, not an installed command
# (docs/performance.md runs it this way).
@pytest.mark.slow
def test_overhead_benchmark_quick_prints_the_table():
    result = subprocess.run([sys.executable, "-m", "benchmarks.overhead", "--quick"], cwd=REPO,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    table = result.stdout
    for workload in ("mlp", "cnn"):
        for variant in ("(a) raw PyTorch loop", "(b) Lightning", "(c) ginlight, shipped defaults",
                        "(d) ginlight, no progress bar", "(e) Lightning barebones=True"):
            assert f"| {workload} | {variant}" in table
    for row in ("`ginlight-train --help`", "`ginlight-train --print_config`", "`ginlight-train --list_configurables`",
                "launch to first training step: ginlight-train", "launch to first training step: plain Lightning"):
        assert row in table
    assert "--print_config and --list_configurables built nothing: yes" in table


@pytest.mark.slow
def test_overhead_benchmark_measures_only_the_workloads_asked_for():
    result = subprocess.run([sys.executable, "-m", "benchmarks.overhead", "--quick", "--workload=mlp"], cwd=REPO,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "| mlp | (c) ginlight, shipped defaults" in result.stdout
    assert "mlp (c) <= 1.30 x (e)" in result.stdout
    assert "cnn" not in result.stdout


@pytest.mark.slow
def test_sweep_throughput_benchmark_quick_prints_its_tables():
    """docs/sweeps.md: a sweep of short runs against one run, and launch to first step, timed side by side."""
    result = subprocess.run([sys.executable, "-m", "benchmarks.sweep_throughput", "--quick"], cwd=REPO,
                            capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    table = result.stdout
    for row in ("| one run (ginlight-train) | ", "| sweep (ginlight-sweep --workers=2) | ",
                "| ratio sweep / one run | ", "| plain Lightning script | ", "| ginlight-train | ",
                "| ratio ginlight-train / plain Lightning | "):
        assert row in table, table
    assert "2-trial sweep / one run: " in table and "launch to first step, ginlight-train / plain Lightning: " in table
    assert "speed-up with 2 workers" not in table  # not in --quick


def test_turns_alternate_and_each_clock_counts_its_own_turns_only():
    """The clocks split the time the variants ran: together they never exceed it, so neither counts the
    other's turns. (How long a turn takes is the benchmark's to measure, not this test's.)"""
    turns, taken, clocks = Turns(), [], {}

    def variant(name, turn):
        def job():
            for _ in range(3):
                taken.append(name)
                turn()
                turns.pass_turn()
            clocks[name] = turns.clock()
        return job

    def spin():  # a turn that uses the CPU for a while, so that counting it twice would show
        deadline = time.perf_counter() + 0.05
        while time.perf_counter() < deadline:
            pass

    wall, cpu = time.perf_counter(), time.process_time()
    turns.run({"quick": variant("quick", lambda: None), "slow": variant("slow", spin)})
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    assert taken == ["quick", "slow"] * 3
    assert clocks["slow"][0] >= 0.15 and clocks["slow"][1] > 0  # three spins of its own
    assert clocks["quick"][0] + clocks["slow"][0] <= wall
    assert clocks["quick"][1] + clocks["slow"][1] <= cpu


def test_turns_pass_on_a_variants_error_once_all_have_stopped():
    turns, finished = Turns(), []

    def failing():
        turns.pass_turn()
        raise ValueError("broken variant")

    def working():
        for _ in range(3):
            turns.pass_turn()
        finished.append(True)

    with pytest.raises(ValueError, match="broken variant"):
        turns.run({"failing": failing, "working": working})
    assert finished == [True]


def test_turns_give_each_variant_the_torch_flags_it_set(torch_flags):
    turns, seen = Turns(), []

    def deterministic():
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.utils.deterministic.fill_uninitialized_memory = False
        turns.pass_turn()
        seen.append(("deterministic", torch.are_deterministic_algorithms_enabled(),
                     torch.utils.deterministic.fill_uninitialized_memory))

    def plain():
        turns.pass_turn()
        seen.append(("plain", torch.are_deterministic_algorithms_enabled(),
                     torch.utils.deterministic.fill_uninitialized_memory))

    turns.run({"deterministic": deterministic, "plain": plain})
    assert seen == [("deterministic", True, False), ("plain", False, True)]


@pytest.mark.parametrize("count, expected", [(10, (1, 8, 0.979)), (20, (5, 14, 0.959)), (5, (0, 4, 0.938))])
def test_median_interval_is_distribution_free(count, expected):
    low, high, confidence = _median_interval([float(i) for i in reversed(range(count))])
    assert (low, high, round(confidence, 3)) == expected


@pytest.mark.slow
def test_epoch_metrics_equal_torchmetrics_over_all_samples(tmp_path):
    """With a learning rate of 0 the model is fixed, so each epoch's logged values are those of
    torchmetrics and the sample-weighted loss over the whole split (the last batch is smaller)."""
    result = ginlight.train(bindings=[
        "Experiment.system = @System()",
        "System.model = @ginlight.models.MLP()",
        "ginlight.models.MLP.in_features = 64",
        "ginlight.models.MLP.out_features = 10",
        "System.criterion = @torch.nn.CrossEntropyLoss()",
        "System.optimizer = @torch.optim.SGD",
        "torch.optim.SGD.lr = 0.0",
        "System.metrics = {'train': @train/torchmetrics.Accuracy(), "
        "'val': [@val/torchmetrics.Accuracy(), @torchmetrics.F1Score()]}",
        "torchmetrics.Accuracy.task = 'multiclass'",
        "torchmetrics.Accuracy.num_classes = 10",
        "torchmetrics.F1Score.task = 'multiclass'",
        "torchmetrics.F1Score.num_classes = 10",
        "torchmetrics.F1Score.average = 'macro'",
        "System.dataloaders = {'train': @train/DataLoader(), 'val': @val/DataLoader()}",
        "DataLoader.dataset = @ginlight.data.digits()",
        "ginlight.data.digits.flatten = True",
        "train/ginlight.data.digits.split = 'train'",
        "val/ginlight.data.digits.split = 'val'",
        "DataLoader.batch_size = 32",
        "Trainer.max_epochs = 2",
        "Trainer.enable_progress_bar = False",
    ], root_dir=tmp_path)
    assert result.status == "completed"

    model = MLP(64, 10)
    state = torch.load(result.run_dir / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]
    model.load_state_dict({k.removeprefix("model."): v for k, v in state.items() if k.startswith("model.")})
    for split in ("train", "val"):
        inputs, targets = ginlight.data.digits(split, flatten=True).tensors
        assert len(inputs) % 32  # a smaller last batch, so that the loss must be weighted by samples
        with torch.no_grad():
            logits = model(inputs)
        expected = {
            f"{split}/loss": torch.nn.functional.cross_entropy(logits, targets).item(),
            f"{split}/accuracy": MulticlassAccuracy(10, average="micro")(logits, targets).item(),
        }
        if split == "val":
            expected["val/f1score"] = MulticlassF1Score(10, average="macro")(logits, targets).item()
        for key, value in expected.items():
            assert result.metrics[key] == pytest.approx(value, rel=1e-6), key


@pytest.mark.slow
def test_torch_compile_through_a_binding(tmp_path):
    """docs/performance.md: `System.model = @compiled/torch.compile()` compiles the model it is given
    (the `eager` backend here, to keep the test short; the default is inductor)."""
    result = ginlight_train(
        f"--gin_file={CONFIGS / 'classifier.gin'}", f"--root_dir={tmp_path}",
        *bindings("System.model = @compiled/torch.compile()",
                  "compiled/torch.compile.model = @ginlight.models.ConvNet()",
                  "compiled/torch.compile.backend = 'eager'", "MAX_EPOCHS=1", *SHORT),
    )
    assert result.returncode == 0, result.stderr[-3000:]
    (run_dir,) = run_dirs(tmp_path)
    state = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]
    assert any(key.startswith("model._orig_mod.") for key in state)  # the compiled wrapper's parameters


@pytest.mark.slow
@pytest.mark.parametrize("rebound, most, least", [([], 8, 2), (["TQDMProgressBar.refresh_rate = 1"], 200, 20)])
def test_default_progress_bar_redraws_every_ten_batches(tmp_path, rebound, most, least):
    result = ginlight_train(
        f"--gin_file={CONFIGS / 'classifier.gin'}", f"--root_dir={tmp_path}",
        *bindings("MAX_EPOCHS=1", "Trainer.limit_train_batches=20", "Trainer.limit_val_batches=0", *rebound),
    )
    assert result.returncode == 0, result.stderr[-3000:]
    redraws = result.stdout.count("Epoch 0: ")
    assert least <= redraws <= most, result.stdout[-2000:]


@pytest.mark.slow
def test_load_system_benchmark_quick_prints_the_table():
    result = subprocess.run([sys.executable, "-m", "benchmarks.load_system", "--quick", "--profile"], cwd=REPO,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "| (a) ginlight.load_system |" in result.stdout
    assert "| (b) ConvNet + torch.load + load_state_dict |" in result.stdout
    assert "ratio (a) / (b) of the medians:" in result.stdout
    assert "same weights: yes" in result.stdout
    assert "(load_system)" in result.stdout  # the profile's top line
