"""torch's intra-op thread count is part of a run's record: --reproduce and --resume run with it, or say they cannot."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import steering
from conftest import CONFIGS, SHORT, bindings, ginlight_train, read_record, run_dirs
from outcomes import assert_same_outcome
from steering import Held

import ginlight
from ginlight.experiment import resume

pytestmark = pytest.mark.slow

BATCHES_PER_EPOCH = 3  # Trainer.limit_train_batches in SHORT
# Every step logged: the step metric is then the last step's in both runs.
SETTINGS = [*SHORT, "MAX_EPOCHS=2", "ModelCheckpoint.monitor = None", "Trainer.log_every_n_steps = 1"]
ONE, TWO = {"OMP_NUM_THREADS": "1"}, {"OMP_NUM_THREADS": "2"}


def _fresh(path: Path) -> Path:
    path.mkdir(parents=True)
    return path


def test_reproduce_reruns_with_the_thread_count_the_run_recorded(tmp_path):
    args = [f"--gin_file={CONFIGS / 'classifier.gin'}", *bindings(*SETTINGS)]
    original = ginlight_train(*args, f"--root_dir={tmp_path / 'runs'}", env=ONE)
    assert original.returncode == 0, original.stderr[-3000:]
    (run_dir,) = run_dirs(tmp_path / "runs")
    assert read_record(run_dir)["torch_threads"] == 1

    reproduced = ginlight_train(f"--reproduce={run_dir}", f"--root_dir={tmp_path / 'reruns'}", env=TWO)
    console = reproduced.stdout + reproduced.stderr
    assert reproduced.returncode == 0, console[-3000:]
    assert "with 1 intra-op threads, as it recorded (this process had 2)" in console
    assert "Reproduced exactly" in console
    (rerun,) = run_dirs(tmp_path / "reruns")
    assert read_record(rerun)["torch_threads"] == 1

    # A plain rerun of the operative config records the count it ran with.
    plain = ginlight_train(f"--gin_file={run_dir / 'operative_config.gin'}", f"--root_dir={tmp_path / 'plain'}", env=TWO)
    assert plain.returncode == 0, plain.stderr[-3000:]
    (plain_dir,) = run_dirs(tmp_path / "plain")
    assert read_record(plain_dir)["torch_threads"] == 2


def test_a_killed_run_resumed_under_another_thread_count_runs_with_its_own_and_ends_as_uninterrupted(tmp_path):
    project = steering.write_project(tmp_path / "project")
    args = [f"--project={project}", f"--gin_file={CONFIGS / 'classifier.gin'}", f"--gin_file={project / 'steered.gin'}",
            *bindings(*SETTINGS)]
    uninterrupted = ginlight_train(*args, f"--root_dir={tmp_path / 'reference'}", env=ONE)
    assert uninterrupted.returncode == 0, uninterrupted.stderr[-3000:]
    (reference,) = run_dirs(tmp_path / "reference")
    Held([*args, f"--root_dir={tmp_path / 'runs'}"], _fresh(tmp_path / "cwd"), step=BATCHES_PER_EPOCH + 1, env=ONE).kill()
    (run_dir,) = run_dirs(tmp_path / "runs")
    assert read_record(run_dir)["torch_threads"] == 1

    resumed = ginlight_train(f"--resume={run_dir}", env=TWO)
    console = resumed.stdout + resumed.stderr
    assert resumed.returncode == 0, console[-3000:]
    assert f"Resuming {run_dir} with 1 intra-op threads, as it recorded (this process had 2)" in console
    assert_same_outcome(reference, run_dir, ignore_record=["resumptions"])


def test_a_run_that_recorded_no_thread_count_resumes_saying_it_cannot_use_the_runs(tmp_path):
    result = ginlight.train([CONFIGS / "classifier.gin"], ["MAX_EPOCHS=1", *SHORT], root_dir=tmp_path)
    record = json.loads((result.run_dir / "run.json").read_text())
    del record["torch_threads"]  # as ginlight wrote run.json before it recorded the count
    record["status"] = "interrupted"
    (result.run_dir / "run.json").write_text(json.dumps(record))
    with pytest.warns(UserWarning, match=r"records no thread count .* runs with this process's \d+ intra-op threads"):
        resumed = resume(result.run_dir)
    assert resumed.status == "completed"
