"""A model wrapper that tests steer through the environment: hold a run at a known training step, or
stop it there, so a test knows exactly where a run is when it signals, kills or requeues it.

:data:`MODULE` is written into a ``--project`` folder as ``steered.py`` (:func:`write_project`),
and :data:`WRAP` wraps the classifier's model in it. Without the variables below it is the wrapped
model, so a steered run and an unsteered one use the same config. Steps are counted per process.

- ``HOLD_AT_STEP=N`` with ``HOLD_MARKER=path``: at training step N the run creates the marker and
  blocks while it exists. Not in a requeued SLURM job (``SLURM_RESTART_COUNT`` set), so that a
  requeued job runs on.
- ``STOP_AT_STEP=N``: step N raises ``STOP_WITH`` (``RuntimeError`` unless ``KeyboardInterrupt``),
  failing or interrupting the run.
- ``STEER_RUN=name``: only the run whose directory has that name is steered (a sweep's
  ``trial-001``); every run is, without it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Sequence

from conftest import CONFIGS, bindings, command

MODULE = '''
import os, time
from pathlib import Path

import gin
import torch

_STOPS = {"RuntimeError": RuntimeError, "KeyboardInterrupt": KeyboardInterrupt}


@gin.configurable
class Steered(torch.nn.Module):
    def __init__(self, module):
        super().__init__()
        self.module = module
        self.steps = 0

    def forward(self, x):
        if self.training:
            self.steps += 1
            env = os.environ
            if env.get("STEER_RUN") in (None, Path(env.get("GINLIGHT_RUN_DIR", "")).name):
                if str(self.steps) == env.get("STOP_AT_STEP"):
                    raise _STOPS[env.get("STOP_WITH", "RuntimeError")](f"stopping at step {self.steps}, as asked")
                if str(self.steps) == env.get("HOLD_AT_STEP") and "SLURM_RESTART_COUNT" not in env:
                    marker = Path(env["HOLD_MARKER"])
                    marker.touch()
                    while marker.exists():
                        time.sleep(0.02)
        return self.module(x)


@gin.configurable
class LastCheckpointProbe(torch.nn.Module):
    # The global step held by the run's checkpoints/last.ckpt at each epoch's first training step.
    seen = []

    def __init__(self, module, batches_per_epoch):
        super().__init__()
        self.module = module
        self.batches_per_epoch = batches_per_epoch
        self.steps = 0

    def forward(self, x):
        if self.training:
            if self.steps % self.batches_per_epoch == 0:
                last = Path(os.environ["GINLIGHT_RUN_DIR"]) / "checkpoints" / "last.ckpt"
                self.seen.append(torch.load(last, weights_only=True)["global_step"] if last.exists() else None)
            self.steps += 1
        return self.module(x)
'''
#: The bindings that wrap the classifier's model in :class:`Steered`.
WRAP = ["System.model = @steered.Steered()", "steered.Steered.module = @ginlight.models.ConvNet()"]
#: :data:`WRAP` as a gin file's text.
WRAP_CONFIG = "".join(f"{binding}\n" for binding in WRAP)


def write_project(folder: Path) -> Path:
    """``folder`` with ``steered.py`` (:data:`MODULE`) and ``steered.gin`` (:data:`WRAP_CONFIG`) in it."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "steered.py").write_text(MODULE)
    (folder / "steered.gin").write_text(WRAP_CONFIG)
    return folder


def hold_env(step: int, marker: Path, run: str | None = None) -> dict[str, str]:
    """The environment that holds a run (only the one named ``run``, if given) at training step ``step``."""
    return {"HOLD_AT_STEP": str(step), "HOLD_MARKER": str(marker), **({"STEER_RUN": run} if run else {})}



def classifier_args(project: Path, root: Path, settings: Sequence[str]) -> list[str]:
    """``ginlight-train``'s arguments for the classifier with its model steered, from the ``--project`` folder
    ``project`` (:func:`write_project`), under ``--root_dir=root``, with the bindings ``settings``."""
    return [f"--root_dir={root}", f"--project={project}", f"--gin_file={CONFIGS / 'classifier.gin'}",
            f"--gin_file={project / 'steered.gin'}", *bindings(*settings)]


def uninterrupted_run(project: Path, root: Path, settings: Sequence[str]) -> Path:
    """The run directory of the steered classifier (:func:`classifier_args`) trained unheld under ``root``:
    the run a stopped and resumed one must match."""
    result = subprocess.run(command("ginlight-train", *classifier_args(project, root / "runs", settings)), cwd=root,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    (run_dir,) = sorted(p.parent for p in (root / "runs").glob("*/*/run.json"))
    return run_dir


def ctrl_c_reaches_it() -> None:
    """For ``preexec_fn``: SIGINT as a terminal leaves it, so that Ctrl-C reaches the process. A shell starts its
    background commands (CI's, for one) with SIGINT ignored, every process after inherits that, and a Python
    started so never raises ``KeyboardInterrupt``."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


class Held:
    """``ginlight-train args`` in the background from ``cwd``, held at its process's training step ``step``;
    ``env`` adds to the tests' environment."""

    def __init__(self, args: list[str], cwd: Path, step: int, env: dict[str, str] | None = None):
        self.marker = cwd / "held"
        self.console = cwd / "console.txt"
        self.process = subprocess.Popen(
            command("ginlight-train", *args), cwd=cwd, stdout=open(self.console, "w"), stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {}), **hold_env(step, self.marker)},
            preexec_fn=ctrl_c_reaches_it,
        )
        deadline = time.monotonic() + 300
        while not self.marker.exists():  # polls for the marker the run writes; no timing is assumed
            assert self.process.poll() is None, f"the run ended before the held step:\n{self.console.read_text()}"
            assert time.monotonic() < deadline, "the run never reached the held step"
            time.sleep(0.05)

    def kill(self) -> None:
        """SIGKILL, which nothing can record."""
        self.process.kill()
        self.process.wait()
