"""Fixtures shared by the tests: the real command in a subprocess, and short runs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
CONFIGS = REPO / "configs"
# A couple of batches per epoch, no progress bar: fast and quiet.
SHORT = [
    "Trainer.limit_train_batches=3",
    "Trainer.limit_val_batches=2",
    "Trainer.limit_test_batches=2",
    "Trainer.limit_predict_batches=2",
    "Trainer.enable_progress_bar=False",
    "Trainer.enable_model_summary=False",
]


def ginlight_train(*args: str, cwd: Path | str = REPO, timeout: float = 300, env: dict | None = None):
    """Runs the real ``ginlight-train`` command; returns the CompletedProcess."""
    return subprocess.run(
        [sys.executable, "-m", "ginlight.cli.train", *args],
        cwd=cwd, capture_output=True, text=True, timeout=timeout,
        env={**os.environ, **(env or {})},
    )


def bindings(*values: str) -> list[str]:
    """``--gin_bindings`` flags for ``values``."""
    return [f"--gin_bindings={value}" for value in values]


def read_record(run_dir: Path) -> dict:
    return json.loads((Path(run_dir) / "run.json").read_text())


def run_dirs(root: Path) -> list[Path]:
    """The run directories under a --root_dir, oldest first."""
    return sorted(p.parent for p in Path(root).glob("*/*/run.json"))


@pytest.fixture
def short() -> list[str]:
    return list(SHORT)


@pytest.fixture
def torch_flags():
    """PyTorch's own deterministic flags during the test, and the process-wide flags as they were after it."""
    saved = (torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled(),
             torch.utils.deterministic.fill_uninitialized_memory)
    torch.use_deterministic_algorithms(False)
    torch.utils.deterministic.fill_uninitialized_memory = True
    yield
    torch.use_deterministic_algorithms(saved[0], warn_only=saved[1])
    torch.utils.deterministic.fill_uninitialized_memory = saved[2]
