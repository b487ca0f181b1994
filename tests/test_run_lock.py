"""One writer per run: a running run holds its directory, a second process that would run it is refused, naming
the holder, and a killed holder blocks nothing."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import steering
from conftest import SHORT, command, ginlight_train, read_record, run_dirs
from outcomes import assert_same_outcome
from steering import Held

from ginlight import rundir
from ginlight.errors import ConfigError

pytestmark = pytest.mark.slow

BATCHES_PER_EPOCH = 3  # Trainer.limit_train_batches in SHORT
# Every step logged: the step metric is then the last step's in both runs.
SETTINGS = [*SHORT, "MAX_EPOCHS=3", "ModelCheckpoint.monitor = None", "Trainer.log_every_n_steps = 1"]
WAIT_S = 300

HOLDER = """
import sys, time
from ginlight import rundir
hold = rundir.RunDir(sys.argv[1]).hold()
print("holding", flush=True)
time.sleep(3600)
"""


def _fresh(path: Path) -> Path:
    path.mkdir(parents=True)
    return path


def _wait_until(condition, what: str) -> None:
    """Polls ``condition`` (a state a process reports) until it holds; no timing is assumed."""
    deadline = time.monotonic() + WAIT_S
    while not condition():
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        time.sleep(0.05)


def test_a_held_run_is_refused_naming_its_holder_and_a_killed_holders_hold_blocks_nothing(tmp_path):
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(tmp_path)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline() == "holding\n"
        with pytest.raises(ConfigError) as refused:
            rundir.RunDir(tmp_path).hold()
        message = str(refused.value)
        assert f"pid {holder.pid} on host {socket.gethostname()}, since 20" in message, message
        assert "run.lock" in message and "held by another process" in message
    finally:
        holder.kill()  # SIGKILL: nothing of the holder's runs, the kernel alone drops its lock
        holder.wait()
    with rundir.RunDir(tmp_path).hold():
        pass
    assert (tmp_path / rundir.LOCK).is_file()


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    return steering.write_project(tmp_path_factory.mktemp("project"))



def test_two_resumes_of_one_killed_run_started_together_one_continues_it_the_other_is_refused(project, tmp_path):
    uninterrupted = ginlight_train(*steering.classifier_args(project, tmp_path / "reference", SETTINGS),
                                   cwd=_fresh(tmp_path / "cwd-ref"))
    assert uninterrupted.returncode == 0, uninterrupted.stderr[-3000:]
    (reference,) = run_dirs(tmp_path / "reference")
    Held(steering.classifier_args(project, tmp_path / "runs", SETTINGS), _fresh(tmp_path / "cwd-0"),
         step=BATCHES_PER_EPOCH + 1).kill()
    (run_dir,) = run_dirs(tmp_path / "runs")

    # Both held at their first step, should they get that far: the one that holds the run waits there
    # until the other has been refused, whichever order they start in.
    markers = [tmp_path / f"held-{n}" for n in range(2)]
    resumes = [subprocess.Popen(command("ginlight-train", f"--resume={run_dir}"), cwd=_fresh(tmp_path / f"cwd-{n + 1}"),
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                env={**os.environ, **steering.hold_env(1, markers[n])}) for n in range(2)]
    try:
        _wait_until(lambda: any(m.exists() for m in markers) and any(p.poll() is not None for p in resumes),
                    "one resume to train and the other to end")
        (refused,) = [p for p in resumes if p.poll() is not None]
        (running,) = [p for p in resumes if p is not refused]
        marker = markers[resumes.index(running)]
        assert marker.exists()
        _, stderr = refused.communicate()
        assert refused.returncode == 2, stderr[-3000:]
        assert f"pid {running.pid} on host {socket.gethostname()}, since " in stderr, stderr[-3000:]
        marker.unlink()  # the holder trains on
        _, stderr = running.communicate(timeout=WAIT_S)
        assert running.returncode == 0, stderr[-3000:]
    finally:
        for process in resumes:
            if process.poll() is None:
                process.kill()
                process.wait()

    record = read_record(run_dir)
    assert record["status"] == "completed" and len(record["resumptions"]) == 1  # the refused one left no trace
    assert_same_outcome(reference, run_dir, ignore_record=["resumptions"])


def test_a_second_run_into_a_run_dir_in_use_is_refused_naming_the_holder_and_after_it_the_folder_is_not_reused(
        project, tmp_path):
    run_dir = tmp_path / "the-run"
    args = [f"--run_dir={run_dir}", *steering.classifier_args(project, tmp_path / "runs", SETTINGS)[1:]]
    held = Held(args, _fresh(tmp_path / "cwd-0"), step=1)
    try:
        second = ginlight_train(*args)
        assert second.returncode == 2
        assert f"pid {held.process.pid} on host {socket.gethostname()}" in second.stderr, second.stderr[-3000:]
    finally:
        held.kill()
    after = ginlight_train(*args)
    assert after.returncode == 2 and "is not empty; ginlight never reuses one" in after.stderr, after.stderr[-3000:]
    assert read_record(run_dir)["status"] == "running"  # the killed run's, untouched by either
