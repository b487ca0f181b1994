"""Checkpoints that carry their own config: writing and reading one safely, its config back as a gin file, its
weights' hash.

Every checkpoint a ginlight run writes holds the run's operative config under
``checkpoint["ginlight"]`` (:func:`ginlight.rundir.store_config`), so a
checkpoint alone is enough to rebuild its System (:func:`ginlight.load_system`). It
also holds the random number generators' states
(:class:`ginlight.callbacks.RandomStateInCheckpoint`), so that training resumed
from an epoch-end checkpoint draws the same shuffles and dropout masks as a run
that was never stopped.

Every checkpoint a run writes goes through :class:`CrashSafeCheckpointIO`, so a kill
at any instant leaves either the previous file or the new one, whole.
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
from lightning.pytorch.plugins.io import TorchCheckpointIO

from ginlight import rundir
from ginlight.errors import ConfigError

__all__ = ["CrashSafeCheckpointIO", "PARTIAL_SUFFIX", "remove_partial_files", "read_checkpoint", "has_stored_config",
           "stored_config_file", "stored_config_origin", "checkpoint_of", "weights_hash"]

#: The ending of a checkpoint still being written (``.last.ckpt.<pid>.partial``), beside the file it replaces.
PARTIAL_SUFFIX = ".partial"


class CrashSafeCheckpointIO(TorchCheckpointIO):
    """Lightning's checkpoint I/O, writing each file so that a kill at any instant leaves a readable one.

    Lightning's own writes through an fsspec transaction, whose temporary file is in
    TMPDIR: on a node-local TMPDIR the commit is a copy into the run directory, so the
    checkpoint is half-written while it runs (and a kill leaves the temporary file behind,
    in memory when TMPDIR is a tmpfs). This one writes a temporary file in the
    checkpoint's own folder, fsyncs it, renames it over the checkpoint (``os.replace``,
    atomic on one filesystem) and fsyncs the folder, so the previous checkpoint stays
    whole until the new one is, and the rename survives a lost machine. A kill leaves at
    most a ``*.partial`` file, which :func:`remove_partial_files` removes at the next start.
    """

    def save_checkpoint(self, checkpoint: dict[str, Any], path: str | os.PathLike,
                        storage_options: Any | None = None) -> None:
        if storage_options is not None:
            return super().save_checkpoint(checkpoint, path, storage_options)  # Lightning's message for it
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f".{path.name}.{os.getpid()}{PARTIAL_SUFFIX}")
        try:
            with open(partial, "wb") as file:
                torch.save(checkpoint, file)
                file.flush()
                os.fsync(file.fileno())
            os.replace(partial, path)
        finally:
            partial.unlink(missing_ok=True)
        folder = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(folder)
        finally:
            os.close(folder)


def remove_partial_files(folder: str | os.PathLike) -> list[Path]:
    """Removes the checkpoints a killed process left half-written in ``folder``; returns what it removed."""
    removed = sorted(Path(folder).glob(f".*{PARTIAL_SUFFIX}"))
    for path in removed:
        path.unlink(missing_ok=True)
    return removed


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
    return rundir.stored_config(read_checkpoint(path)) is not None


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
    text = rundir.stored_config(read if read is not None else read_checkpoint(checkpoint_path))
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
