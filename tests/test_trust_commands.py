"""Planted checkpoints and run directories in fresh processes: nothing they name is imported or run.

A fresh process shows what a refused load imported (``sys.modules``); the commands show the
``--stage=test --ckpt_path`` and ``--ckpt_path`` with ``--gin_file`` routes, and that
``ginlight-runs`` and ``ginlight-diff`` only read. The checkpoints are trained once per module.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys

import pytest
from conftest import CONFIGS, REPO, SHORT, bindings, ginlight_train, read_record, run_dirs
from planted import PAYLOAD_MODULES, attacks, edited_run_dir, payload_folder, plant, write_project

import ginlight

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> dict:
    """Real runs (stack-only and the ``trustlab`` project), every attack planted in each, and edited run directories."""
    root = tmp_path_factory.mktemp("corpus")
    stack = ginlight.train([CONFIGS / "classifier.gin"], [*SHORT, "MAX_EPOCHS=1"], root_dir=root / "runs").run_dir
    lab = write_project(root / "lab")
    project = ginlight.train([lab / "line.gin"], SHORT, projects=[str(lab / "trustlab")],
                             root_dir=root / "runs").run_dir
    (lab / "dataset-built").unlink()
    marker = root / "marker"
    folder = payload_folder(root / "payload", marker)
    cases = []
    for base, run_dir, trusted in (("stack", stack, []), ("project", project, ["trustlab"])):
        for attack in attacks(marker, folder):
            target = root / "planted" / base / f"{attack.name}.ckpt"
            first = plant(run_dir / "checkpoints" / "last.ckpt", attack.lines, target)
            cases.append({"name": f"{base}: {attack.name}", "path": str(target), "trust": trusted,
                          "says": f"line {first + attack.line - 1}: `{attack.culprit}`"})
        (path_folder,) = [attack for attack in attacks(marker, folder) if attack.name == "path folder"]
        edited = edited_run_dir(run_dir, path_folder.lines, root / "edited" / base)
        cases.append({"name": f"{base}: edited run directory", "path": str(edited), "trust": trusted,
                      "says": "`import payload_path` imports a module that is not trusted"})
    env = {"PYTHONPATH": os.pathsep.join([str(folder / "register"), os.environ.get("PYTHONPATH", "")])}
    return {"stack": stack, "project": project, "lab": lab, "marker": marker, "cases": cases, "env": env,
            "root": root}


LOAD_EACH = """
import json, sys
import ginlight
results = []
for case in json.loads(sys.argv[1]):
    try:
        ginlight.load_system(case["path"], trust=case["trust"])
        message = None
    except ginlight.ConfigError as error:
        message = str(error)
    results.append({"name": case["name"], "message": message, "payload": sorted(set(sys.argv[2:]) & set(sys.modules))})
print(json.dumps(results))
"""


def test_in_a_fresh_process_each_planted_load_is_refused_and_imports_nothing_of_the_payload(corpus, tmp_path):
    result = subprocess.run([sys.executable, "-c", LOAD_EACH, json.dumps(corpus["cases"]), *PAYLOAD_MODULES],
                            cwd=tmp_path, capture_output=True, text=True, timeout=300,
                            env={**os.environ, **corpus["env"]})
    assert result.returncode == 0, result.stderr
    results = json.loads(result.stdout.splitlines()[-1])
    assert [r["name"] for r in results] == [c["name"] for c in corpus["cases"]]
    for case, outcome in zip(corpus["cases"], results):
        assert outcome["message"] is not None, case["name"]
        assert case["says"] in outcome["message"] and "trust=[" in outcome["message"], (case["name"], outcome)
        assert outcome["payload"] == [], case["name"]
    assert not corpus["marker"].exists()


def test_stage_test_from_a_planted_checkpoint_exits_2_before_anything_runs(corpus, tmp_path):
    (case,) = [c for c in corpus["cases"] if c["name"] == "stack: os.system"]
    result = ginlight_train("--stage=test", f"--ckpt_path={case['path']}", f"--root_dir={tmp_path / 'runs'}",
                            env=corpus["env"])
    assert result.returncode == 2, result.stderr
    assert case["says"] in result.stderr and "--trust=posix" in result.stderr
    assert result.stderr.count("ginlight-train: error:") == 1 and "Traceback" not in result.stderr
    assert not corpus["marker"].exists() and not (tmp_path / "runs").exists()


def test_a_planted_checkpoint_with_a_gin_file_of_ones_own_is_refused_too(corpus, tmp_path):
    (case,) = [c for c in corpus["cases"] if c["name"] == "stack: register line"]
    result = ginlight_train(f"--gin_file={CONFIGS / 'classifier.gin'}", "--stage=test", f"--ckpt_path={case['path']}",
                            f"--root_dir={tmp_path / 'runs'}", *bindings(*SHORT), env=corpus["env"])
    assert result.returncode == 2, result.stderr
    assert case["says"] in result.stderr and "--trust=payload_register" in result.stderr
    assert not corpus["marker"].exists() and not (tmp_path / "runs").exists()


def test_a_project_checkpoint_runs_with_trust_and_its_run_reproduces_from_anywhere_with_no_flag(corpus, tmp_path):
    """The command docs/security.md shows, on the project's checkpoint."""
    last = corpus["project"] / "checkpoints" / "last.ckpt"
    refused = ginlight_train("--stage=test", f"--ckpt_path={last}", f"--root_dir={tmp_path / 'runs'}")
    assert refused.returncode == 2 and "--trust=trustlab" in refused.stderr, refused.stderr
    (shown,) = re.findall(r"^    (ginlight-train .*)$", (REPO / "docs" / "security.md").read_text(), re.M)
    assert shown == "ginlight-train --stage=test --ckpt_path=their_run/checkpoints/last.ckpt --trust=my_lab"
    args = shlex.split(shown.replace("their_run/checkpoints/last.ckpt", str(last)).replace("my_lab", "trustlab"))
    result = ginlight_train(*args[1:], f"--root_dir={tmp_path / 'runs'}")
    assert result.returncode == 0, result.stderr
    (run_dir,) = run_dirs(tmp_path / "runs")
    assert read_record(run_dir)["status"] == "completed"
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    rerun = ginlight_train(f"--reproduce={run_dir}", f"--root_dir={tmp_path / 'reruns'}", cwd=elsewhere)
    assert rerun.returncode == 0, rerun.stderr
    assert "Reproduced exactly" in rerun.stdout


READ_ONLY = """
import importlib, json, sys
command, first, second, *payload = sys.argv[1:]
sys.argv = [f"ginlight-{command}", first, second]
try:
    importlib.import_module(f"ginlight.cli.{command}").run()
except SystemExit as exit:
    code = exit.code
print(json.dumps({"code": code, "payload": sorted(set(payload) & set(sys.modules)), "torch": "torch" in sys.modules}))
"""


@pytest.mark.parametrize("command", ["runs", "diff"])
def test_runs_and_diff_read_edited_run_directories_without_importing_what_they_name(command, corpus, tmp_path):
    edited = [c["path"] for c in corpus["cases"] if c["name"].endswith("edited run directory")]
    result = subprocess.run([sys.executable, "-c", READ_ONLY, command, *edited, *PAYLOAD_MODULES], cwd=tmp_path,
                            capture_output=True, text=True, timeout=300, env={**os.environ, **corpus["env"]})
    assert result.returncode == 0, result.stderr
    outcome = json.loads(result.stdout.splitlines()[-1])
    assert outcome == {"code": 0, "payload": [], "torch": False}, result.stdout + result.stderr
    assert not corpus["marker"].exists()
