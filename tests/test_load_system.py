"""A ginlight checkpoint carries its config: enough to rebuild the System, or to run a stage, with no gin file."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import CONFIGS, SHORT, ginlight_train, read_record, run_dirs

import ginlight
from ginlight.checkpoint import weights_hash

pytestmark = pytest.mark.slow

USER_MODULE = '''
import gin
import torch


@gin.configurable
class TinyNet(torch.nn.Module):
    def __init__(self, hidden=16):
        super().__init__()
        self.layers = torch.nn.Sequential(
            torch.nn.Flatten(), torch.nn.Linear(64, hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, 10))

    def forward(self, x):
        return self.layers(x)
'''
USER_CONFIG = """
System.model = @tinynets.TinyNet()
tinynets.TinyNet.hidden = 24
"""


# The best checkpoint by a value known in advance: the first epoch's, so that it is not last.ckpt.
BEST_IS_FIRST = ["ModelCheckpoint.monitor = 'epoch'", "ModelCheckpoint.mode = 'min'"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> tuple[Path, Path]:
    """A 2-epoch classifier run whose model comes from the user's own module; (project folder, run dir)."""
    project = tmp_path_factory.mktemp("project")
    (project / "tinynets.py").write_text(USER_MODULE)
    (project / "tiny.gin").write_text(USER_CONFIG)
    result = ginlight.train([CONFIGS / "classifier.gin", project / "tiny.gin"],
                            [*SHORT, "MAX_EPOCHS=2", *BEST_IS_FIRST], projects=[str(project)],
                            root_dir=tmp_path_factory.mktemp("runs"))
    return project, result.run_dir.resolve()


def _state_hash(path: Path) -> str:
    return weights_hash(torch.load(path, weights_only=True)["state_dict"])


def test_load_system_rebuilds_the_system_with_its_weights_in_a_fresh_process(trained, tmp_path):
    _, run_dir = trained
    last = run_dir / "checkpoints" / "last.ckpt"
    script = (
        "import json, ginlight\n"
        "from ginlight.checkpoint import weights_hash\n"
        f"system = ginlight.load_system({str(last)!r}, trust=['tinynets'])\n"
        "print(json.dumps({'system': type(system).__name__, 'model': type(system.model).__name__,\n"
        "    'hidden': system.model.layers[1].out_features, 'weights': weights_hash(system.state_dict())}))\n"
    )
    result = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    loaded = json.loads(result.stdout.splitlines()[-1])
    assert loaded == {"system": "System", "model": "TinyNet", "hidden": 24, "weights": _state_hash(last)}


def test_load_system_of_a_run_directory_takes_its_best_checkpoint(trained):
    _, run_dir = trained
    best = run_dir / "checkpoints" / Path(read_record(run_dir)["best_checkpoint"]).name
    assert torch.load(best, weights_only=True)["epoch"] == 0
    assert _state_hash(best) != _state_hash(run_dir / "checkpoints" / "last.ckpt")  # two different models
    system = ginlight.load_system(run_dir, trust=["tinynets"])
    assert weights_hash(system.state_dict()) == _state_hash(best)
    assert system(torch.zeros(2, 1, 8, 8)).shape == (2, 10)


def test_a_missing_user_module_is_named_in_the_error(trained, monkeypatch):
    project, run_dir = trained
    moved = project.with_name(project.name + "-moved")
    monkeypatch.delitem(sys.modules, "tinynets")
    project.rename(moved)
    try:
        importlib.invalidate_caches()
        with pytest.raises(ginlight.ConfigError, match="cannot import module 'tinynets'") as error:
            ginlight.load_system(run_dir / "checkpoints" / "last.ckpt", trust=["tinynets"])
        assert error.value.location.startswith(f"the config stored in {run_dir / 'checkpoints' / 'last.ckpt'}:")
    finally:
        moved.rename(project)


def test_a_checkpoint_without_a_ginlight_config_is_refused(tmp_path):
    plain = tmp_path / "plain.ckpt"
    torch.save({"state_dict": {}}, plain)
    with pytest.raises(ginlight.ConfigError, match="holds no ginlight config"):
        ginlight.load_system(plain)
    with pytest.raises(ginlight.ConfigError, match="is not a run directory"):
        ginlight.load_system(tmp_path)


def test_stage_test_runs_from_the_checkpoint_alone_with_bindings_on_top(trained, tmp_path):
    _, run_dir = trained
    last = run_dir / "checkpoints" / "last.ckpt"
    result = ginlight_train("--stage=test", f"--ckpt_path={last}", "--trust=tinynets",
                            "--gin_bindings=Trainer.limit_test_batches=1",
                            f"--root_dir={tmp_path / 'runs'}", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    (test_run,) = run_dirs(tmp_path / "runs")
    assert test_run.parent.name == run_dir.parent.name  # named after the checkpoint's run
    record = read_record(test_run)
    assert record["stage"] == "test" and record["ckpt_path"] == str(last)
    assert {"test/loss", "test/accuracy"} <= set(record["metrics"])
    operative = (test_run / "operative_config.gin").read_text()
    assert "tinynets.TinyNet.hidden = 24" in operative or "TinyNet.hidden = 24" in operative
    assert "Trainer.limit_test_batches = 1" in operative
    assert record["weights_sha256"] == _state_hash(last)  # testing changes no weight
