"""ginlight.runcontext: a run's context crosses a process boundary only to the processes that take part in the run,
and the process that reads it keeps none of it in its environment."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from ginlight import runcontext
from ginlight.runcontext import RunContext

TRIAL = {"study": "lr", "storage": "sqlite:///sweep.db", "number": 3}
#: A process that reports what it inherited, as ginlight.train does first.
REPORT = ("import json; from ginlight import runcontext; i = runcontext.inherited(); "
          "print(json.dumps([str(i.run_dir) if i.run_dir else None, i.seed, i.trial]))")


def _started(env: dict[str, str]) -> list:
    """What a Python process started with ``env`` inherited."""
    done = subprocess.run([sys.executable, "-c", REPORT], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_reading_what_a_process_inherited_removes_it_from_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("LOCAL_RANK", "1")  # what Lightning's launcher gives the ranks it starts
    with runcontext.exported(RunContext(tmp_path, tmp_path, seed=7, trial=TRIAL)):
        assert os.environ[runcontext.RUN_DIR_ENV] == str(tmp_path.resolve())
        assert runcontext.inherited() == runcontext.Inherited(tmp_path.resolve(), 7, TRIAL)
        assert not {runcontext.RUN_DIR_ENV, runcontext.SEED_ENV, runcontext.TRIAL_ENV} & set(os.environ)
        assert runcontext.inherited() == runcontext.Inherited()  # read once: nothing is left for another reader


def test_exported_leaves_the_environment_as_it_found_it(monkeypatch, tmp_path):
    monkeypatch.setenv(runcontext.SEED_ENV, "an earlier value")
    monkeypatch.delenv(runcontext.RUN_DIR_ENV, raising=False)
    with runcontext.exported(RunContext(tmp_path, tmp_path, seed=1)):
        assert os.environ[runcontext.SEED_ENV] == "1" and runcontext.TRIAL_ENV not in os.environ
    assert os.environ[runcontext.SEED_ENV] == "an earlier value" and runcontext.RUN_DIR_ENV not in os.environ


@pytest.mark.slow
def test_only_the_ranks_lightning_starts_join_the_run_and_a_sweep_trial_knows_its_trial(tmp_path):
    env = {key: value for key, value in os.environ.items() if key != "LOCAL_RANK"}
    with runcontext.exported(RunContext(tmp_path, tmp_path, seed=5, trial=TRIAL)):
        during = {**env, **{key: os.environ[key] for key in (runcontext.RUN_DIR_ENV, runcontext.SEED_ENV,
                                                              runcontext.TRIAL_ENV)}}
    # A rank Lightning's DDP launcher starts: LOCAL_RANK 1 and up, in a copy of rank 0's environment.
    assert _started({**during, "LOCAL_RANK": "1"}) == [str(tmp_path.resolve()), 5, TRIAL]
    # A process the user's code starts while the run's stage runs, in rank 0 (LOCAL_RANK 0, or none): no role.
    assert _started({**during, "LOCAL_RANK": "0"}) == [None, None, None]
    assert _started(during) == [None, None, None]
    # A sweep's trial process: its trial, and no run to join.
    assert _started({**env, **runcontext.trial_environment(TRIAL)}) == [None, None, TRIAL]
    assert _started(env) == [None, None, None]

