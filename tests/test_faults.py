"""Faults around a run: a disk that refuses writes, file modes, checkpoints that carry code."""

from __future__ import annotations

import os
import pickle
import resource
import signal
import stat
import subprocess

import pytest
import torch
from conftest import CONFIGS, SHORT, bindings, command, ginlight_train, run_dirs

import ginlight

pytestmark = pytest.mark.slow


def test_a_disk_that_refuses_writes_fails_before_training(tmp_path):
    def files_may_not_grow():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # make the write fail with EFBIG instead of killing us
        resource.setrlimit(resource.RLIMIT_FSIZE, (64, 64))  # room for tempfile's probe, not a config

    result = subprocess.run(
        command("ginlight-train", f"--gin_file={CONFIGS / 'classifier.gin'}", f"--root_dir={tmp_path}",
                *bindings(*SHORT)),
        cwd=tmp_path, capture_output=True, text=True, timeout=300, preexec_fn=files_may_not_grow,
    )
    assert result.returncode == 2, result.stderr
    assert "cannot write to the run directory" in result.stderr
    assert "Traceback" not in result.stderr
    assert run_dirs(tmp_path) == [] and not list(tmp_path.glob("*/*"))


def test_run_directories_follow_the_users_umask(tmp_path):
    result = subprocess.run(
        command("ginlight-train", f"--gin_file={CONFIGS / 'classifier.gin'}", f"--root_dir={tmp_path / 'runs'}",
                *bindings("MAX_EPOCHS=1", *SHORT)),
        cwd=tmp_path, capture_output=True, text=True, timeout=300, preexec_fn=lambda: os.umask(0o027),
    )
    assert result.returncode == 0, result.stderr
    (run_dir,) = run_dirs(tmp_path / "runs")
    assert stat.S_IMODE(run_dir.stat().st_mode) == 0o750
    for name in ("config.gin", "operative_config.gin", "run.json", "train.log", "checkpoints/last.ckpt"):
        assert stat.S_IMODE((run_dir / name).stat().st_mode) == 0o640, name


class Payload:
    """What a malicious checkpoint smuggles in: unpickling it runs code."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_a_checkpoint_that_would_run_code_is_refused(tmp_path):
    # A checkpoint to plant the payload in, trained in this process; the refusal is the command's.
    run_dir = ginlight.train([CONFIGS / "classifier.gin"], ["MAX_EPOCHS=1", *SHORT], root_dir=tmp_path / "runs").run_dir
    checkpoint = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)
    marker = tmp_path / "code-ran"
    checkpoint["callbacks"]["payload"] = Payload(str(marker))
    torch.save(checkpoint, tmp_path / "evil.ckpt", pickle_protocol=pickle.HIGHEST_PROTOCOL)

    result = ginlight_train(f"--gin_file={CONFIGS / 'classifier.gin'}", "--stage=test",
                            f"--ckpt_path={tmp_path / 'evil.ckpt'}", f"--root_dir={tmp_path / 'runs'}",
                            *bindings(*SHORT))
    # A configuration error (exit 2), found before the run starts: one message, no run directory.
    assert result.returncode == 2, result.stderr
    assert f"cannot read checkpoint '{tmp_path / 'evil.ckpt'}' with weights_only=True" in result.stderr
    assert result.stderr.count("ginlight-train: error:") == 1 and "Traceback" not in result.stderr
    assert not marker.exists()
    assert run_dirs(tmp_path / "runs") == [run_dir]
