"""ginlight-sweep's exit status, from the installed command: docs/sweeps.md promises 1 when no trial completed."""

from __future__ import annotations

import csv

import pytest

from conftest import CONFIGS, bindings, ginlight_sweep, read_record

pytestmark = pytest.mark.slow

# Every trial diverges: SGD at a learning rate no model survives, its loss checked at every step.
DIVERGING = ["MAX_EPOCHS=1", "Trainer.limit_train_batches=2", "Trainer.limit_val_batches=1",
             "Trainer.enable_progress_bar=False", "Trainer.enable_model_summary=False",
             "System.optimizer = @torch.optim.SGD", "torch.optim.SGD.lr = 1e38", "Trainer.log_every_n_steps = 1"]


def test_a_sweep_in_which_no_trial_completes_exits_1_with_each_trial_failed(tmp_path):
    result = ginlight_sweep(f"--gin_file={CONFIGS / 'classifier.gin'}", *bindings(*DIVERGING),
                            "--sweep=BATCH_SIZE=[8, 16]", "--objective=val/accuracy", "--direction=max",
                            f"--root_dir={tmp_path}", timeout=600)
    assert result.returncode == 1, result.stderr[-3000:]
    (folder,) = (tmp_path / "classifier").glob("sweep-*")
    with open(folder / "sweep.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [row["status"] for row in rows] == ["failed", "failed"]
    trials = sorted(path.parent for path in folder.glob("**/run.json"))
    assert len(trials) == 2
    for trial in trials:
        record = read_record(trial)
        assert record["status"] == "failed" and "training loss is nan" in record["error"]
