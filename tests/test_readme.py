"""The README's own examples run as written."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest

from conftest import CONFIGS, REPO, SHORT, bindings, ginlight_train, read_record, run_dirs

pytestmark = pytest.mark.slow

README = (REPO / "README.md").read_text()


def test_the_minimal_gin_file_trains(tmp_path):
    (block,) = [b for b in re.findall(r"```\n(.*?)```", README, re.S) if b.startswith("# my.gin")]
    (tmp_path / "my.gin").write_text(block)
    assert "    ginlight-train --gin_file=my.gin" in README
    result = ginlight_train("--gin_file=my.gin", f"--root_dir={tmp_path / 'runs'}", *bindings(*SHORT), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    (run_dir,) = run_dirs(tmp_path / "runs")
    assert {"train/loss", "val/accuracy"} <= set(read_record(run_dir)["metrics"])


def test_listing_configurables_by_pattern():
    assert "`ginlight-train --list_configurables='*optim*'`" in README
    result = ginlight_train("--list_configurables=*optim*")
    assert result.returncode == 0, result.stderr
    assert "torch.optim.AdamW(" in result.stdout and "torch.optim.lr_scheduler.OneCycleLR(" in result.stdout


def test_the_loaded_system_predicts_new_data_in_a_fresh_process(tmp_path):
    (block,) = [b for b in re.findall(r"```python\n(.*?)```", README, re.S) if b.startswith("# predict.py")]
    result = ginlight_train(f"--gin_file={CONFIGS / 'classifier.gin'}", f"--root_dir={tmp_path / 'runs'}",
                            *bindings(*SHORT, "MAX_EPOCHS=1"))
    assert result.returncode == 0, result.stderr
    (run_dir,) = run_dirs(tmp_path / "runs")
    assert '"runs/classifier/<timestamp>"' in block
    (tmp_path / "predict.py").write_text(block.replace("runs/classifier/<timestamp>", str(run_dir)))
    result = subprocess.run([sys.executable, "predict.py"], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    classes = json.loads(result.stdout.splitlines()[-1])
    assert len(classes) == 4 and all(c in range(10) for c in classes)
