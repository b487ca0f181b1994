"""ginlight.callbacks.PredictionWriter: each rank's predictions merged into one row per sample.

The ranks are played in turn in this process: each ``write_on_epoch_end`` sees the Trainer
attributes a DDP rank would (a stand-in for Lightning's Trainer holding only those).
"""

from __future__ import annotations

import csv
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from ginlight.callbacks import PredictionWriter


def _rank(rank: int, world_size: int, root: Path) -> SimpleNamespace:
    return SimpleNamespace(global_rank=rank, world_size=world_size, is_global_zero=rank == 0,
                           default_root_dir=str(root), strategy=SimpleNamespace(barrier=lambda name: None))


def _read(path: Path) -> list[list[str]]:
    with open(path, newline="") as handle:
        return list(csv.reader(handle))


def test_ranks_shares_merge_into_one_row_per_sample_ordered_and_without_the_samplers_repeats(tmp_path):
    """A DistributedSampler pads 7 samples to 8 over 2 ranks: rank 1 gets sample 0 again."""
    writer = PredictionWriter()
    shares = {0: ([torch.tensor([10.0, 12.0]), torch.tensor([14.0, 16.0])], [[0, 2], [4, 6]]),
              1: ([torch.tensor([11.0, 13.0]), torch.tensor([15.0, 10.0])], [[1, 3], [5, 0]])}
    for rank in (1, 0):  # rank 0 merges last, once every rank has written
        predictions, indices = shares[rank]
        writer.write_on_epoch_end(_rank(rank, 2, tmp_path), None, predictions, indices)
    rows = _read(tmp_path / "predictions" / "predictions.csv")
    assert rows == [["identifier", "prediction"]] + [[str(i), str(10.0 + i)] for i in range(7)]
    assert sorted(p.name for p in (tmp_path / "predictions").iterdir()) == ["predictions.csv"]  # parts removed


def test_identifiers_from_the_system_outputs_replace_batch_indices_and_vectors_are_space_separated(tmp_path):
    writer = PredictionWriter(output_dir=str(tmp_path / "out"))
    outputs = [{"pred": torch.tensor([[0.25, 0.75], [1.0, 0.0]]), "identifier": torch.tensor([42, 7])}]
    writer.write_on_epoch_end(_rank(0, 1, tmp_path), None, outputs, [[0, 1]])
    assert _read(tmp_path / "out" / "predictions.csv") == [["identifier", "prediction"], ["7", "1.0 0.0"],
                                                          ["42", "0.25 0.75"]]


def test_several_predict_loaders_are_flattened_batch_by_batch(tmp_path):
    """Lightning nests predictions and batch indices per loader when there are several."""
    writer = PredictionWriter()
    predictions = [[torch.tensor([1.0]), torch.tensor([2.0])], [torch.tensor([3.0])]]
    indices = [[[0], [1]], [[2]]]
    writer.write_on_epoch_end(_rank(0, 1, tmp_path), None, predictions, indices)
    assert _read(tmp_path / "predictions" / "predictions.csv")[1:] == [["0", "1.0"], ["1", "2.0"], ["2", "3.0"]]


def test_files_format_writes_one_tensor_per_sample(tmp_path):
    writer = PredictionWriter(format="files")
    writer.write_on_epoch_end(_rank(0, 1, tmp_path), None, [torch.tensor([[1.0, 2.0], [3.0, 4.0]])], [[5, 9]])
    assert sorted(p.name for p in (tmp_path / "predictions").iterdir()) == ["5.pt", "9.pt"]
    assert torch.equal(torch.load(tmp_path / "predictions" / "9.pt", weights_only=True), torch.tensor([3.0, 4.0]))


def test_an_unknown_format_is_refused():
    with pytest.raises(ValueError, match="must be 'csv' or 'files'"):
        PredictionWriter(format="parquet")
