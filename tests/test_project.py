"""Bring your own code: the README's project, outside the repository, through `--project`.

The files and commands are taken from the README's "Bring your own code" section,
so the README shows what these tests run.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
import torch
from conftest import REPO, ginlight_train, read_record, run_dirs
from outcomes import assert_same_outcome

pytestmark = pytest.mark.slow

SECTION = re.search(r"^## Bring your own code\n(.*?)^## ", (REPO / "README.md").read_text(), re.S | re.M)[1]
# Fenced blocks whose first line names the file they hold: "# my_lab/models.py".
FILES = {match[2]: match[1] for match in re.finditer(r"^```\w*\n(# (\S+)\n.*?)^```", SECTION, re.S | re.M)}
COMMANDS = re.findall(r"^    (ginlight-train .*)$", SECTION, re.M)


def _run(command: str, cwd: Path):
    """Runs a README command line with the real ginlight-train."""
    return ginlight_train(*shlex.split(command)[1:], cwd=cwd)


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    """The README's files, written to a folder outside the repository."""
    folder = tmp_path_factory.mktemp("outside")
    for name, text in FILES.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text)
    return folder


@pytest.fixture(scope="module")
def first_run(project) -> Path:
    result = _run(COMMANDS[0], cwd=project)
    assert result.returncode == 0, result.stderr
    (run_dir,) = run_dirs(project / "runs")
    return run_dir


def test_readme_shows_a_package_a_gin_file_and_the_commands():
    assert set(FILES) == {"my_lab/__init__.py", "my_lab/models.py", "my_lab/data.py", "line.gin"}
    assert COMMANDS == [
        "ginlight-train --project=my_lab --gin_file=line.gin",
        "ginlight-train --project=my_lab --gin_file=line.gin --gin_bindings='HIDDEN=64'",
    ]


def test_project_code_trains_and_its_imports_macros_and_scopes_reach_the_operative_config(first_run, project):
    record = read_record(first_run)
    assert record["status"] == "completed"
    assert {"train/loss", "val/loss"} <= set(record["metrics"])
    text = (first_run / "operative_config.gin").read_text()
    assert f"# ginlight-path: {project}\n" in text
    for module in ("my_lab.models", "my_lab.data"):  # gin may alias a second import of one package
        assert re.search(rf"^import {module}( as \w+)?$", text, re.M), module
    assert "HIDDEN = 32\n" in text and "TwoLayerNet.hidden = %HIDDEN\n" in text
    assert "train/noisy_line.seed = 0\n" in text and "val/noisy_line.seed = 1\n" in text
    assert "val/noisy_line.n = 64\n" in text and "train/noisy_line.n = 256\n" in text  # scoped, then default


def test_a_macro_overridden_on_the_command_line_reaches_every_use(project, first_run):
    result = _run(COMMANDS[1], cwd=project)
    assert result.returncode == 0, result.stderr
    run_dir = [d for d in run_dirs(project / "runs") if d != first_run][0]
    assert "HIDDEN = 64\n" in (run_dir / "operative_config.gin").read_text()
    weights = torch.load(run_dir / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)["state_dict"]
    assert weights["model.net.0.weight"].shape == (64, 1)


def test_the_operative_config_reruns_elsewhere_without_project(first_run, tmp_path):
    result = ginlight_train(f"--gin_file={first_run / 'operative_config.gin'}", f"--root_dir={tmp_path}", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    (rerun,) = run_dirs(tmp_path)
    assert_same_outcome(first_run, rerun)


def test_without_project_the_import_fails_with_a_hint_to_pass_it(project, tmp_path):
    result = ginlight_train(f"--gin_file={project / 'line.gin'}", f"--root_dir={tmp_path}", cwd=tmp_path)
    assert result.returncode == 2
    assert "my_lab" in result.stderr and "--project" in result.stderr
    assert not any(tmp_path.iterdir())
