"""ginlight-train end to end: the run directory, rerunning it, and the informational flags."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
import torch
from conftest import CONFIGS, REPO, SHIPPED, SHORT, bindings, ginlight_train, read_record, run_dirs
from outcomes import assert_same_outcome
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from test_bad_inputs import run_command as entry_point

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    """A 2-epoch classifier run with validation, made once for the checks below."""
    root = tmp_path_factory.mktemp("runs")
    result = ginlight_train(
        f"--gin_file={CONFIGS / 'classifier.gin'}", f"--root_dir={root}",
        *bindings("MAX_EPOCHS=2", *SHORT, "Trainer.log_every_n_steps=1"),
    )
    assert result.returncode == 0, result.stderr
    (run_dir,) = run_dirs(root)
    return run_dir, result


def test_run_directory_is_named_after_the_first_gin_file(finished_run):
    run_dir, result = finished_run
    assert run_dir.parent.name == "classifier"
    assert f"run directory: {run_dir}" in result.stdout


def test_config_gin_holds_the_files_with_their_includes_inlined_then_the_bindings(finished_run):
    text = (finished_run[0] / "config.gin").read_text()
    base = (CONFIGS / "base.gin").read_text().rstrip()
    # The include line stays as a comment, and the included file follows it, under a header naming it.
    assert re.search(rf"^# include 'base.gin'\n+# ---- \S*base\.gin ----\n{re.escape(base)}\n", text, re.M), text[:2000]
    assert text.index(f"# ---- {CONFIGS / 'classifier.gin'} ----") < text.index(base)
    assert text.index(base) < text.index("NUM_CLASSES = 10") < text.index("--gin_bindings") < text.index("MAX_EPOCHS=2")


def test_operative_config_has_defaults_macros_and_the_seed(finished_run):
    text = (finished_run[0] / "operative_config.gin").read_text()
    assert "MAX_EPOCHS = 2" in text
    assert "Experiment.seed = 0" in text
    assert "AdamW.eps = 1e-08" in text  # a default nobody bound
    assert "Trainer.limit_train_batches = 3" in text


def test_run_json_records_the_run(finished_run):
    record = read_record(finished_run[0])
    assert record["status"] == "completed"
    assert record["error"] is None
    assert record["seed"] == 0
    assert record["argv"][1].startswith("--gin_file=")
    assert set(record["versions"]) == {"python", "torch", "lightning", "gin-config", "torchmetrics", "ginlight"}
    assert record["git"] is None or set(record["git"]) == {"commit", "dirty"}
    assert record["start_time"] <= record["end_time"]
    assert {"train/loss", "val/loss", "val/accuracy", "val/f1score"} <= set(record["metrics"])
    assert record["best_checkpoint"].endswith(".ckpt")


def test_checkpoints_hold_last_and_the_best_epoch_by_val_accuracy(finished_run):
    """classifier.gin monitors val/accuracy (mode max); the first of equal best values is kept."""
    run_dir = finished_run[0]
    record = read_record(run_dir)
    last = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)
    assert last["epoch"] == 1
    events = EventAccumulator(str(run_dir / "tensorboard"))
    events.Reload()
    accuracies = [event.value for event in events.Scalars("val/accuracy")]
    assert len(accuracies) == 2
    best = torch.load(record["best_checkpoint"], weights_only=True)
    assert best["epoch"] == accuracies.index(max(accuracies))
    assert sorted(p.name for p in (run_dir / "checkpoints").iterdir()) == sorted(
        {"last.ckpt", Path(record["best_checkpoint"]).name})
    assert best["ginlight"]["operative_config"] == (run_dir / "operative_config.gin").read_text()


def test_train_log_holds_what_the_console_showed(finished_run):
    log = (finished_run[0] / "train.log").read_text()
    assert "`Trainer.fit` stopped: `max_epochs=2` reached" in log


def test_tensorboard_has_scalars_config_text_and_hparams(finished_run):
    events = EventAccumulator(str(finished_run[0] / "tensorboard"), size_guidance={"tensors": 0})
    events.Reload()
    tags = events.Tags()
    assert {"train/loss", "train/loss_step", "val/loss", "val/accuracy", "lr-AdamW"} <= set(tags["scalars"])
    assert "operative_config/text_summary" in tags["tensors"]
    hparams = (finished_run[0] / "tensorboard" / "hparams.yaml").read_text()
    assert "AdamW.lr: 0.003" in hparams


def test_operative_config_reruns_from_another_directory(finished_run, tmp_path):
    run_dir, _ = finished_run
    copy = tmp_path / "elsewhere" / "operative_config.gin"
    copy.parent.mkdir()
    shutil.copy(run_dir / "operative_config.gin", copy)
    result = ginlight_train(f"--gin_file={copy}", f"--root_dir={tmp_path / 'runs'}", cwd=tmp_path / "elsewhere")
    assert result.returncode == 0, result.stderr
    (rerun,) = run_dirs(tmp_path / "runs")
    assert rerun.parent.name == "operative_config"
    assert_same_outcome(run_dir, rerun)


def test_print_config_prints_the_merged_config_and_creates_nothing(tmp_path):
    result = ginlight_train(
        f"--gin_file={CONFIGS / 'classifier.gin'}", "--gin_bindings=MAX_EPOCHS=7", "--print_config",
        f"--root_dir={tmp_path}",
    )
    assert result.returncode == 0, result.stderr
    assert "MAX_EPOCHS = 7" in result.stdout
    assert "AdamW.lr = %LR" in result.stdout
    assert list(tmp_path.iterdir()) == []


def test_list_configurables_shows_parameters_and_defaults():
    result = ginlight_train("--list_configurables=torch.optim.N*")
    assert result.returncode == 0, result.stderr
    assert "torch.optim.NAdam(params, lr=0.002, betas=(0.9, 0.999)" in result.stdout
    assert "torch.optim.Adam(" not in result.stdout


def test_list_configurables_without_a_pattern_lists_everything():
    result = ginlight_train("--list_configurables")
    assert result.returncode == 0, result.stderr
    names = {line.split("(")[0] for line in result.stdout.splitlines()}
    assert {"ginlight.System", "lightning.Trainer", "torchmetrics.Accuracy", "torch.nn.GELU"} <= names


def test_help_lists_the_flags():
    result = ginlight_train("--help")
    assert result.returncode == 0
    for flag in ("--gin_file", "--gin_bindings", "--gin_search_paths", "--project", "--root_dir", "--run_dir",
                 "--stage", "--ckpt_path", "--[no]print_config", "--list_configurables", "--[no]verbose"):
        assert flag in result.stdout


def test_gin_search_paths_resolve_files_and_includes(tmp_path):
    (tmp_path / "mine.gin").write_text("include 'classifier.gin'\nMAX_EPOCHS = 1\n")
    result = ginlight_train(
        "--gin_file=mine.gin", f"--gin_search_paths={tmp_path}", f"--gin_search_paths={CONFIGS}",
        f"--root_dir={tmp_path / 'runs'}", *bindings(*SHORT), cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    (run_dir,) = run_dirs(tmp_path / "runs")
    assert "Trainer.max_epochs = %MAX_EPOCHS" in (run_dir / "config.gin").read_text()


def test_explicit_run_dir_is_used_and_never_reused(tmp_path, capsys, monkeypatch):
    run_dir = tmp_path / "mine"
    first = ginlight_train(f"--gin_file={CONFIGS / 'classifier.gin'}", f"--run_dir={run_dir}",
                           *bindings("MAX_EPOCHS=1", *SHORT))
    assert first.returncode == 0, first.stderr
    assert read_record(run_dir)["status"] == "completed"
    # Refused before anything runs: through the entry point in this process, as test_bad_inputs.py runs it.
    status, stderr = entry_point([f"--gin_file={CONFIGS / 'classifier.gin'}", f"--run_dir={run_dir}",
                                  *bindings("MAX_EPOCHS=1", *SHORT)], tmp_path, capsys, monkeypatch)
    assert status == 2
    assert "not empty" in stderr


@pytest.mark.parametrize("config", SHIPPED, ids=lambda path: path.stem)
def test_print_config_of_every_shipped_config_from_the_repository_root(config, tmp_path):
    """As the configs' headers say to run them: from the repository root, which configs/gan.gin's
    `import examples.gan` needs; --print_config resolves imports as training does, and creates nothing."""
    result = ginlight_train(f"--gin_file=configs/{config.name}", "--print_config", f"--root_dir={tmp_path}", cwd=REPO)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "MAX_EPOCHS" in result.stdout
    assert list(tmp_path.iterdir()) == []
