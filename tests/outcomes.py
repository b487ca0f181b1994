"""Whole outcomes: two run directories compared completely, with a readable account of what differs.

What a run leaves is compared, not a hash of it: the set of files (relative paths,
timestamps and TensorBoard event file names masked), every checkpoint in full
(its keys, epoch and global step, every tensor of the weights and the optimizer
and scheduler states, exactly, and every callback's state), the operative config
(with its ``# ginlight-path:`` lines; the header's run path masked) and ``run.json``
(timestamps, paths, host names and durations masked). Reruns on the CPU are
bit-identical, so nothing is compared with a tolerance.
"""

from __future__ import annotations

import difflib
import json
import math
import re
from pathlib import Path
from typing import Any, Iterable

import torch

RUN = "<RUN>"
PATH_DIRECTIVE = "# ginlight-path: "  # operative.PATH_DIRECTIVE spelled out: the file format is the contract
MASKED = "<masked>"
#: run.json fields that differ between two runs of one config whatever the code does: when and where.
#: (``root``: the --root_dir a tracker store lives in, ``trackers.root``, and a git work tree's, ``git.root``.)
WHEN_AND_WHERE = {"start_time", "end_time", "time", "hostname", "cwd", "argv", "duration", "duration_s", "pid",
                  "root"}
_STAMP = re.compile(r"\d{8}-\d{6}(-\d+)?")
_EVENTS = re.compile(r"events\.out\.tfevents\..*")
#: Lines of differences shown before the rest are counted.
SHOWN = 60


def files(run_dir: Path) -> set[str]:
    """The relative paths of the files in ``run_dir``, timestamps and event file names masked."""
    run_dir = Path(run_dir)
    return {_EVENTS.sub("events.out.tfevents.*", _STAMP.sub("<TIME>", path.relative_to(run_dir).as_posix()))
            for path in run_dir.rglob("*") if path.is_file()}


def checkpoints(run_dir: Path) -> dict[str, dict[str, Any]]:
    """Each checkpoint of ``run_dir`` by relative path, loaded with ``weights_only=True``, run paths masked."""
    run_dir = Path(run_dir)
    return {path.relative_to(run_dir).as_posix(): _masked(torch.load(path, weights_only=True), run_dir)
            for path in sorted(run_dir.glob("checkpoints/*.ckpt"))}


def operative_config(run_dir: Path) -> str:
    """``operative_config.gin`` with the run's own path (in its header) masked."""
    return _mask_text((Path(run_dir) / "operative_config.gin").read_text(), _spellings(Path(run_dir)))


def record(run_dir: Path, ignore: Iterable[str] = ()) -> dict[str, Any]:
    """``run.json`` with :data:`WHEN_AND_WHERE` masked (at any depth), run paths masked, ``ignore`` left out."""
    run_dir = Path(run_dir)
    data = json.loads((run_dir / "run.json").read_text())
    return _masked(_mask_fields({k: v for k, v in data.items() if k not in set(ignore)}), run_dir)


def differences(a: Path, b: Path, *, only_in_a: Iterable[str] = (), only_in_b: Iterable[str] = (),
                ignore_record: Iterable[str] = ()) -> list[str]:
    """Every way run directory ``b`` differs from ``a``; empty when they are the same run.

    ``only_in_a``, ``only_in_b``: files that one of them alone may hold (``reproduction.json``);
    ``ignore_record``: ``run.json`` fields that only one of them is expected to hold
    (``resumptions``).
    """
    a, b = Path(a), Path(b)
    found = []
    files_a, files_b = files(a) - set(only_in_a), files(b) - set(only_in_b)
    found += [f"file only in a: {name}" for name in sorted(files_a - files_b)]
    found += [f"file only in b: {name}" for name in sorted(files_b - files_a)]
    cwd_b = json.loads((b / "run.json").read_text()).get("cwd")
    checkpoints_a, checkpoints_b = checkpoints(a), checkpoints(b)
    for name in sorted(set(checkpoints_a) & set(checkpoints_b)):
        stored_a, stored_b = (_pop_stored_config(c) for c in (checkpoints_a[name], checkpoints_b[name]))
        found += _compare_configs(f"{name}['ginlight']['operative_config']", stored_a, stored_b, cwd_b)
        found += _compare(name, checkpoints_a[name], checkpoints_b[name])
    found += _compare_configs("operative_config.gin", operative_config(a), operative_config(b), cwd_b)
    found += _compare("run.json", record(a, ignore_record), record(b, ignore_record))
    return found


def _pop_stored_config(checkpoint: dict[str, Any]) -> str | None:
    entry = checkpoint.get("ginlight")
    return entry.pop("operative_config", None) if isinstance(entry, dict) else None


def _compare_configs(where: str, a: str | None, b: str | None, cwd_b: str | None) -> list[str]:
    """Operative configs: the same text, except that ``b`` may add its own working directory as a path.

    Every ``# ginlight-path:`` line of ``a`` must be in ``b``, in order: a rerun or a resume that
    loses one can no longer import the code the run used.
    """
    if a is None or b is None:
        return [] if a == b else [f"{where}: only in {'a' if b is None else 'b'}"]
    paths_a, paths_b = _path_lines(a), _path_lines(b)
    found = [f"{where}: lost {line!r}" for line in paths_a if line not in paths_b]
    found += [f"{where}: added {line!r}" for line in paths_b
              if line not in paths_a and line != PATH_DIRECTIVE + str(cwd_b)]
    if not found and [line for line in paths_b if line in paths_a] != paths_a:
        found.append(f"{where}: path lines reordered: {paths_a} in a, {paths_b} in b")
    body_a, body_b = ([line for line in text.splitlines() if not line.startswith(PATH_DIRECTIVE)] for text in (a, b))
    found += [f"{where}: {line}" for line in difflib.unified_diff(body_a, body_b, "a", "b", n=1, lineterm="")][2:]
    return found


def _path_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith(PATH_DIRECTIVE)]


def assert_same_outcome(a: Path, b: Path, **options: Any) -> None:
    """Fails, listing what differs, unless run directories ``a`` and ``b`` hold the same run (:func:`differences`)."""
    found = differences(a, b, **options)
    if found:
        shown = found[:SHOWN] + ([f"... and {len(found) - SHOWN} more"] if len(found) > SHOWN else [])
        raise AssertionError(f"runs differ:\n  a = {a}\n  b = {b}\n" + "\n".join(f"  {line}" for line in shown))


def same_weights(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> list[str]:
    """How two ``state_dict``s differ, tensor by tensor, exactly; empty when every tensor is equal."""
    return _compare("state_dict", dict(a), dict(b))


def _compare(where: str, a: Any, b: Any) -> list[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        found = [f"{where}: key {key!r} only in {'a' if key in a else 'b'}" for key in sorted(set(a) ^ set(b), key=str)]
        for key in sorted(set(a) & set(b), key=str):
            found += _compare(f"{where}[{key!r}]", a[key], b[key])
        return found
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)) and type(a) is type(b):
        if len(a) != len(b):
            return [f"{where}: {len(a)} items in a, {len(b)} in b"]
        return [line for i, (x, y) in enumerate(zip(a, b)) for line in _compare(f"{where}[{i}]", x, y)]
    if isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor):
        return _compare_tensors(where, a, b)
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return []
    if type(a) is not type(b) or a != b:
        return [f"{where}: {_short(a)} in a, {_short(b)} in b"]
    return []


def _compare_tensors(where: str, a: torch.Tensor, b: torch.Tensor) -> list[str]:
    if a.dtype != b.dtype or a.shape != b.shape:
        return [f"{where}: {a.dtype}{tuple(a.shape)} in a, {b.dtype}{tuple(b.shape)} in b"]
    if torch.equal(a, b) or (a.is_floating_point() and torch.equal(a.isnan(), b.isnan())
                             and torch.equal(a.nan_to_num(), b.nan_to_num())):
        return []
    unequal = (a != b) & ~(a.isnan() & b.isnan()) if a.is_floating_point() else a != b
    largest = (a.double() - b.double()).abs()[unequal].max().item() if a.dtype != torch.bool else 1
    return [f"{where}: {int(unequal.sum())} of {a.numel()} elements differ (largest difference {largest:.3g})"]


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 120 else text[:117] + "..."


def _spellings(run_dir: Path) -> list[str]:
    """The ways a run's records spell its own path: as given, resolved, and relative to the directory it ran
    from (a relative --root_dir); longest first, so that none masks part of another."""
    spellings = {str(run_dir), str(run_dir.resolve())}
    record = run_dir / "run.json"
    cwd = json.loads(record.read_text()).get("cwd") if record.is_file() else None
    if cwd and run_dir.resolve().is_relative_to(Path(cwd).resolve()):
        spellings.add(str(run_dir.resolve().relative_to(Path(cwd).resolve())))
    return sorted(spellings, key=len, reverse=True)


def _mask_text(text: str, spellings: list[str]) -> str:
    for path in spellings:
        text = text.replace(path, RUN)
    return text


def _masked(value: Any, run_dir: Path) -> Any:
    """``value`` with the run directory's path replaced by :data:`RUN` in every string, keys included."""
    spellings = _spellings(run_dir)

    def mask(value: Any) -> Any:
        if isinstance(value, str):
            return _mask_text(value, spellings)
        if isinstance(value, dict):
            return {mask(key): mask(item) for key, item in value.items()}
        if isinstance(value, (list, tuple)):
            return type(value)(mask(item) for item in value)
        return value

    return mask(value)


def _mask_fields(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: MASKED if key in WHEN_AND_WHERE else _mask_fields(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_mask_fields(item) for item in value]
    return value
