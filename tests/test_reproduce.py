"""Reruns are bit-identical on the CPU; ginlight-train --reproduce checks it and reports a deliberate change."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import torch
from conftest import CONFIGS, REPO, SHORT, ginlight_train, read_record, run_dirs
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

import ginlight
from ginlight.diff import read_config
from ginlight.reproduce import compare, reproduce, weights_hash

ONE_EPOCH = [*SHORT, "Trainer.max_epochs=1"]


def _runnable(path: Path) -> bool:
    """A shipped config names its own command in its header: `ginlight-train --gin_file=configs/<file>`."""
    return re.search(rf"ginlight-train --gin_file=configs/{re.escape(path.name)}\b", path.read_text()) is not None


SHIPPED = sorted(path for path in CONFIGS.glob("*.gin") if _runnable(path))


def test_every_config_is_shipped_or_a_fragment_that_shipped_ones_include():
    """So the rerun test below covers each new config: one without its command must be an include."""
    fragments = {path.name for path in CONFIGS.glob("*.gin")} - {path.name for path in SHIPPED}
    included = {file.name for path in SHIPPED for file in read_config(path).files[1:]}
    assert SHIPPED and fragments <= included, f"configs neither runnable nor included: {fragments - included}"


def _scalars(run_dir: Path) -> dict[str, list[tuple[int, float]]]:
    events = EventAccumulator(str(run_dir / "tensorboard"))
    events.Reload()
    return {tag: [(e.step, e.value) for e in events.Scalars(tag)] for tag in events.Tags()["scalars"]}


@pytest.mark.parametrize("config", SHIPPED, ids=lambda path: path.stem)
def test_the_operative_config_reruns_bit_identically_from_another_directory(config, tmp_path, monkeypatch):
    monkeypatch.chdir(REPO)  # where the configs' own commands run
    first = ginlight.train([config], ONE_EPOCH, root_dir=tmp_path / "runs")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    rerun = ginlight.train([first.run_dir.resolve() / "operative_config.gin"], root_dir=tmp_path / "reruns")
    assert first.status == rerun.status == "completed"
    comparison = compare(first.run_dir, rerun.run_dir)
    assert comparison.match, comparison.report()
    assert len(read_record(first.run_dir)["weights_sha256"]) == 64
    logged = _scalars(first.run_dir)
    assert logged and logged == _scalars(rerun.run_dir)


@pytest.mark.parametrize("bound, fills", [([], False), (["Trainer.deterministic = True"], True)])
def test_ginlight_runs_deterministic_algorithms_without_filling_new_tensors_unless_bound(bound, fills, tmp_path,
                                                                                        torch_flags, monkeypatch):
    """docs/performance.md: the fill cost a CNN's step 5%; a Trainer.deterministic of the user's own gets
    PyTorch's behaviour unchanged."""
    monkeypatch.chdir(REPO)
    ginlight.train([CONFIGS / "classifier.gin"], ONE_EPOCH + bound, root_dir=tmp_path)
    assert torch.are_deterministic_algorithms_enabled()
    assert torch.utils.deterministic.fill_uninitialized_memory is fills


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


@pytest.fixture(scope="module")
def original(tmp_path_factory) -> Path:
    """A finished 1-epoch classifier run."""
    return ginlight.train([CONFIGS / "classifier.gin"], ONE_EPOCH,
                          root_dir=tmp_path_factory.mktemp("runs")).run_dir.resolve()


def test_reproduce_reruns_into_a_new_directory_reports_each_value_and_exits_0(original, tmp_path):
    result = ginlight_train(f"--reproduce={original}", f"--root_dir={tmp_path / 'runs'}", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    (rerun,) = run_dirs(tmp_path / "runs")
    assert rerun.parent.name == "classifier"  # named after the original, not after operative_config.gin
    report = json.loads((rerun / "reproduction.json").read_text())
    assert report["match"] is True and report["original"] == str(original)
    names = [value["name"] for value in report["values"]]
    assert {"val/accuracy", "train/loss", "weights sha256"} <= set(names)
    assert all(value["match"] for value in report["values"])
    accuracy = next(line.split() for line in result.stdout.splitlines() if line.strip().startswith("val/accuracy"))
    assert accuracy[1] == accuracy[2] == repr(report["values"][names.index("val/accuracy")]["rerun"])
    assert accuracy[3] == "match"
    assert f"Reproduced exactly: all {len(names)} values match." in result.stdout


def test_reproduce_with_a_changed_binding_reports_the_differences_and_exits_3(original, tmp_path):
    result = ginlight_train(f"--reproduce={original}", "--gin_bindings=LR=0.03", f"--root_dir={tmp_path}",
                            cwd=tmp_path)
    assert result.returncode == 3, result.stderr
    (rerun,) = run_dirs(tmp_path)
    report = json.loads((rerun / "reproduction.json").read_text())
    assert report["match"] is False
    weights = next(value for value in report["values"] if value["name"] == "weights sha256")
    assert weights["match"] is False and len(weights["original"]) == len(weights["rerun"]) == 64
    assert re.search(r"weights sha256\s+[0-9a-f]{16}\s+[0-9a-f]{16}\s+DIFFERS", result.stdout)
    assert "NOT reproduced" in result.stdout
    assert "LR = 0.03" in (rerun / "operative_config.gin").read_text()


def test_reproduce_refuses_a_run_that_did_not_complete(original, tmp_path):
    unfinished = tmp_path / "unfinished"
    unfinished.mkdir()
    (unfinished / "operative_config.gin").write_text((original / "operative_config.gin").read_text())
    record = json.loads((original / "run.json").read_text())
    (unfinished / "run.json").write_text(json.dumps({**record, "status": "interrupted"}))
    with pytest.raises(ginlight.ConfigError, match="interrupted; only a completed run can be reproduced"):
        reproduce(unfinished, root_dir=tmp_path / "runs")
    assert not (tmp_path / "runs").exists()
