"""What a run directory records beyond its config: the code that ran, why it stopped, and what
--print_config, the errors and the console tell the user (issue: run records that never lie)."""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
from pathlib import Path

import pytest
from conftest import CONFIGS, REPO, SHORT, bindings, ginlight_diff, ginlight_train, read_record, run_dirs

from ginlight import rundir
from ginlight.gin import source

pytestmark = pytest.mark.slow

MODEL_MODULE = '''
import gin
import torch


@gin.configurable
class Scaled(torch.nn.Module):
    def __init__(self, module, scale=1.0):
        super().__init__()
        self.module = module
        self.scale = scale

    def forward(self, x):
        return self.module(x) * self.scale
'''
CONFIG = f"""
include '{CONFIGS / "classifier.gin"}'
import lab.layers
System.model = @lab.layers.Scaled()
lab.layers.Scaled.module = @ginlight.models.ConvNet()
MAX_EPOCHS = 1
"""


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True, text=True).stdout


@pytest.fixture(scope="module")
def repo(tmp_path_factory) -> Path:
    """A git repository holding a project's code and config, committed."""
    repo = tmp_path_factory.mktemp("repo")
    (repo / "lab").mkdir()
    (repo / "lab" / "__init__.py").write_text("")
    (repo / "lab" / "layers.py").write_text(MODEL_MODULE)
    (repo / "exp.gin").write_text(CONFIG)
    _git(repo, "init", "-q")
    _git(repo, "add", ".")
    _git(repo, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "first")
    return repo


@pytest.fixture(scope="module")
def dirty_run(repo) -> Path:
    """A run made from the repository with an uncommitted change to a tracked module."""
    layers = repo / "lab" / "layers.py"
    layers.write_text(MODEL_MODULE.replace("scale=1.0", "scale=0.5"))
    result = ginlight_train("--gin_file=exp.gin", *bindings(*SHORT), cwd=repo)
    assert result.returncode == 0, result.stderr
    (run,) = run_dirs(repo / "runs")
    return run


def test_a_run_from_a_dirty_tree_keeps_the_commit_and_the_uncommitted_change_as_a_patch(repo, dirty_run):
    record = read_record(dirty_run)
    assert record["git"]["commit"] == _git(repo, "rev-parse", "HEAD").strip()
    assert record["git"]["dirty"] is True
    assert record["git"]["patch"] == rundir.PATCH and record["git"]["patch_truncated"] is False
    patch = (dirty_run / rundir.PATCH).read_text()
    assert "-    def __init__(self, module, scale=1.0):" in patch
    assert "+    def __init__(self, module, scale=0.5):" in patch
    # The patch restores the run's code on a clean checkout of the commit.
    checkout = repo.parent / "checkout"
    _git(repo.parent, "clone", "-q", str(repo), str(checkout))
    _git(checkout, "apply", str(dirty_run / rundir.PATCH))
    assert (checkout / "lab" / "layers.py").read_text() == (repo / "lab" / "layers.py").read_text()


def test_a_run_records_each_user_module_with_its_hash_and_a_copy_of_its_source(repo, dirty_run):
    modules = read_record(dirty_run)["code"]["modules"]
    assert set(modules) == {"lab", "lab.layers"}  # neither ginlight, nor torch, nor the standard library
    layers = repo / "lab" / "layers.py"
    assert modules["lab.layers"] == {"path": str(layers.resolve()),
                                     "sha256": hashlib.sha256(layers.read_bytes()).hexdigest()}
    assert (dirty_run / rundir.SOURCES / "lab" / "layers.py").read_bytes() == layers.read_bytes()
    assert (dirty_run / rundir.SOURCES / "lab" / "__init__.py").is_file()
    # The folder the module came from is recorded for reruns from anywhere.
    assert f"# ginlight-path: {repo.resolve()}" in (dirty_run / "operative_config.gin").read_text().splitlines()


def test_reproduce_and_diff_report_that_the_code_differs_after_a_further_edit(repo, dirty_run, tmp_path):
    layers = repo / "lab" / "layers.py"
    layers.write_text(layers.read_text() + "\n# a further edit\n")
    result = ginlight_train(f"--reproduce={dirty_run}", f"--root_dir={tmp_path}", cwd=repo)
    assert result.returncode == 0, result.stderr  # same results: the edit is a comment
    assert "Code differs: uncommitted changes (code.patch)" in result.stdout
    assert "module lab.layers: differs" in result.stdout
    assert "Versions: the same." in result.stdout
    (rerun,) = run_dirs(tmp_path)
    report = json.loads((rerun / "reproduction.json").read_text())
    assert report["match"] is True and report["code_matches"] is False and report["versions_match"] is True
    diff = ginlight_diff(str(dirty_run), str(rerun))
    assert diff.returncode == 0, diff.stderr
    code = diff.stdout.split("\nCode\n", 1)[1]
    assert "~ module lab.layers: differs" in code and "Versions\n  the same" in code


def test_a_patch_over_the_limit_is_cut_and_the_record_says_so(tmp_path, monkeypatch):
    _git(tmp_path, "init", "-q")
    (tmp_path / "big.txt").write_text("")
    _git(tmp_path, "add", ".")
    _git(tmp_path, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "empty")
    (tmp_path / "big.txt").write_text("x" * 100 + "\n" * (source.PATCH_LIMIT // 2))
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    monkeypatch.chdir(tmp_path)
    run = rundir.RunDir(run_dir)
    record = source.snapshot(run.patch, run.sources, {})
    assert record["git"]["patch_truncated"] is True
    assert record["git"]["patch_bytes"] > source.PATCH_LIMIT
    assert run.patch.stat().st_size == source.PATCH_LIMIT
    assert record["code"] == {"modules": {}, "sources_copied": True}


DIVERGING_MODULE = '''
import gin
import torch
from lightning import LightningModule
from torch.utils.data import DataLoader, TensorDataset


@gin.configurable
class Regressor(LightningModule):
    """A plain LightningModule, not ginlight's System."""

    def __init__(self, lr=1e-3):
        super().__init__()
        self.lr = lr
        self.layer = torch.nn.Linear(4, 1)

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = torch.nn.functional.mse_loss(self.layer(x), y)
        self.log("train_loss", loss, on_step=False, on_epoch=True)
        return loss

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=self.lr)

    def train_dataloader(self):
        generator = torch.Generator().manual_seed(0)
        x = torch.randn(64, 4, generator=generator) * 100
        return DataLoader(TensorDataset(x, x.sum(1, keepdim=True)), batch_size=16)
'''


def test_a_diverging_lightning_module_of_the_users_fails_with_the_step(tmp_path):
    (tmp_path / "diverge.py").write_text(DIVERGING_MODULE)
    (tmp_path / "diverge.gin").write_text("import diverge\nExperiment.system = @diverge.Regressor()\n"
                                          "diverge.Regressor.lr = 1e12\nTrainer.max_epochs = 5\n")
    result = ginlight_train("--gin_file=diverge.gin", *bindings(*SHORT), cwd=tmp_path)
    assert result.returncode == 1, result.stderr
    (run,) = run_dirs(tmp_path / "runs")
    record = read_record(run)
    assert record["status"] == "failed"
    assert re.search(r"'train_loss' became (nan|inf) by step \d+ \(epoch \d\)", record["error"]), record["error"]
    assert "training diverged" in result.stderr
    # The failed run resumes; with the module edited so that its loss stays finite, it completes, and the
    # resumption names the module whose code changed since the run started.
    module = tmp_path / "diverge.py"
    module.write_text(module.read_text().replace(
        "        self.log(", "        loss = torch.nan_to_num(loss, nan=0.0, posinf=0.0)\n        self.log("))
    resumed = ginlight_train(f"--resume={run}")
    assert resumed.returncode == 0, resumed.stderr
    record = read_record(run)
    assert record["status"] == "completed" and record["error"] is None
    assert [r["code_changed"] for r in record["resumptions"]] == [["diverge"]]
    assert run_dirs(tmp_path / "runs") == [run]


def test_print_config_from_the_repository_root_shows_every_parameter_with_its_origin():
    result = ginlight_train("--gin_file=configs/gan.gin", "--gin_bindings=Trainer.max_epochs=2", "--print_config",
                            cwd=REPO)
    assert result.returncode == 0, result.stderr
    lines = {line.split("  #")[0].strip(): line.rsplit("# ", 1)[1] for line in result.stdout.splitlines()
             if "  # " in line}
    gin_lines = (CONFIGS / "gan.gin").read_text().splitlines()
    generator_line = next(i for i, line in enumerate(gin_lines, 1) if line.startswith("GAN.generator ="))
    assert lines["examples.gan.gan.GAN.generator = @Generator()"] == f"configs/gan.gin:{generator_line}"
    assert lines["examples.gan.gan.GAN.num_samples = 64"] == "default"  # unbound: the signature's default
    assert lines["lightning.Trainer.max_epochs = 2"] == "--gin_bindings"
    assert lines["lightning.Trainer.deterministic = 'warn'"] == "ginlight's default"
    assert lines["LATENT_DIM = 32"].startswith("configs/gan.gin:")


def test_an_undefined_macro_is_reported_at_its_first_use(tmp_path):
    (tmp_path / "case.gin").write_text(f"include '{CONFIGS / 'classifier.gin'}'\n\nTrainer.max_epochs = %EPOCHS\n")
    result = ginlight_train("--gin_file=case.gin", cwd=tmp_path)
    assert result.returncode == 2
    assert "case.gin:3: macro '%EPOCHS' is used but never defined." in result.stderr
    assert not (tmp_path / "runs").exists()


def test_a_malformed_binding_is_quoted(tmp_path):
    result = ginlight_train(f"--gin_file={CONFIGS / 'classifier.gin'}", "--gin_bindings=Trainer.max_epochs = ")
    assert result.returncode == 2
    assert result.stderr.startswith(
        "ginlight-train: error: --gin_bindings: cannot read the binding `Trainer.max_epochs = `:"), result.stderr


def test_lightnings_chatter_stays_out_of_the_console_and_the_log_unless_verbose(tmp_path):
    args = [f"--gin_file={CONFIGS / 'regression.gin'}", *bindings(*SHORT, "Trainer.max_epochs=1"),
            f"--root_dir={tmp_path}"]
    quiet = ginlight_train(*args)
    loud = ginlight_train(*args, "--verbose")
    assert quiet.returncode == loud.returncode == 0, quiet.stderr + loud.stderr
    quiet_run, loud_run = run_dirs(tmp_path)
    for chatter in ("litlogger", "is deprecated"):
        assert chatter not in quiet.stdout + quiet.stderr
        assert chatter not in (quiet_run / "train.log").read_text()
    assert "litlogger" in loud.stdout + loud.stderr and "litlogger" in (loud_run / "train.log").read_text()
