"""ginlight.rundir: fresh run directories, atomic writes, run.json, and the console copied to train.log."""

from __future__ import annotations

import io
import json
import logging
import multiprocessing
import os
import re
import stat
import sys
from pathlib import Path

import pytest

from ginlight import rundir
from ginlight.errors import ConfigError


def _create(args: tuple[str, str]) -> str:
    return str(rundir.create_run_dir(*args))


def test_concurrent_creations_get_distinct_directories_under_root_and_name(tmp_path):
    """Many processes in the same second: os.mkdir lets one win each name and the others take the next suffix."""
    with multiprocessing.get_context("spawn").Pool(4) as pool:
        made = pool.map(_create, [(str(tmp_path / "runs"), "exp")] * 12)
    assert len(set(made)) == 12
    assert {Path(path).parent for path in made} == {tmp_path / "runs" / "exp"}
    assert all(re.fullmatch(r"\d{8}-\d{6}(-\d+)?", Path(path).name) for path in made)  # YYYYmmdd-HHMMSS[-N]
    assert all(Path(path).is_dir() and not any(Path(path).iterdir()) for path in made)


def test_the_name_is_the_prefix_then_the_start_time(tmp_path):
    path = rundir.create_run_dir(tmp_path / "runs", "exp", prefix="trial-")
    assert path.parent == tmp_path / "runs" / "exp"
    assert re.fullmatch(r"trial-\d{8}-\d{6}", path.name)


def test_write_atomic_replaces_the_file_whole_and_leaves_no_temporary_behind(tmp_path):
    target = tmp_path / "run.json"
    target.write_text("old")
    rundir.write_atomic(target, "new text\n")
    assert target.read_text() == "new text\n"
    assert [p.name for p in tmp_path.iterdir()] == ["run.json"]


def test_write_atomic_follows_the_umask(tmp_path):
    previous = os.umask(0o027)
    try:
        rundir.write_atomic(tmp_path / "config.gin", "x = 1\n")
    finally:
        os.umask(previous)
    assert stat.S_IMODE((tmp_path / "config.gin").stat().st_mode) == 0o640


def test_run_record_keeps_what_each_update_adds_and_reads_it_back(tmp_path):
    record = rundir.RunRecord(tmp_path)
    assert not (tmp_path / rundir.RECORD).exists()
    record.update(status=rundir.Status.RUNNING, metrics={})
    record.finish(rundir.Status.COMPLETED, metrics={"val/loss": 0.5}, ckpt_path=tmp_path)
    saved = json.loads((tmp_path / rundir.RECORD).read_text())
    assert saved["status"] == "completed" and saved["error"] is None and saved["schema"] == rundir.SCHEMA
    assert saved["metrics"] == {"val/loss": 0.5}
    assert saved["ckpt_path"] == str(tmp_path)  # what JSON cannot hold is written as text
    assert saved["end_time"][:4].isdigit() and "T" in saved["end_time"]
    again = rundir.RunRecord.read(tmp_path)
    assert again.to_json() == saved and again.problems == [] and again.status == rundir.Status.COMPLETED
    with pytest.raises(TypeError, match="run.json has no fields \\['speed'\\]"):
        record.update(speed=3)


def test_an_older_record_reads_with_the_defaults_of_what_it_lacks_and_keeps_what_it_does_not_know(tmp_path):
    """A run.json written before ``schema``, ``stage``, ``torch_threads`` and ``tags`` were recorded."""
    old = {"status": "completed", "metrics": {"val/loss": 0.25}, "seed": 3, "added_by_hand": [1, 2]}
    (tmp_path / rundir.RECORD).write_text(json.dumps(old))
    record = rundir.RunDir(tmp_path).read_record()
    assert (record.schema, record.stage, record.torch_threads, record.tags, record.resumptions) == (
        1, "fit", None, [], [])
    assert (record.status, record.metrics, record.seed, record.problems) == ("completed", {"val/loss": 0.25}, 3, [])
    record.update(notes="read again")  # written back in this version's layout, the unknown key kept
    saved = json.loads((tmp_path / rundir.RECORD).read_text())
    assert saved["schema"] == rundir.SCHEMA and saved["stage"] == "fit" and saved["added_by_hand"] == [1, 2]
    assert saved["notes"] == "read again" and saved["metrics"] == {"val/loss": 0.25}


def test_a_field_of_the_wrong_type_gets_its_default_and_the_record_says_so(tmp_path):
    (tmp_path / rundir.RECORD).write_text(json.dumps(
        {"status": 3, "tags": ["a", 1], "metrics": {"val/loss": "low", "val/accuracy": 1}, "seed": True,
         "stage": None}))
    record = rundir.RunRecord.read(tmp_path)
    assert (record.status, record.tags, record.metrics, record.seed, record.stage) == (
        None, ["a"], {"val/accuracy": 1}, None, "fit")
    assert record.problems == ["run.json: status is 3, not a str",
                               "run.json: tags ['a', 1] are not all strings; the others are left out",
                               "run.json: metrics ['val/loss'] are not numbers; they are left out",
                               "run.json: seed is True, not an int"]


def test_run_record_start_says_what_ran_where(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    record = rundir.RunRecord(tmp_path)
    record.start(["ginlight-train", "--gin_file=x.gin"], seed=7, torch_threads=3)
    saved = json.loads((tmp_path / rundir.RECORD).read_text())
    assert saved["argv"] == ["ginlight-train", "--gin_file=x.gin"] and saved["seed"] == 7
    assert saved["torch_threads"] == 3
    assert saved["cwd"] == str(tmp_path) and saved["status"] == "running" and saved["end_time"] is None
    assert saved["versions"]["python"] == ".".join(map(str, sys.version_info[:3]))
    assert {"torch", "lightning", "gin-config", "torchmetrics", "ginlight"} <= set(saved["versions"])


class _Console(io.StringIO):
    def isatty(self) -> bool:
        return False


def test_the_console_is_copied_line_by_line_a_redrawn_bar_once_as_last_shown(tmp_path, monkeypatch):
    console = _Console()
    monkeypatch.setattr(sys, "stdout", console)
    with rundir.console_to_file(tmp_path / "train.log"):
        print("start")
        sys.stdout.write("Epoch 0: 10%\rEpoch 0: 50%\rEpoch 0: 100%\n")
        sys.stdout.write("\x1b[A erased bar\n")  # tqdm moving the cursor up: left out of the file
        sys.stdout.write("half a ")
        sys.stdout.write("line\n")
        sys.stdout.write("unfinished")
    assert sys.stdout is console
    assert console.getvalue().startswith("start\nEpoch 0: 10%\rEpoch 0: 50%")  # the console sees everything
    assert (tmp_path / "train.log").read_text() == "start\nEpoch 0: 100%\nhalf a line\n"


def test_logging_handlers_bound_to_the_console_write_to_the_file_too_and_are_given_back(tmp_path, monkeypatch):
    console = _Console()
    monkeypatch.setattr(sys, "stderr", console)
    logger = logging.getLogger("ginlight-test-rundir")
    handler = logging.StreamHandler(sys.stderr)
    logger.addHandler(handler)
    try:
        with rundir.console_to_file(tmp_path / "train.log"):
            logger.warning("through logging")
        assert handler.stream is console
    finally:
        logger.removeHandler(handler)
    assert "through logging\n" in (tmp_path / "train.log").read_text()
    assert "through logging\n" in console.getvalue()


@pytest.mark.parametrize("existing", ["", "earlier run\n"])
def test_train_log_is_appended_to_so_a_resumed_run_keeps_its_history(tmp_path, monkeypatch, existing):
    (tmp_path / "train.log").write_text(existing)
    monkeypatch.setattr(sys, "stdout", _Console())
    with rundir.console_to_file(tmp_path / "train.log"):
        print("resumed")
    assert (tmp_path / "train.log").read_text() == existing + "resumed\n"


def test_a_stream_kept_from_the_run_writes_to_the_console_once_the_run_is_over(tmp_path, monkeypatch):
    """A library's handler made during the run holds the tee; after the run it must not fail (an exit hook's
    write to a closed file ended a completed run with status 120)."""
    console = _Console()
    monkeypatch.setattr(sys, "stdout", console)
    with rundir.console_to_file(tmp_path / "train.log"):
        kept = sys.stdout
        print("during")
    print("after", file=kept, flush=True)
    assert (tmp_path / "train.log").read_text() == "during\n"
    assert console.getvalue() == "during\nafter\n"


# ---- RunDir: the one owner of the layout ------------------------------------------------------


def _run(folder: Path, record: object = None, files: tuple[str, ...] = ()) -> Path:
    folder.mkdir(parents=True)
    if record is not None:
        (folder / "run.json").write_text(record if isinstance(record, str) else json.dumps(record))
    for name in files:
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text("")
    return folder


def test_a_run_directory_is_recognised_by_any_of_its_records_and_opened_only_with_what_is_needed(tmp_path):
    whole = _run(tmp_path / "runs" / "exp" / "1", {"status": "completed"}, ("operative_config.gin", "config.gin"))
    cut_short = _run(tmp_path / "runs" / "exp" / "2", None, ("config.gin",))
    plain = _run(tmp_path / "plain")
    assert [rundir.RunDir.recognises(p) for p in (whole, cut_short, plain)] == [True, True, False]
    run = rundir.RunDir.open(whole, needs=("run.json", "operative_config.gin"))
    assert (run.name, run.record_file, run.last_checkpoint) == (
        "exp", whole / "run.json", whole / "checkpoints" / "last.ckpt")
    with pytest.raises(ConfigError, match=r"'.*plain' is not a run directory: it has no run.json\.") as caught:
        rundir.RunDir.open(plain)
    assert "ginlight-train" in caught.value.hint
    with pytest.raises(ConfigError, match="is a run directory cut short: it has no run.json and no operative"):
        rundir.RunDir.open(cut_short, needs=("run.json", "operative_config.gin"))


@pytest.mark.parametrize("text, says", [("{\"status\": ", "cannot be read (cut short, or edited by hand?)"),
                                        ("[1, 2]", "holds list, not an object")])
def test_a_record_that_cannot_be_read_is_an_error_located_at_the_file(tmp_path, text, says):
    run = rundir.RunDir(_run(tmp_path / "run", text))
    with pytest.raises(ConfigError, match=re.escape(says)) as caught:
        run.read_record()
    assert caught.value.location == str(tmp_path / "run" / "run.json")


def test_the_run_holding_a_checkpoint_or_an_operative_config_is_found_and_names_what_it_ran(tmp_path):
    run = _run(tmp_path / "runs" / "gan" / "20240101-000000", {}, ("checkpoints/last.ckpt", "operative_config.gin"))
    assert rundir.RunDir.holding(run / "checkpoints" / "last.ckpt").path == run
    assert rundir.RunDir.holding(run / "operative_config.gin").path == run
    assert rundir.RunDir.holding(tmp_path / "elsewhere.ckpt") is None
    assert rundir.name_for(run / "operative_config.gin") == "gan"  # a rerun lands beside the run it repeats
    assert rundir.name_for(tmp_path / "classifier.gin") == "classifier"


def test_the_best_checkpoint_is_looked_up_by_name_else_last_ckpt_else_none(tmp_path):
    run = rundir.RunDir(_run(tmp_path / "run", {"best_checkpoint": "/moved/away/epoch=1.ckpt"},
                             ("checkpoints/epoch=1.ckpt", "checkpoints/last.ckpt")))
    assert run.best_checkpoint() == run.checkpoints / "epoch=1.ckpt" == run.checkpoint()
    (run.checkpoints / "epoch=1.ckpt").unlink()
    assert run.best_checkpoint() is None and run.checkpoint() == run.last_checkpoint
    run.last_checkpoint.unlink()
    with pytest.raises(ConfigError, match="has no checkpoint"):
        run.checkpoint()
