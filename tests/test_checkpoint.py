"""ginlight.checkpoint: the random states a checkpoint carries, which checkpoint a run directory means, and the
hash of its weights."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest
import torch

import ginlight
from ginlight.callbacks import RandomStateInCheckpoint
from ginlight.checkpoint import (CrashSafeCheckpointIO, checkpoint_of, read_checkpoint, remove_partial_files,
                                 weights_hash)


def _seed(seed: int) -> None:
    torch.manual_seed(seed)
    np.random.seed(seed)
    random.seed(seed)


def _draws() -> dict[str, list]:
    """A few numbers from each generator a training step may draw from."""
    return {"torch": torch.rand(4).tolist(), "numpy": np.random.rand(4).tolist(),
            "python": [random.random() for _ in range(4)], "gauss": [random.gauss(0, 1) for _ in range(3)]}


def test_restored_states_draw_the_same_numbers_again_in_every_generator():
    _seed(1)
    random.gauss(0, 1)  # leaves a cached second value in Python's state
    callback = RandomStateInCheckpoint()
    state = callback.state_dict()
    expected = _draws()
    _seed(2)
    assert _draws() != expected  # other seeds draw other numbers: the restore below is what matters
    callback.load_state_dict(state)
    assert _draws() == expected


def test_the_states_survive_a_checkpoint_read_with_weights_only(tmp_path):
    """So that ginlight's checkpoints still load without running code."""
    callback = RandomStateInCheckpoint()
    state = callback.state_dict()
    expected = _draws()
    torch.save({"callbacks": {"RandomStateInCheckpoint": state}}, tmp_path / "x.ckpt")
    loaded = read_checkpoint(tmp_path / "x.ckpt")["callbacks"]["RandomStateInCheckpoint"]
    _seed(5)
    callback.load_state_dict(loaded)
    assert _draws() == expected


def _run_dir(tmp_path, best: str | None, files: list[str]):
    (tmp_path / "checkpoints").mkdir()
    for name in files:
        torch.save({}, tmp_path / "checkpoints" / name)
    (tmp_path / "run.json").write_text(json.dumps({"best_checkpoint": best}))
    return tmp_path


def test_a_run_directory_means_its_best_checkpoint_found_by_name_where_the_run_moved(tmp_path):
    run = _run_dir(tmp_path, "/elsewhere/checkpoints/epoch=0-step=3.ckpt", ["epoch=0-step=3.ckpt", "last.ckpt"])
    assert checkpoint_of(run) == run / "checkpoints" / "epoch=0-step=3.ckpt"


@pytest.mark.parametrize("best", [None, "/gone/checkpoints/epoch=1-step=6.ckpt"], ids=["unmonitored", "best gone"])
def test_without_a_best_checkpoint_a_run_directory_means_last_ckpt(tmp_path, best):
    run = _run_dir(tmp_path, best, ["last.ckpt"])
    assert checkpoint_of(run) == run / "checkpoints" / "last.ckpt"


def test_a_checkpoint_file_means_itself_and_a_run_without_checkpoints_is_refused(tmp_path):
    run = _run_dir(tmp_path, None, [])
    torch.save({}, tmp_path / "mine.ckpt")
    assert checkpoint_of(tmp_path / "mine.ckpt") == tmp_path / "mine.ckpt"
    with pytest.raises(ginlight.ConfigError, match="has no checkpoint"):
        checkpoint_of(run)


def test_weights_hash_sees_every_bit_key_dtype_and_shape():
    weights = {"a": torch.arange(6, dtype=torch.float32).reshape(2, 3), "b": torch.zeros(2, dtype=torch.bfloat16)}
    reference = weights_hash(weights)
    assert weights_hash({"b": weights["b"].clone(), "a": weights["a"].clone()}) == reference
    flipped = weights["a"].clone()
    flipped.view(torch.int32)[0, 0] ^= 1  # the lowest bit of one element
    assert weights_hash({**weights, "a": flipped}) != reference
    assert weights_hash({**weights, "a": weights["a"].reshape(3, 2)}) != reference
    assert weights_hash({**weights, "a": weights["a"].double()}) != reference
    assert weights_hash({"c": weights["a"], "b": weights["b"]}) != reference


def test_a_crash_safe_save_writes_beside_the_checkpoint_and_nothing_in_tmpdir(tmp_path, monkeypatch):
    tmpdir = tmp_path / "tmpdir"
    tmpdir.mkdir()
    monkeypatch.setenv("TMPDIR", str(tmpdir))
    monkeypatch.setattr("tempfile.tempdir", None)  # tempfile reads TMPDIR again
    path = tmp_path / "checkpoints" / "last.ckpt"
    CrashSafeCheckpointIO().save_checkpoint({"state_dict": {"w": torch.arange(5.0)}}, path)
    assert torch.equal(read_checkpoint(path)["state_dict"]["w"], torch.arange(5.0))
    assert [p.name for p in path.parent.iterdir()] == ["last.ckpt"]
    assert list(tmpdir.iterdir()) == []


def test_a_save_that_fails_midway_leaves_the_previous_checkpoint_whole(tmp_path):
    path = tmp_path / "last.ckpt"
    io = CrashSafeCheckpointIO()
    io.save_checkpoint({"state_dict": {"w": torch.zeros(3)}}, path)
    with pytest.raises(Exception):  # a lambda cannot be pickled: torch.save fails after writing part of the file
        io.save_checkpoint({"state_dict": {"w": torch.ones(1000)}, "hook": lambda: None}, path)
    assert torch.equal(read_checkpoint(path)["state_dict"]["w"], torch.zeros(3))
    assert [p.name for p in tmp_path.iterdir()] == ["last.ckpt"]


def test_partial_files_a_kill_left_are_removed_and_nothing_else(tmp_path):
    (tmp_path / "last.ckpt").write_bytes(b"whole")
    (tmp_path / ".last.ckpt.123.partial").write_bytes(b"cut")
    (tmp_path / ".epoch=1-step=6.ckpt.9.partial").write_bytes(b"cut")
    assert [p.name for p in remove_partial_files(tmp_path)] == [".epoch=1-step=6.ckpt.9.partial",
                                                               ".last.ckpt.123.partial"]
    assert [p.name for p in tmp_path.iterdir()] == ["last.ckpt"]
