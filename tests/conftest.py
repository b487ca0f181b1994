"""Fixtures shared by the tests: the real command in a subprocess, and short runs."""

from __future__ import annotations

import functools
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import gin
import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
CONFIGS = REPO / "configs"
#: The shipped configs: each names its own command in its header, `ginlight-train --gin_file=configs/<file>`
#: (the others are fragments they include).
SHIPPED = sorted(path for path in CONFIGS.glob("*.gin")
                 if re.search(rf"ginlight-train --gin_file=configs/{re.escape(path.name)}\b", path.read_text()))
# A couple of batches per epoch, no progress bar: fast and quiet.
SHORT = [
    "Trainer.limit_train_batches=3",
    "Trainer.limit_val_batches=2",
    "Trainer.limit_test_batches=2",
    "Trainer.limit_predict_batches=2",
    "Trainer.enable_progress_bar=False",
    "Trainer.enable_model_summary=False",
]


#: The venv's console scripts: the commands a user runs. Unlike ``python -m``, they do not put the
#: working directory on ``sys.path``, so a test through them sees what a user sees.
SCRIPTS = Path(sys.executable).parent
#: Makes the repository's examples/ (configs/gan.gin imports examples.gan) importable from any directory.
EXAMPLES_PROJECT = f"--project={REPO / 'examples'}"


def command(name: str, *args: str) -> list[str]:
    """The argv of the installed console script ``name`` (ginlight-train, ginlight-sweep, torchrun, ...)."""
    return [str(SCRIPTS / name), *args]


def run_command(name: str, *args: str, cwd: Path | str | None = None, timeout: float = 300,
                env: dict | None = None) -> subprocess.CompletedProcess:
    """Runs the installed console script ``name`` in ``cwd``: by default an empty folder outside the
    repository, removed afterwards (pass ``cwd`` where the test reads files the command writes
    relative to it, or when it is about the repository)."""
    with tempfile.TemporaryDirectory(prefix="ginlight-cwd-") as default_cwd:
        return subprocess.run(
            command(name, *args), cwd=default_cwd if cwd is None else cwd, capture_output=True, text=True,
            timeout=timeout, env={**os.environ, **(env or {})},
        )


#: ``ginlight_train(*args, cwd=None, timeout=300, env=None)`` and its siblings: :func:`run_command` of each command.
ginlight_train = functools.partial(run_command, "ginlight-train")
ginlight_sweep = functools.partial(run_command, "ginlight-sweep")
ginlight_diff = functools.partial(run_command, "ginlight-diff")


def bindings(*values: str) -> list[str]:
    """``--gin_bindings`` flags for ``values``."""
    return [f"--gin_bindings={value}" for value in values]


def write(path: Path, text: str) -> Path:
    """``text`` written to ``path``, its folders made: a test's gin file or module."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def read_record(run_dir: Path) -> dict:
    return json.loads((Path(run_dir) / "run.json").read_text())


def run_dirs(root: Path) -> list[Path]:
    """The run directories under a --root_dir, oldest first."""
    return sorted(p.parent for p in Path(root).glob("*/*/run.json"))


@pytest.fixture
def clean_gin():
    """gin's config cleared after the test, for tests that parse in-process."""
    yield
    gin.clear_config()


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


#: The slow tier's longest modules, longest first (seconds for the module alone, on this machine under load:
#: `pytest -m slow --durations=0 tests/<module>`; CI prints its 25 slowest tests). CI gives each of its two
#: workers one module at a time (`-n 2 --dist loadscope`, .ci/run) in the order of the collection, with
#: --no-loadscope-reorder: xdist's own order, most tests first, gives pruning (8 tests), distributed (7) and
#: SLURM (5) 14th, 16th and 20th of 32 modules, so that one worker is still on them when the other is done.
LONGEST_FIRST = [
    "test_pruning.py",  # 377 s
    "test_distributed.py",  # 358 s
    "test_trackers.py",  # 290 s
    "test_resume.py",  # 283 s
    "test_slurm.py",  # 249 s
    "test_sweep.py",  # 229 s
    "test_any_library.py",  # 211 s
    "test_benchmarks.py",  # 168 s
    "test_reproduce.py",  # 153 s
    "test_train_command.py",  # 148 s
]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The modules of LONGEST_FIRST first, in its order, so that the last modules a worker is given are short."""
    def rank(item: pytest.Item) -> int:
        name = item.path.name
        return LONGEST_FIRST.index(name) if name in LONGEST_FIRST else len(LONGEST_FIRST)

    items.sort(key=rank)  # stable: each module's tests keep their order
