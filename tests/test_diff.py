"""ginlight-diff: the bindings that differ between runs or gin files, and the runs' final metrics."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import CONFIGS, SHORT, ginlight_diff, read_record

import ginlight
from ginlight.diff import diff, read_config, to_text

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory) -> tuple[Path, Path]:
    """Two 1-epoch classifier runs that differ in one binding, the learning rate macro."""
    root = tmp_path_factory.mktemp("runs")
    runs = [ginlight.train([CONFIGS / "classifier.gin"], [*SHORT, "MAX_EPOCHS=1", f"LR={lr}"], root_dir=root).run_dir
            for lr in (0.003, 0.03)]
    return runs[0], runs[1]


def _changes(text: str) -> list[str]:
    """The binding and import changes: the lines before the runs' Code and Versions sections."""
    bindings = text.split("\nCode\n", 1)[0]
    return [line.strip() for line in bindings.splitlines() if line.startswith(("  +", "  -", "  ~"))]


def test_diff_of_two_runs_shows_the_changed_binding_and_the_metrics_side_by_side(two_runs):
    a, b = two_runs
    result = ginlight_diff(str(a), str(b))
    assert result.returncode == 0, result.stderr
    text = result.stdout
    # The macro changed; the binding that reads it shows the resolved values. Nothing else differs.
    assert _changes(text) == ["~ LR: 0.003 -> 0.03", "~ lr: %LR (= 0.003) -> %LR (= 0.03)"]
    assert text.index("Macros") < text.index("~ LR") < text.index("AdamW") < text.index("~ lr")
    metrics_a, metrics_b = read_record(a)["metrics"], read_record(b)["metrics"]
    accuracy = next(line.split() for line in text.splitlines() if line.strip().startswith("val/accuracy"))
    assert accuracy[1:3] == [f"{metrics_a['val/accuracy']:.6g}", f"{metrics_b['val/accuracy']:.6g}"]
    assert text.index("Final metrics") > text.index("~ lr")


def test_diff_format_json_is_for_tools(two_runs):
    a, b = two_runs
    result = ginlight_diff(str(a), str(b), "--format=json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["bindings"] == [
        {"configurable": "Macros", "parameter": "LR", "kind": "changed", "a": "0.003", "b": "0.03"},
        {"configurable": "AdamW", "parameter": "lr", "kind": "changed", "a": "%LR", "b": "%LR",
         "a_resolved": "0.003", "b_resolved": "0.03"},
    ]
    assert report["imports"] == {"added": [], "removed": []}
    assert report["metrics"]["val/loss"] == {"a": read_record(a)["metrics"]["val/loss"],
                                             "b": read_record(b)["metrics"]["val/loss"]}


def test_diff_of_gin_files_follows_includes_and_needs_no_torch(tmp_path):
    (tmp_path / "base.gin").write_text("STEPS = 10\nTrainer.max_steps = %STEPS\nTrainer.accelerator = 'cpu'\n")
    (tmp_path / "a.gin").write_text("include 'base.gin'\ntrain/DataLoader.batch_size = 32\n")
    (tmp_path / "b.gin").write_text(
        "include 'base.gin'\nimport mymodule\nSTEPS = 20\ntrain/DataLoader.batch_size = 64\n"
        "val/DataLoader.batch_size = 64\nSystem.model = @mymodule.Net()\n")
    script = (
        "import sys\n"
        "from ginlight import diff\n"
        f"print(diff.to_text(diff.read_config({str(tmp_path / 'a.gin')!r}), diff.read_config({str(tmp_path / 'b.gin')!r})))\n"
        "print('torch imported:', 'torch' in sys.modules)\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "torch imported: False" in result.stdout
    assert _changes(result.stdout) == [
        "+ import mymodule",
        "~ STEPS: 10 -> 20",
        "~ batch_size: 32 -> 64",
        "+ batch_size = 64",
        "+ model = @mymodule.Net()",
        "~ max_steps: %STEPS (= 10) -> %STEPS (= 20)",
    ]
    assert "train/DataLoader\n  ~ batch_size" in result.stdout and "val/DataLoader\n  + batch_size" in result.stdout


def test_diff_of_the_shipped_classifier_configs():
    result = ginlight_diff(str(CONFIGS / "classifier.gin"), str(CONFIGS / "classifier_steps.gin"))
    assert result.returncode == 0, result.stderr
    assert "Trainer\n" in result.stdout and "+ max_steps = %MAX_STEPS" in result.stdout


def test_identical_configs_say_so_and_bindings_removed_are_listed(tmp_path):
    (tmp_path / "a.gin").write_text("Trainer.max_epochs = 3\nTrainer.precision = None\n")
    (tmp_path / "b.gin").write_text("Trainer.max_epochs = 3\n")
    a, b = read_config(tmp_path / "a.gin"), read_config(tmp_path / "b.gin")
    assert "The two configs bind the same values." in to_text(a, a)
    (removed,) = diff(a, b)
    assert (removed.configurable, removed.parameter, removed.kind, removed.a) == ("Trainer", "precision", "removed", None)
    assert "- precision = None" in to_text(a, b)


def test_diff_of_what_is_neither_a_run_nor_a_gin_file_exits_2(tmp_path):
    (tmp_path / "a.gin").write_text("Trainer.max_epochs = 3\n")
    result = ginlight_diff(str(tmp_path / "a.gin"), str(tmp_path))
    assert result.returncode == 2
    assert "is not a run directory" in result.stderr
    result = ginlight_diff(str(tmp_path / "a.gin"))
    assert result.returncode == 2 and "expected two runs or gin files" in result.stderr
