"""ginlight-runs: many runs in one table, their differing bindings, filters, formats, plots, tags, bad input."""

from __future__ import annotations

import csv
import io
import json
import re
import shlex
import shutil
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pytest
import steering
from conftest import CONFIGS, REPO, SHORT, bindings, ginlight_train, read_record, run_command, run_dirs
from PIL import Image
from tensorboard.backend.event_processing import event_accumulator
from test_bad_inputs import run_command as entry_point

from ginlight import curves
from ginlight.runs import Listing, read_runs

pytestmark = pytest.mark.slow

# Every run is steered (tests/steering.py): KeyboardInterrupt at a step interrupts it as Ctrl-C does,
# RuntimeError fails it; all have the wrapper in their config, so they differ only in the bindings given.
COMMON = [*SHORT, "MAX_EPOCHS=1", "Trainer.log_every_n_steps=1"]
# Each run: its bindings (two differ between the runs), how it is stopped, its tags and notes.
RUNS = {
    "completed": ([], {}, ["--tags=baseline", "--notes=the reference | first"]),
    "failed": (["LR=0.01"], {"STOP_AT_STEP": "3", "STOP_WITH": "RuntimeError"}, ["--tags=baseline,unstable"]),
    "interrupted": (["BATCH_SIZE=16"], {"STOP_AT_STEP": "3", "STOP_WITH": "KeyboardInterrupt"}, []),
}
DIFFERING = {
    "completed": {"BATCH_SIZE": "32", "LR": "0.003"},
    "failed": {"BATCH_SIZE": "32", "LR": "0.01"},
    "interrupted": {"BATCH_SIZE": "16", "LR": "0.003"},
}
FIELDS = ["name", "start_time", "duration_s", "status", "stage", "tags", "notes"]


@pytest.fixture(scope="module")
def lab(tmp_path_factory) -> dict[str, Path]:
    """``{"root": the runs' root, <status>: its run directory}``: three classifier runs made by ginlight-train."""
    project = tmp_path_factory.mktemp("project")
    steering.write_project(project)
    root = tmp_path_factory.mktemp("lab") / "runs"
    made = {"root": root}
    for status, (values, env, flags) in RUNS.items():
        before = set(run_dirs(root)) if root.exists() else set()
        result = ginlight_train(f"--gin_file={CONFIGS / 'classifier.gin'}", f"--gin_file={project / 'steered.gin'}",
                                f"--project={project}", f"--root_dir={root}", *bindings(*COMMON, *values), *flags,
                                env=env)
        (made[status],) = set(run_dirs(root)) - before
        assert read_record(made[status])["status"] == status, result.stderr
    return made


def ginlight_runs(*args: str) -> subprocess.CompletedProcess:
    return run_command("ginlight-runs", *args)


def listed(*args: str) -> dict:
    """``ginlight-runs ARGS --format=json``, parsed."""
    result = ginlight_runs(*args, "--format=json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def _table(text: str) -> list[dict[str, str]]:
    """The rows of a ``--format=table`` listing, cut at the columns' offsets in its header."""
    header, rule, *rows = text.splitlines()
    starts = [match.start() for match in re.finditer(r"\S+", rule)]
    names = [header[start:end].strip() for start, end in zip(starts, [*starts[1:], None])]
    return [{name: row[start:end].strip() for name, start, end in zip(names, starts, [*starts[1:], None])}
            for row in rows]


def _statuses(runs: list[dict]) -> list[str]:
    return sorted(run["status"] for run in runs)


def test_the_table_shows_the_two_differing_bindings_and_every_status(lab):
    result = ginlight_runs(str(lab["root"]))
    assert result.returncode == 0, result.stderr
    rows = _table(result.stdout)
    metrics = sorted({name for status in RUNS for name in read_record(lab[status])["metrics"]})
    assert list(rows[0]) == [*FIELDS, "BATCH_SIZE", "LR", *metrics]
    by_status = {row["status"]: row for row in rows}
    assert sorted(by_status) == ["completed", "failed", "interrupted"]
    for status, values in DIFFERING.items():
        row, record = by_status[status], read_record(lab[status])
        assert {name: row[name] for name in values} == values
        assert row["name"] == lab[status].relative_to(lab["root"]).as_posix()
        assert row["stage"] == "fit"
        assert row["start_time"] == datetime.fromisoformat(record["start_time"]).strftime("%Y-%m-%d %H:%M:%S")
        assert {name: row[name] for name in record["metrics"]} == {
            name: f"{value:.4g}" for name, value in record["metrics"].items()}
    assert (by_status["completed"]["tags"], by_status["failed"]["tags"]) == ("baseline", "baseline,unstable")
    assert result.stderr == ""  # nothing to warn about


def test_json_and_csv_hold_every_field_exactly(lab):
    report = listed(str(lab["root"]))
    assert report["bindings"] == ["BATCH_SIZE", "LR"]
    runs = {run["status"]: run for run in report["runs"]}
    for status in RUNS:
        record = read_record(lab[status])
        start, end = (datetime.fromisoformat(record[key]) for key in ("start_time", "end_time"))
        assert runs[status] == {
            "name": lab[status].relative_to(lab["root"]).as_posix(), "run_dir": str(lab[status]),
            "start_time": record["start_time"], "end_time": record["end_time"],
            "duration_s": (end - start).total_seconds(), "status": status, "stage": "fit",
            "tags": record["tags"], "notes": record["notes"], "bindings": DIFFERING[status],
            "metrics": record["metrics"], "warnings": [],
        }
    assert read_record(lab["completed"])["notes"] == "the reference | first"

    result = ginlight_runs(str(lab["root"]), "--format=csv")
    assert result.returncode == 0, result.stderr
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert len(rows) == 3
    for row in rows:
        run = runs[row["status"]]
        assert {key: row[key] for key in ("name", "run_dir", "start_time", "stage", "notes")} == {
            key: run[key] or "" for key in ("name", "run_dir", "start_time", "stage", "notes")}
        assert float(row["duration_s"]) == run["duration_s"]
        assert (row["tags"].split(",") if row["tags"] else []) == run["tags"]
        assert {name: row[name] for name in report["bindings"]} == run["bindings"]
        assert {name: float(row[name]) for name in run["metrics"]} == run["metrics"]
        assert all(row[name] == "" for name in report["metrics"] if name not in run["metrics"])

    markdown = ginlight_runs(str(lab["root"]), "--format=markdown").stdout.splitlines()
    assert markdown[0].startswith("| name | start_time |") and markdown[1].startswith("|---|")
    assert len(markdown) == 5
    assert "the reference \\| first" in markdown[2] + markdown[3] + markdown[4]


def test_filters_tags_and_sorting(lab):
    root = str(lab["root"])
    assert _statuses(listed(root, "--tags=baseline")["runs"]) == ["completed", "failed"]
    only_failed = listed(root, "--tags=baseline,unstable")
    assert _statuses(only_failed["runs"]) == ["failed"]
    assert only_failed["bindings"] == []  # one run: nothing differs
    assert _statuses(listed(root, "--filter=status=failed")["runs"]) == ["failed"]
    assert _statuses(listed(root, "--filter=status=*ed")["runs"]) == ["completed", "failed", "interrupted"]
    assert _statuses(listed(root, "--filter=BATCH_SIZE=16")["runs"]) == ["interrupted"]
    assert _statuses(listed(root, "--filter=LR=0.0*", "--filter=BATCH_SIZE=32")["runs"]) == ["completed", "failed"]
    assert _statuses(listed(root, "--filter=AdamW.lr=0.01")["runs"]) == ["failed"]  # written %LR, matched resolved
    assert _statuses(listed(root, "--filter=name=classifier/*")["runs"]) == ["completed", "failed", "interrupted"]
    assert _statuses(listed(root, "--filter=name=gan/*")["runs"]) == []
    assert [run["status"] for run in listed(root, "--sort=BATCH_SIZE")["runs"]][0] == "interrupted"
    assert [run["status"] for run in listed(root, "--sort=-LR")["runs"]][0] == "failed"
    durations = [run["duration_s"] for run in listed(root, "--sort=-duration_s")["runs"]]
    assert durations == sorted(durations, reverse=True)

    mistake = ginlight_runs(root, "--filter=lr=0.01")
    assert mistake.returncode == 2
    assert "--filter: 'lr' is not a column of these runs" in mistake.stderr and "LR" in mistake.stderr
    mistake = ginlight_runs(root, "--sort=val/acuracy")
    assert mistake.returncode == 2 and "Did you mean val/accuracy" in mistake.stderr
    assert ginlight_runs(root, "--filter=status").returncode == 2


def _events(run_dir: Path, tag: str) -> tuple[list[int], list[float]]:
    accumulator = event_accumulator.EventAccumulator(str(run_dir / "tensorboard"),
                                                     size_guidance={event_accumulator.SCALARS: 0})
    accumulator.Reload()
    events = accumulator.Scalars(tag)
    return [event.step for event in events], [event.value for event in events]


def test_the_plot_is_a_png_with_one_curve_per_run(lab, tmp_path):
    png = tmp_path / "loss.png"
    result = ginlight_runs(str(lab["root"]), "--plot=train/loss_step", f"--plot_file={png}")
    assert result.returncode == 0, result.stderr
    assert f"3 curves of train/loss_step in {png}" in result.stderr
    with Image.open(png) as image:
        assert image.format == "PNG" and image.size == (800, 500)

    found = curves.curves(Listing.of(read_runs([lab["root"]])), "train/loss_step")
    figure = curves.plot(found, "train/loss_step", tmp_path / "again.png")
    lines = {line.get_label(): line for line in figure.axes[0].get_lines()}
    assert len(lines) == 3
    for status, values in DIFFERING.items():
        line = lines[f"BATCH_SIZE={values['BATCH_SIZE']}, LR={values['LR']}"]
        steps, losses = _events(lab[status], "train/loss_step")
        assert steps and (list(line.get_xdata()), list(line.get_ydata())) == (steps, losses)

    missing = ginlight_runs(str(lab["root"]), "--plot=val/nothing", f"--plot_file={tmp_path / 'none.png'}")
    assert missing.returncode == 2 and "none of the listed runs logged 'val/nothing'" in missing.stderr


def test_tags_and_notes_are_recorded_and_sent_to_tensorboard(lab):
    record = read_record(lab["completed"])
    assert (record["tags"], record["notes"]) == (["baseline"], "the reference | first")
    assert (read_record(lab["interrupted"])["tags"], read_record(lab["interrupted"])["notes"]) == ([], None)
    accumulator = event_accumulator.EventAccumulator(str(lab["completed"] / "tensorboard"),
                                                     size_guidance={event_accumulator.TENSORS: 0})
    accumulator.Reload()
    texts = {tag: accumulator.Tensors(f"{tag}/text_summary")[0].tensor_proto.string_val[0].decode()
             for tag in ("tags", "notes")}
    assert texts == {"tags": "baseline", "notes": "the reference | first"}


def test_set_tags_rewrites_only_the_tags(lab, tmp_path):
    run_dir = tmp_path / "runs" / "classifier" / "copy"
    shutil.copytree(lab["completed"], run_dir)
    before, files = read_record(run_dir), sorted(path.name for path in run_dir.iterdir())
    result = ginlight_runs(f"--set_tags={run_dir}", "final", "aug,best")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"ginlight-runs: tags of {run_dir}: final, aug, best"
    assert read_record(run_dir) == {**before, "tags": ["final", "aug", "best"]}
    assert sorted(path.name for path in run_dir.iterdir()) == files  # no temporary file left behind
    assert [run["run_dir"] for run in listed(str(tmp_path / "runs"), "--tags=aug")["runs"]] == [str(run_dir)]
    assert ginlight_runs(f"--set_tags={run_dir}").returncode == 0
    assert read_record(run_dir) == {**before, "tags": []}

    not_a_run = ginlight_runs(f"--set_tags={tmp_path}", "x")
    assert not_a_run.returncode == 2 and "has no run.json" in not_a_run.stderr


def _copy(lab: dict[str, Path], root: Path, name: str) -> Path:
    run_dir = root / name
    shutil.copytree(lab["completed"], run_dir)
    return run_dir


def _edit(run_dir: Path, **fields) -> None:
    (run_dir / "run.json").write_text(json.dumps({**read_record(run_dir), **fields}))


def test_bad_runs_are_rows_with_warnings_and_never_hide_the_others(lab, tmp_path):
    bad = tmp_path / "bad"
    cut = _copy(lab, bad, "cut-short")
    text = (cut / "run.json").read_text()
    (cut / "run.json").write_text(text[: len(text) // 2])
    _edit(_copy(lab, bad, "hand-edited"), metrics={"val/loss": "low", "val/accuracy": 0.5}, tags="x",
          start_time="yesterday", status="done")
    _edit(_copy(lab, bad, "running"), status="running", end_time=None)
    (_copy(lab, bad, "no-operative-config") / "operative_config.gin").unlink()
    (_copy(lab, bad, "unparsable-config") / "operative_config.gin").write_text("Trainer.max_epochs = (\n")
    _edit(_copy(lab, bad, "pruned"), status="pruned")

    result = ginlight_runs(str(lab["root"]), str(bad), "--format=json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["bindings"] == ["BATCH_SIZE", "LR"]
    runs = {run["name"]: run for run in report["runs"]}
    assert len(runs) == 9
    for status in RUNS:  # the good runs are whole
        assert runs[lab[status].relative_to(lab["root"]).as_posix()]["warnings"] == []
    expected = {
        "cut-short": ["run.json cannot be read (cut short, or edited by hand?)"],
        "hand-edited": ["run.json: start_time 'yesterday' is not an ISO time", "run.json: tags is 'x', not a list",
                        "run.json: metrics ['val/loss'] are not numbers", "run.json: unknown status 'done'"],
        "running": ["still running, or stopped without recording it (killed?)"],
        "no-operative-config": ["no operative_config.gin: its bindings are unknown"],
        "unparsable-config": ["operative_config.gin cannot be read, its bindings are unknown: "],
        "pruned": [],
    }
    for name, starts in expected.items():
        warnings = runs[name]["warnings"]
        assert len(warnings) == len(starts) and all(any(w.startswith(s) for w in warnings) for s in starts), warnings
        for warning in warnings:
            assert f"ginlight-runs: warning: {bad / name}: {warning}" in result.stderr
    assert runs["cut-short"]["status"] is None and runs["cut-short"]["bindings"] == DIFFERING["completed"]
    assert runs["hand-edited"]["metrics"] == {"val/accuracy": 0.5} and runs["hand-edited"]["status"] == "done"
    assert runs["running"]["duration_s"] is None and runs["running"]["status"] == "running"
    assert runs["no-operative-config"]["bindings"] == {"BATCH_SIZE": None, "LR": None}
    assert runs["pruned"]["status"] == "pruned"

    table = ginlight_runs(str(lab["root"]), str(bad))
    assert table.returncode == 0, table.stderr
    rows = {row["name"]: row for row in _table(table.stdout)}
    assert list(rows["running"])[-1] == "warnings"
    assert rows["running"]["warnings"].startswith("still running") and rows["pruned"]["warnings"] == ""


def test_the_readme_commands_run_in_the_folder_holding_runs(lab):
    readme = (REPO / "README.md").read_text()
    section = readme[readme.index("## Many runs at a glance"):readme.index("## Debug presets")]
    commands = re.findall(r"^    (ginlight-runs.*)$", section, re.M)
    assert len(commands) == 5
    before = read_record(lab["completed"])
    for line in commands:
        line = line.replace("<timestamp>", lab["completed"].name)
        result = run_command(*shlex.split(line), cwd=lab["root"].parent)
        assert result.returncode == 0, (line, result.stderr)
        assert result.stdout.strip(), line
    assert (lab["root"].parent / "val_accuracy.png").is_file()
    assert read_record(lab["completed"]) == before  # --set_tags gave it the tags it had


def test_resume_and_reproduce_refuse_tags_and_notes(lab, tmp_path, capsys, monkeypatch):
    """Through ginlight-train's entry point in this process, as test_bad_inputs.py runs it: nothing trains."""
    for flag in (f"--resume={lab['interrupted']}", f"--reproduce={lab['completed']}"):
        status, stderr = entry_point([flag, "--tags=x", "--notes=y"], tmp_path, capsys, monkeypatch)
        assert status == 2, stderr
        assert "cannot be combined with --tags, --notes" in stderr


def test_a_missing_root_is_an_error():
    result = ginlight_runs("/nonexistent/runs")
    assert result.returncode == 2 and "'/nonexistent/runs' is not a folder" in result.stderr


def test_listing_imports_neither_torch_nor_lightning(lab):
    script = ("import json, sys\nfrom ginlight.cli import runs\n"
              f"try:\n    runs.run(['ginlight-runs', {str(lab['root'])!r}, '--sort=-val/accuracy'])\n"
              "except SystemExit as exit:\n    assert exit.code == 0, exit.code\n"
              "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'lightning'))))")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.splitlines()[-1]) == []


def test_the_listing_benchmark_runs():
    result = subprocess.run([sys.executable, "-m", "benchmarks.runs_listing", "--runs=30", "--repeats=1"], cwd=REPO,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "| `ginlight-runs ROOT` |" in result.stdout
    assert "torch or Lightning imported by the listing: none" in result.stdout
