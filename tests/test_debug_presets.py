"""The debug presets in configs/debug/ compose with every shipped config, and their runs go beside the root."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import CONFIGS, REPO, bindings, ginlight_train, run_command, run_dirs

import ginlight
from ginlight.diff import read_config

pytestmark = pytest.mark.slow

DEBUG = CONFIGS / "debug"
# The shipped configs that run on their own (the others include base.gin).
SHIPPED = sorted(path for path in CONFIGS.glob("*.gin") if path.name != "base.gin")
# Each preset with the profiler's, whose report counts the training batches the preset runs in one epoch.
PRESETS = {
    "fast_dev_run": (["fast_dev_run.gin", "profiler.gin"], 1),
    "overfit": (["overfit.gin", "profiler.gin"], 4),
    "limit_batches": (["limit_batches.gin", "profiler.gin"], 10),
    "anomaly": (["limit_batches.gin", "anomaly.gin", "profiler.gin"], 10),
}
ONE_EPOCH = ["Trainer.max_epochs=1", "Trainer.enable_progress_bar=False", "Trainer.enable_model_summary=False"]


def _profiled_calls(report: Path, action: str) -> int:
    """The number of calls of ``action`` in a SimpleProfiler report."""
    for line in report.read_text().splitlines():
        cells = [cell.strip() for cell in line.split("|")]
        if len(cells) > 3 and cells[1] == action:
            return int(cells[3])
    raise AssertionError(f"{action} is not in {report}:\n{report.read_text()}")


def test_every_preset_sets_experiment_debug():
    used = {name for files, _ in PRESETS.values() for name in files}
    assert sorted(path.name for path in DEBUG.glob("*.gin")) == sorted(used)
    for preset in DEBUG.glob("*.gin"):
        assert read_config(preset).bindings[("Experiment", "debug")] is True, preset


@pytest.mark.parametrize("preset", PRESETS)
@pytest.mark.parametrize("config", SHIPPED, ids=lambda path: path.stem)
def test_a_preset_composes_with_a_shipped_config(config, preset, tmp_path):
    files, batches = PRESETS[preset]
    result = ginlight.train([config, *(DEBUG / name for name in files)], ONE_EPOCH, root_dir=tmp_path / "runs",
                            projects=[str(REPO / "examples")])
    assert result.status == "completed"
    run_dir = result.run_dir
    # Beside the root, not in it.
    assert run_dir.parent.parent == tmp_path / "runs-debug"
    assert not (tmp_path / "runs").exists()
    # The presets' bindings are what ran (the test's own max_epochs aside).
    operative = read_config(run_dir).bindings
    for name in files:
        for key, value in read_config(DEBUG / name).bindings.items():
            if key != ("Trainer", "max_epochs"):
                assert repr(operative[key]) == repr(value), (name, key)
    # The profiler's report is in the run directory and counts the batches the preset allows.
    assert _profiled_calls(run_dir / "fit-profile.txt", "run_training_batch") == batches
    if preset == "fast_dev_run":  # Lightning's fast_dev_run runs without a logger
        assert not (run_dir / "tensorboard").exists()
    if preset == "anomaly":
        assert "detect_anomaly=True" in (run_dir / "train.log").read_text()


def test_the_readme_command_puts_the_debug_run_beside_the_root(tmp_path):
    readme = (REPO / "README.md").read_text()
    command = "ginlight-train --gin_file=configs/classifier.gin --gin_file=configs/debug/overfit.gin"
    assert command in readme
    result = ginlight_train(*command.split()[1:], f"--root_dir={tmp_path / 'runs'}", *bindings(*ONE_EPOCH), cwd=REPO)
    assert result.returncode == 0, result.stderr
    (run_dir,) = run_dirs(tmp_path / "runs-debug")
    assert not (tmp_path / "runs").exists()
    listed = run_command("ginlight-runs", str(tmp_path / "runs-debug"), "--format=json")
    assert listed.returncode == 0, listed.stderr
    runs = json.loads(listed.stdout)["runs"]
    assert [(run["run_dir"], run["status"]) for run in runs] == [(str(run_dir), "completed")]
