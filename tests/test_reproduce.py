"""Reruns are the same run, bit for bit on the CPU; ginlight-train --reproduce checks it and reports a change.

For every shipped config, three runs of the installed command, each in a process of its own and
from a directory of its own outside the repository: the original, the rerun of its operative
config, and ``--reproduce``. All three must
leave the same run (tests/outcomes.py): files, checkpoints, weights, optimizer state,
operative config and record.
"""

from __future__ import annotations

import functools
import json
import re
import subprocess
from pathlib import Path

import gin
import pytest
import torch
from conftest import CONFIGS, EXAMPLES_PROJECT, SHIPPED, SHORT, bindings, ginlight_train, read_record, run_dirs
from outcomes import assert_same_outcome, checkpoints, differences
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from test_bad_inputs import run_command as entry_point

import ginlight
from ginlight.diff import read_config

pytestmark = pytest.mark.slow

ONE_EPOCH = [*SHORT, "Trainer.max_epochs=1"]
REPORT = "reproduction.json"


def test_every_config_is_shipped_or_a_fragment_that_shipped_ones_include():
    """So the rerun tests below cover each new config: one without its command must be an include."""
    fragments = {path.name for path in CONFIGS.glob("*.gin")} - {path.name for path in SHIPPED}
    included = {file.name for path in SHIPPED for file in read_config(path).files[1:]}
    assert SHIPPED and fragments <= included, f"configs neither runnable nor included: {fragments - included}"


def _only_run(root: Path, result: subprocess.CompletedProcess) -> Path:
    assert result.returncode == 0, result.stderr[-3000:]
    (run_dir,) = run_dirs(root)
    return run_dir


class ShippedRuns:
    """The three runs of each shipped config, made once per module when a test first asks for them."""

    def __init__(self, folder: Path):
        self.folder = folder

    def _fresh(self, name: str) -> Path:
        path = self.folder / name
        path.mkdir(parents=True)
        return path

    @functools.cache
    def original(self, config: Path) -> Path:
        root = self.folder / "original" / config.stem
        project = [EXAMPLES_PROJECT] if config.name == "gan.gin" else []  # its code is in examples/
        return _only_run(root, ginlight_train(f"--gin_file={config}", *project, f"--root_dir={root}",
                                              *bindings(*ONE_EPOCH), cwd=self._fresh(f"original-cwd/{config.stem}")))

    @functools.cache
    def rerun(self, config: Path) -> Path:
        root = self.folder / "rerun" / config.stem
        return _only_run(root, ginlight_train(f"--gin_file={self.original(config) / 'operative_config.gin'}",
                                              f"--root_dir={root}", cwd=self._fresh(f"rerun-cwd/{config.stem}")))

    @functools.cache
    def reproduction(self, config: Path) -> tuple[Path, subprocess.CompletedProcess]:
        root = self.folder / "reproduced" / config.stem
        result = ginlight_train(f"--reproduce={self.original(config)}", f"--root_dir={root}",
                                cwd=self._fresh(f"reproduce-cwd/{config.stem}"))
        return _only_run(root, result), result


@pytest.fixture(scope="module")
def shipped(tmp_path_factory) -> ShippedRuns:
    return ShippedRuns(tmp_path_factory.mktemp("shipped"))


def _scalars(run_dir: Path) -> dict[str, list[tuple[int, float]]]:
    events = EventAccumulator(str(run_dir / "tensorboard"))
    events.Reload()
    return {tag: [(e.step, e.value) for e in events.Scalars(tag)] for tag in events.Tags()["scalars"]}


@pytest.mark.parametrize("config", SHIPPED, ids=lambda path: path.stem)
def test_the_operative_config_reruns_to_the_same_run_from_another_directory_in_a_new_process(config, shipped):
    original, rerun = shipped.original(config), shipped.rerun(config)
    assert checkpoints(original) and "checkpoints/last.ckpt" in checkpoints(original)
    assert_same_outcome(original, rerun)
    logged = _scalars(original)
    assert logged and logged == _scalars(rerun)  # every logged value, step for step


@pytest.mark.parametrize("config", SHIPPED, ids=lambda path: path.stem)
def test_reproduce_reruns_to_the_same_run_and_reports_a_match(config, shipped):
    original = shipped.original(config)
    reproduced, result = shipped.reproduction(config)
    assert_same_outcome(original, reproduced, only_in_b=[REPORT])
    report = json.loads((reproduced / REPORT).read_text())
    assert report["match"] is True and report["original"] == str(original)
    assert f"Reproduced exactly: all {len(report['values'])} values match." in result.stdout


def test_reproduce_reports_each_value_from_both_runs(shipped):
    config = CONFIGS / "classifier.gin"
    reproduced, result = shipped.reproduction(config)
    assert reproduced.parent.name == "classifier"  # named after the original, not after operative_config.gin
    report = json.loads((reproduced / REPORT).read_text())
    names = [value["name"] for value in report["values"]]
    assert {"val/accuracy", "train/loss", "weights sha256"} <= set(names)
    assert all(value["match"] for value in report["values"])
    record = read_record(shipped.original(config))
    accuracy = next(line.split() for line in result.stdout.splitlines() if line.strip().startswith("val/accuracy"))
    assert accuracy[1:] == [repr(record["metrics"]["val/accuracy"])] * 2 + ["match"]


def test_reproduce_with_a_changed_binding_reports_the_differences_and_exits_3(shipped, tmp_path):
    original = shipped.original(CONFIGS / "classifier.gin")
    result = ginlight_train(f"--reproduce={original}", "--gin_bindings=LR=0.03", f"--root_dir={tmp_path}")
    assert result.returncode == 3, result.stderr
    (rerun,) = run_dirs(tmp_path)
    report = json.loads((rerun / REPORT).read_text())
    assert report["match"] is False
    weights = next(value for value in report["values"] if value["name"] == "weights sha256")
    assert weights == {"name": "weights sha256", "original": read_record(original)["weights_sha256"],
                       "rerun": read_record(rerun)["weights_sha256"], "match": False}
    assert re.search(r"weights sha256\s+[0-9a-f]{16}\s+[0-9a-f]{16}\s+DIFFERS", result.stdout)
    assert "NOT reproduced" in result.stdout
    # The whole-outcome comparison the tests above rely on sees the change where it lands.
    found = differences(original, rerun, only_in_b=[REPORT])
    assert any("['state_dict']['model." in line and "elements differ" in line for line in found), found
    assert any("['optimizer_states']" in line for line in found), found
    assert "operative_config.gin: +LR = 0.03" in found, found


DIVERGING = ["System.optimizer = @torch.optim.SGD", "torch.optim.SGD.lr = 1e38", "Trainer.log_every_n_steps = 1"]


def test_reproduce_exits_1_when_the_rerun_fails(shipped, tmp_path):
    """docs/reproducibility.md: a rerun that fails exits with 1 (here the loss diverges)."""
    result = ginlight_train(f"--reproduce={shipped.original(CONFIGS / 'classifier.gin')}", *bindings(*DIVERGING),
                            f"--root_dir={tmp_path}")
    assert result.returncode == 1, result.stderr
    assert "training loss is nan" in result.stderr
    (rerun,) = run_dirs(tmp_path)
    assert read_record(rerun)["status"] == "failed"
    assert not (rerun / REPORT).exists()


def test_reproduce_exits_2_for_what_cannot_be_reproduced(shipped, tmp_path, capsys, monkeypatch):
    """docs/reproducibility.md: not a run directory, or a run that did not complete: exit 2, nothing run.
    (Through ginlight-train's entry point in this process, as test_bad_inputs.py runs it: nothing trains.)"""
    original = shipped.original(CONFIGS / "classifier.gin")
    unfinished = tmp_path / "unfinished"
    unfinished.mkdir()
    (unfinished / "operative_config.gin").write_text((original / "operative_config.gin").read_text())
    (unfinished / "run.json").write_text(json.dumps({**read_record(original), "status": "interrupted"}))
    for run, says in [(unfinished, "is interrupted; only a completed run can be reproduced"),
                      (tmp_path / "notarun", "is not a run directory")]:
        status, stderr = entry_point([f"--reproduce={run}", f"--root_dir={tmp_path / 'runs'}"], tmp_path, capsys,
                                     monkeypatch)
        assert status == 2, stderr
        assert says in stderr and "Traceback" not in stderr
    assert not (tmp_path / "runs").exists()


def test_a_drawn_seed_is_recorded_and_reruns_exactly(shipped, tmp_path):
    """docs/reproducibility.md: `Experiment.seed = None` draws a seed, and the operative config records it."""
    root = tmp_path / "drawn"
    drawn = _only_run(root, ginlight_train(f"--gin_file={CONFIGS / 'classifier.gin'}", f"--root_dir={root}",
                                           *bindings(*ONE_EPOCH, "SEED = None")))
    seed = read_record(drawn)["seed"]
    assert isinstance(seed, int)
    assert re.search(rf"^Experiment\.seed = {seed}$", (drawn / "operative_config.gin").read_text(), re.M)
    seeded = read_record(shipped.original(CONFIGS / "classifier.gin"))
    assert read_record(drawn)["weights_sha256"] != seeded["weights_sha256"]  # not seed 0's weights
    rerun = _only_run(tmp_path / "rerun", ginlight_train(f"--gin_file={drawn / 'operative_config.gin'}",
                                                         f"--root_dir={tmp_path / 'rerun'}"))
    assert read_record(rerun)["seed"] == seed
    assert_same_outcome(drawn, rerun)


@gin.configurable
class FlagProbe(torch.nn.Module):
    """The model it wraps, recording torch's deterministic flags as each training step sees them."""

    seen: list[tuple[bool, bool]] = []

    def __init__(self, module: torch.nn.Module):
        super().__init__()
        self.module = module

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training:
            self.seen.append((torch.are_deterministic_algorithms_enabled(),
                              torch.utils.deterministic.fill_uninitialized_memory))
        return self.module(x)


@pytest.mark.parametrize("bound, fills", [([], False), (["Trainer.deterministic = True"], True)])
def test_ginlight_trains_with_deterministic_algorithms_without_filling_new_tensors_unless_bound_then_restores(
        bound, fills, tmp_path, torch_flags):
    """docs/performance.md: the fill cost a CNN's step 5%; a Trainer.deterministic of the user's own gets
    PyTorch's behaviour unchanged. (In this process: the flags are process-wide state, seen from inside;
    the run leaves them as it found them.)"""
    FlagProbe.seen.clear()
    probe = ["System.model = @FlagProbe()", "FlagProbe.module = @ginlight.models.ConvNet()"]
    ginlight.train([CONFIGS / "classifier.gin"], ONE_EPOCH + probe + bound, root_dir=tmp_path)
    assert FlagProbe.seen == [(True, fills)] * 3  # every training step (SHORT: 3 batches)
    # Once the run ends the process has torch's flags back as the torch_flags fixture set them.
    assert (torch.are_deterministic_algorithms_enabled(), torch.utils.deterministic.fill_uninitialized_memory) == (
        False, True)
