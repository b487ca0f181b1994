"""Checkpoints that carry their own config: reading it back, and rebuilding a System from it.

Every checkpoint a ginlight run writes holds the run's operative config under
``checkpoint["ginlight"]`` (:class:`ginlight.callbacks.OperativeConfigWriter`), so a
checkpoint alone is enough to rebuild its System. It also holds the random number
generators' states (:class:`RandomStateInCheckpoint`), so that training resumed
from an epoch-end checkpoint draws the same shuffles and dropout masks as a run
that was never stopped.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import random
import tempfile
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import torch
from lightning import Callback, LightningModule

from ginlight import config, rundir
from ginlight.errors import ConfigError

__all__ = ["load_system", "read_checkpoint", "has_stored_config", "stored_config_file", "checkpoint_of",
           "RandomStateInCheckpoint"]

def read_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """Loads a checkpoint onto the CPU with ``weights_only=True``: tensors and plain data only, no code.

    The file is memory-mapped, so reading only its config costs little even for a large model.
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"checkpoint '{path}' not found.", hint="Check the path.")
    try:
        return torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except pickle.UnpicklingError:
        raise ConfigError(
            f"cannot read checkpoint '{path}' with weights_only=True: it holds objects other than tensors and "
            "plain data.",
            hint="Unpickling those could run code. Load it yourself with torch.load(weights_only=False) only if "
                 "you trust where it came from.",
        ) from None
    except (RuntimeError, EOFError, OSError) as exc:
        raise ConfigError(
            f"cannot read checkpoint '{path}': {str(exc).splitlines()[0]}",
            hint="A checkpoint cut short when its process was killed cannot be read: replace it with an earlier "
                 "one (or, for last.ckpt, delete it to resume from the start).",
        ) from None


def has_stored_config(path: str | os.PathLike) -> bool:
    """Whether the checkpoint at ``path`` holds a ginlight config."""
    return _stored_config(read_checkpoint(path)) is not None


def _stored_config(checkpoint: dict[str, Any]) -> str | None:
    entry = checkpoint.get("ginlight")
    text = entry.get("operative_config") if isinstance(entry, dict) else None
    return text if isinstance(text, str) else None


def checkpoint_of(path: str | os.PathLike) -> Path:
    """``path`` if it is a checkpoint file; for a run directory, its best checkpoint, else ``checkpoints/last.ckpt``."""
    path = Path(path)
    if path.is_file():
        return path
    if not path.is_dir():
        raise ConfigError(f"checkpoint '{path}' not found.", hint="Pass a .ckpt file or a run directory.")
    return rundir.RunDir.open(path).checkpoint()


def run_name(checkpoint_path: Path) -> str:
    """The name of the run that wrote ``checkpoint_path`` when it lies in a run directory, else the file's stem."""
    run = rundir.RunDir.holding(checkpoint_path)
    return run.name if run is not None else checkpoint_path.stem


@contextlib.contextmanager
def stored_config_file(checkpoint_path: str | os.PathLike) -> Iterator[Path]:
    """The config stored in a checkpoint, as a temporary gin file for as long as the block runs.

    The file is named after the checkpoint's run, so a run started from it gets
    that name. A :class:`ConfigError` located in the file names the checkpoint instead.
    """
    checkpoint_path = Path(checkpoint_path)
    text = _stored_config(read_checkpoint(checkpoint_path))
    if text is None:
        raise ConfigError(
            f"checkpoint '{checkpoint_path}' holds no ginlight config; it was not written by a ginlight run.",
            hint="Pass the config it was trained with: --gin_file=... (or its run's operative_config.gin).",
        )
    with tempfile.TemporaryDirectory(prefix="ginlight-config-from-checkpoint-") as folder:
        path = Path(folder) / f"{run_name(checkpoint_path)}.gin"
        path.write_text(text)
        try:
            yield path
        except ConfigError as exc:
            if not (exc.location or "").startswith(str(path)):
                raise
            location = exc.location.replace(str(path), f"the config stored in {checkpoint_path}", 1)
            raise ConfigError(exc.message, location, exc.hint) from None


def load_system(path: str | os.PathLike) -> LightningModule:
    """Rebuilds the System saved in a checkpoint, with its weights, from the checkpoint alone.

    ``path`` is a ``.ckpt`` file written by a ginlight run, or a run directory
    (its best checkpoint when ``ModelCheckpoint.monitor`` was bound, else
    ``checkpoints/last.ckpt``). The config stored in the checkpoint is parsed, so
    the modules it imports must be importable; no ``.gin`` file is read. Like
    Lightning's ``load_from_checkpoint``, the System is returned on the CPU in
    training mode: call ``.eval()`` for inference.
    """
    from ginlight.experiment import build_experiment

    checkpoint_path = checkpoint_of(path)
    checkpoint = read_checkpoint(checkpoint_path)
    with stored_config_file(checkpoint_path) as gin_file:
        config.parse([gin_file])
        system = build_experiment().system
    system.on_load_checkpoint(checkpoint)
    system.load_state_dict(checkpoint["state_dict"])
    return system


class RandomStateInCheckpoint(Callback):
    """Saves the random number generators' states in each checkpoint and restores them on resume.

    Lightning restores weights, optimizer, schedulers and loop counters, but not
    the generators, and an unseeded ``DataLoader(shuffle=True)`` draws each
    epoch's order from torch's global one. Stored as tensors and plain Python
    values so the checkpoint still loads with ``weights_only=True``.
    """

    def state_dict(self) -> dict[str, Any]:
        kind, keys, position, has_gauss, cached = np.random.get_state()
        version, python_state, gauss = random.getstate()
        return {
            "torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else [],
            "numpy": [kind, keys.tolist(), position, has_gauss, cached],
            "python": [version, list(python_state), gauss],
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        torch.set_rng_state(state["torch"])
        if state["cuda"] and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["cuda"])
        kind, keys, position, has_gauss, cached = state["numpy"]
        np.random.set_state((kind, np.array(keys, dtype=np.uint32), position, has_gauss, cached))
        version, python_state, gauss = state["python"]
        random.setstate((version, tuple(python_state), gauss))
