"""ginlight-train --resume: killed, failed and interrupted runs continue in their own directory, to the same run."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import steering
from conftest import CONFIGS, SHORT, ginlight_train, read_record, run_dirs
from outcomes import assert_same_outcome, files, same_weights
from steering import Held

import ginlight
from ginlight.experiment import resume

pytestmark = pytest.mark.slow

BATCHES_PER_EPOCH = 3  # Trainer.limit_train_batches in SHORT
EPOCHS = 4
# Nothing monitored: last.ckpt is the run's one checkpoint, and load_system(RUN) loads it.
SETTINGS = [*SHORT, f"MAX_EPOCHS={EPOCHS}", "ModelCheckpoint.monitor = None"]
FINAL_STEP = EPOCHS * BATCHES_PER_EPOCH


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    return steering.write_project(tmp_path_factory.mktemp("project"))



def _fresh(path: Path) -> Path:
    path.mkdir(parents=True)
    return path


def _last(run_dir: Path) -> dict:
    return torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)


def _last_epoch_and_step(run_dir: Path) -> tuple[int, int] | None:
    """(epoch, global_step) of the run's last.ckpt; None when it has none."""
    if not (run_dir / "checkpoints" / "last.ckpt").is_file():
        return None
    last = _last(run_dir)
    return last["epoch"], last["global_step"]


@pytest.fixture(scope="module")
def uninterrupted(project, tmp_path_factory) -> Path:
    return steering.uninterrupted_run(project, tmp_path_factory.mktemp("uninterrupted"), SETTINGS)


@pytest.fixture(scope="module", params=["run", "rerun"])
def killed_twice(request, project, uninterrupted, tmp_path_factory) -> tuple[Path, list[dict]]:
    """A run (or a rerun of the uninterrupted run's operative config, from another directory) killed with
    SIGKILL in its third epoch, resumed from a second directory and killed again in its fourth, then
    resumed from a third directory to the end. Returns the run directory and what each stage left."""
    folder = tmp_path_factory.mktemp(f"killed-{request.param}")
    if request.param == "run":
        args = steering.classifier_args(project, folder / "runs", SETTINGS)
    else:
        args = [f"--gin_file={uninterrupted / 'operative_config.gin'}", f"--root_dir={folder / 'runs'}"]
    stages = []
    first = Held(args, _fresh(folder / "cwd-0"), step=2 * BATCHES_PER_EPOCH + 1)  # epoch 2's first step
    first.kill()
    (run_dir,) = run_dirs(folder / "runs")
    stages.append({"status": read_record(run_dir)["status"], "last": _last_epoch_and_step(run_dir)})
    second = Held([f"--resume={run_dir}"], _fresh(folder / "cwd-1"), step=BATCHES_PER_EPOCH + 1)  # epoch 3's first
    second.kill()
    stages.append({"status": read_record(run_dir)["status"], "last": _last_epoch_and_step(run_dir),
                   "console": second.console.read_text()})
    result = ginlight_train(f"--resume={run_dir}", cwd=_fresh(folder / "cwd-2"))
    stages.append({"returncode": result.returncode, "stderr": result.stderr})
    return run_dir, stages


def test_a_killed_run_is_left_running_with_the_last_epoch_ends_checkpoint(killed_twice):
    _, (first, second, _) = killed_twice
    assert first["status"] == second["status"] == "running"  # nothing could record a kill
    assert first["last"] == (1, 2 * BATCHES_PER_EPOCH)
    # The first resumption went on from there: its last.ckpt is its own latest epoch end, not the one it started from.
    assert second["last"] == (2, 3 * BATCHES_PER_EPOCH), second["console"]


def test_resumed_twice_from_other_directories_it_ends_as_the_uninterrupted_run(killed_twice, uninterrupted):
    run_dir, (*_, final) = killed_twice
    assert final["returncode"] == 0, final["stderr"][-3000:]
    record = read_record(run_dir)
    assert record["status"] == "completed" and record["error"] is None
    assert [r["from_checkpoint"] for r in record["resumptions"]] == [str(run_dir / "checkpoints" / "last.ckpt")] * 2
    assert run_dirs(run_dir.parent.parent) == [run_dir]  # resumed in place, no new directory
    # Files, every checkpoint tensor by tensor (weights, optimizer, loops, random states), config, record.
    assert_same_outcome(uninterrupted, run_dir, ignore_record=["resumptions"])


def test_after_the_resumptions_last_ckpt_is_the_final_epoch(killed_twice, uninterrupted):
    run_dir, _ = killed_twice
    assert _last_epoch_and_step(run_dir) == (EPOCHS - 1, FINAL_STEP)
    assert same_weights(_last(uninterrupted)["state_dict"], _last(run_dir)["state_dict"]) == []


LOAD_SYSTEM = """
import json, sys, torch, ginlight
system = ginlight.load_system(sys.argv[1], trust=["steered"])
print(json.dumps({key: value.tolist() for key, value in system.state_dict().items()}))
"""


def test_load_system_of_the_resumed_run_gives_the_final_weights(killed_twice, uninterrupted, tmp_path):
    """In a fresh process from another directory: the run's own path lines make its --project importable, once
    trusted."""
    run_dir, _ = killed_twice
    result = subprocess.run([sys.executable, "-c", LOAD_SYSTEM, str(run_dir)], cwd=tmp_path, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    loaded = {key: torch.tensor(value) for key, value in json.loads(result.stdout.splitlines()[-1]).items()}
    final = _last(uninterrupted)["state_dict"]
    assert same_weights({key: value.to(loaded[key].dtype) for key, value in final.items()}, loaded) == []
    assert same_weights(final, {key: value.to(final[key].dtype) for key, value in loaded.items()}) == []


def test_a_run_killed_before_its_first_checkpoint_resumes_from_the_start(project, uninterrupted, tmp_path):
    """docs/reproducibility.md: with no last.ckpt yet, --resume trains from the beginning, to the same run."""
    held = Held(steering.classifier_args(project, tmp_path / "runs", SETTINGS), _fresh(tmp_path / "cwd-0"),
                step=2)  # epoch 0
    held.kill()
    (run_dir,) = run_dirs(tmp_path / "runs")
    assert not (run_dir / "checkpoints" / "last.ckpt").exists()
    result = ginlight_train(f"--resume={run_dir}", cwd=_fresh(tmp_path / "cwd-1"))
    assert result.returncode == 0, result.stderr[-3000:]
    assert [r["from_checkpoint"] for r in read_record(run_dir)["resumptions"]] == [None]
    assert_same_outcome(uninterrupted, run_dir, ignore_record=["resumptions"])


def test_a_failed_run_resumes_from_its_last_checkpoint_to_completion(project, tmp_path):
    """docs/reproducibility.md: --resume continues a failed run too."""
    result = ginlight_train(*steering.classifier_args(project, tmp_path / "runs", SETTINGS), cwd=tmp_path,
                            env={"STOP_AT_STEP": str(2 * BATCHES_PER_EPOCH + 2)})  # in epoch 2
    assert result.returncode == 1, result.stderr[-3000:]
    (run_dir,) = run_dirs(tmp_path / "runs")
    record = read_record(run_dir)
    assert record["status"] == "failed" and "stopping at step 8, as asked" in record["error"]
    result = ginlight_train(f"--resume={run_dir}", cwd=_fresh(tmp_path / "elsewhere"))
    assert result.returncode == 0, result.stderr[-3000:]
    record = read_record(run_dir)
    assert record["status"] == "completed" and record["error"] is None
    assert [r["from_checkpoint"] for r in record["resumptions"]] == [str(run_dir / "checkpoints" / "last.ckpt")]
    assert _last_epoch_and_step(run_dir) == (EPOCHS - 1, FINAL_STEP)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_signal_saves_a_checkpoint_and_leaves_the_run_interrupted_and_resumable(signum, project, tmp_path):
    held_step = BATCHES_PER_EPOCH + 2  # mid second epoch
    held = Held(steering.classifier_args(project, tmp_path / "runs", SETTINGS), _fresh(tmp_path / "cwd"),
                step=held_step)
    held.process.send_signal(signum)
    held.marker.unlink()
    assert held.process.wait(timeout=300) == 1
    (run_dir,) = run_dirs(tmp_path / "runs")
    console = held.console.read_text()
    assert "ginlight-train: interrupted" in console and f"--resume={run_dir}" in console
    record = read_record(run_dir)
    assert record["status"] == "interrupted" and record["error"] is None
    # Both let the held step finish, and save there: SIGINT stops as SIGTERM does.
    assert _last(run_dir)["global_step"] == held_step
    assert record["resume_point"] == "the step it stopped at"

    result = ginlight_train(f"--resume={run_dir}", cwd=_fresh(tmp_path / "elsewhere"))
    assert result.returncode == 0, result.stderr[-3000:]
    assert "resuming from a checkpoint that ended before the epoch ended" not in result.stderr  # its place is saved
    assert read_record(run_dir)["status"] == "completed"
    assert _last(run_dir)["global_step"] == FINAL_STEP
    assert len(read_record(run_dir)["resumptions"]) == 1


@pytest.mark.parametrize("monitor", ["'val/accuracy'", "None"], ids=["monitored", "unmonitored"])
def test_last_checkpoint_holds_every_epoch_end(monitor, project, tmp_path):
    """What a killed run resumes from, whether or not ModelCheckpoint watches a metric. (In this process:
    the probe reads last.ckpt from inside the run.)"""
    probe = ["System.model = @steered.LastCheckpointProbe()",
             "steered.LastCheckpointProbe.module = @ginlight.models.ConvNet()",
             f"steered.LastCheckpointProbe.batches_per_epoch = {BATCHES_PER_EPOCH}",
             f"ModelCheckpoint.monitor = {monitor}"]
    ginlight.train([CONFIGS / "classifier.gin"], [*SHORT, "MAX_EPOCHS=3", *probe], projects=[str(project)],
                   root_dir=tmp_path)
    seen = sys.modules["steered"].LastCheckpointProbe.seen
    assert seen[-3:] == [None, BATCHES_PER_EPOCH, 2 * BATCHES_PER_EPOCH]


def test_resuming_a_completed_run_says_so_and_changes_nothing(uninterrupted, tmp_path):
    before = {path: path.read_bytes() for path in uninterrupted.rglob("*") if path.is_file()}
    result = ginlight_train(f"--resume={uninterrupted}", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "already completed; there is nothing to resume" in result.stdout + result.stderr
    assert {path: path.read_bytes() for path in uninterrupted.rglob("*") if path.is_file()} == before
    assert "checkpoints/last.ckpt" in files(uninterrupted)


def test_resume_refuses_what_is_not_a_training_run(tmp_path):
    with pytest.raises(ginlight.ConfigError, match="is not a run directory"):
        resume(tmp_path)
    (tmp_path / "operative_config.gin").write_text("")
    (tmp_path / "run.json").write_text(json.dumps({"status": "completed", "stage": "test"}))
    with pytest.raises(ginlight.ConfigError, match="only training runs can be resumed"):
        resume(tmp_path)


def test_resume_explains_a_checkpoint_cut_short_by_a_kill(tmp_path):
    (tmp_path / "operative_config.gin").write_text("")
    (tmp_path / "run.json").write_text(json.dumps({"status": "running", "stage": "fit"}))
    (tmp_path / "checkpoints").mkdir()
    buffer = tmp_path / "whole.ckpt"
    torch.save({"state_dict": {"w": torch.zeros(1000)}}, buffer)
    (tmp_path / "checkpoints" / "last.ckpt").write_bytes(buffer.read_bytes()[:1000])
    with pytest.raises(ginlight.ConfigError, match="cannot read checkpoint") as error:
        resume(tmp_path)
    assert "delete it to resume from the start" in error.value.hint
