"""Checkpoints that carry their own config: reading one safely, its config back as a gin file, its weights' hash.

Every checkpoint a ginlight run writes holds the run's operative config under
``checkpoint["ginlight"]`` (:class:`ginlight.callbacks.OperativeConfigWriter`), so a
checkpoint alone is enough to rebuild its System (:func:`ginlight.load_system`). It
also holds the random number generators' states
(:class:`ginlight.callbacks.RandomStateInCheckpoint`), so that training resumed
from an epoch-end checkpoint draws the same shuffles and dropout masks as a run
that was never stopped.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import pickle
import tempfile
from pathlib import Path
from typing import Any, Iterator, Mapping

import torch

from ginlight import rundir
from ginlight.errors import ConfigError

__all__ = ["read_checkpoint", "has_stored_config", "stored_config_file", "stored_config_origin", "checkpoint_of",
           "weights_hash"]

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
def stored_config_file(checkpoint_path: str | os.PathLike, read: dict[str, Any] | None = None) -> Iterator[Path]:
    """The config stored in a checkpoint, as a temporary gin file for as long as the block runs.

    ``read`` is the checkpoint when the caller has read it already (it is read
    here otherwise). The file is named after the checkpoint's run, so a run
    started from it gets that name. A :class:`ConfigError` located in the file
    names the checkpoint instead.
    """
    checkpoint_path = Path(checkpoint_path)
    text = _stored_config(read if read is not None else read_checkpoint(checkpoint_path))
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
            location = exc.location.replace(str(path), stored_config_origin(checkpoint_path), 1)
            raise ConfigError(exc.message, location, exc.hint) from None


def stored_config_origin(checkpoint_path: str | os.PathLike) -> str:
    """How messages name the config stored in a checkpoint, where they would name a gin file."""
    return f"the config stored in {checkpoint_path}"


def weights_hash(state_dict: Mapping[str, Any]) -> str:
    """The SHA-256 of a ``state_dict``, as hex.

    Entries are taken in sorted key order; each contributes its key, then for a
    tensor its dtype, its shape and its elements' raw bytes in row-major order
    (for anything else, its ``repr``). Equal hashes mean bit-identical weights.
    """
    digest = hashlib.sha256()
    for key in sorted(state_dict):
        value = state_dict[key]
        digest.update(key.encode() + b"\0")
        if isinstance(value, torch.Tensor):
            tensor = value.detach().cpu().contiguous()
            digest.update(f"{tensor.dtype}{tuple(tensor.shape)}\0".encode())
            digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
        else:
            digest.update(repr(value).encode() + b"\0")
    return digest.hexdigest()
