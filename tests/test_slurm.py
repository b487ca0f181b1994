"""SLURM: srun's tasks share one run, a requeued batch job continues its run, sweeps submit trials as jobs.

A real one-node SLURM cluster runs on localhost for these tests (Debian's
``slurm-wlm``, which ``.ci/run`` installs): munged, slurmctld and slurmd as root,
configured from a temporary folder that ``SLURM_CONF`` names. The node has the
machine's CPUs (two here), so the runs are tiny.
"""

from __future__ import annotations

import json
import os
import random
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import steering
from conftest import CONFIGS, SHORT, bindings, command, ginlight_train, read_record, run_dirs
from outcomes import assert_same_outcome

pytestmark = pytest.mark.slow

# The requeue delay of a job (pending, reason BeginTime) is AuthInfo's cred_expire, 120 s unless set.
SLURM_CONF = """\
ClusterName=ginlight-test
SlurmctldHost=localhost(127.0.0.1)
SlurmctldPort={ctld_port}
SlurmdPort={slurmd_port}
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket={home}/munge.socket,cred_expire=10
SlurmUser=root
SlurmdUser=root
StateSaveLocation={home}/state
SlurmdSpoolDir={home}/spool
SlurmctldPidFile={home}/slurmctld.pid
SlurmdPidFile={home}/slurmd.pid
SlurmctldLogFile={home}/slurmctld.log
SlurmdLogFile={home}/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
MpiDefault=none
ReturnToService=2
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
KillWait=2
MinJobAge=600
{node} NodeAddr=127.0.0.1 State=UNKNOWN
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP
"""
DAEMONS_S = 60
JOB_S = 420


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _wait_until(condition, what: str, timeout: float) -> None:
    """Polls ``condition`` (a state SLURM or a run reports) until it holds, failing after ``timeout``."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        time.sleep(0.5)


def job_fields(job_id: str) -> dict[str, str]:
    """``scontrol show job``: JobState, Restarts, ExitCode..."""
    result = subprocess.run(["scontrol", "--oneliner", "show", "job", job_id], capture_output=True, text=True,
                            check=True, timeout=60)
    return dict(re.findall(r"(\w+)=(\S*)", result.stdout))


@pytest.fixture(scope="module")
def cluster():
    """munged, slurmctld and slurmd on localhost, ``SLURM_CONF`` set for the tests' commands; stopped after."""
    for daemon in ("munged", "slurmctld", "slurmd"):
        assert shutil.which(daemon), f"no {daemon}; install Debian's slurm-wlm (.ci/run does)"
    assert os.geteuid() == 0, "the test cluster's daemons run as root"
    home = Path(tempfile.mkdtemp(prefix="ginlight-slurm-"))
    (home / "state").mkdir()
    (home / "spool").mkdir()
    subprocess.run(["mungekey", "--create", f"--keyfile={home / 'munge.key'}"], check=True, timeout=60)
    # `slurmd -C` prints this machine's node line; the node is named localhost instead.
    node = subprocess.run(["slurmd", "-C"], capture_output=True, text=True, check=True, timeout=60).stdout
    node = re.sub(r"^NodeName=\S+", "NodeName=localhost", node.splitlines()[0])
    conf = home / "slurm.conf"
    conf.write_text(SLURM_CONF.format(home=home, node=node, ctld_port=_free_port(), slurmd_port=_free_port()))
    saved = os.environ.get("SLURM_CONF")
    os.environ["SLURM_CONF"] = str(conf)
    try:
        subprocess.run(["munged", "--force", f"--key-file={home / 'munge.key'}", f"--socket={home / 'munge.socket'}",
                        f"--pid-file={home / 'munged.pid'}", f"--log-file={home / 'munged.log'}",
                        f"--seed-file={home / 'munged.seed'}"], check=True, timeout=60)
        subprocess.run(["slurmctld", "-i"], check=True, timeout=60)
        subprocess.run(["slurmd", "-N", "localhost"], check=True, timeout=60)

        def idle() -> bool:
            state = subprocess.run(["sinfo", "-h", "-n", "localhost", "-o", "%T"], capture_output=True, text=True)
            return state.stdout.strip() == "idle"

        _wait_until(idle, "the SLURM node to be idle", DAEMONS_S)
        yield home
    finally:
        subprocess.run(["scontrol", "shutdown"], capture_output=True, timeout=60)
        for pid_file in ("slurmd.pid", "slurmctld.pid"):
            _wait_until(lambda: not _alive(home / pid_file), f"{pid_file[:-4]} to stop", DAEMONS_S)
        subprocess.run(["munged", "--stop", f"--socket={home / 'munge.socket'}"], capture_output=True, timeout=60)
        if saved is None:
            os.environ.pop("SLURM_CONF")
        else:
            os.environ["SLURM_CONF"] = saved
        shutil.rmtree(home, ignore_errors=True)


def _alive(pid_file: Path) -> bool:
    try:
        os.kill(int(pid_file.read_text()), 0)
    except (OSError, ValueError):
        return False
    return True


def requeue(job_id: str, run_dir: Path) -> None:
    """Requeues the job as a preemption does, its run held by tests/steering.py.

    SLURM sends SIGTERM, then SIGKILL ``KillWait`` seconds later. A held run does not end on
    the SIGTERM (it is blocked in a training step), and this cluster's ``proctrack/linuxproc``
    loses it once the batch shell has gone, so SLURM's SIGKILL misses it. The test sends that
    SIGKILL itself, to the process the run's lock file names: a run left holding its directory
    would keep the requeued job from continuing it (one writer per run).
    """
    holder = json.loads((run_dir / "run.lock").read_text())["pid"]
    subprocess.run(["scontrol", "requeue", job_id], check=True, timeout=60)
    os.kill(holder, signal.SIGKILL)


def _fresh(path: Path) -> Path:
    path.mkdir(parents=True)
    return path


# ---- srun: one run across tasks ---------------------------------------------------------------

TWO_TASKS = bindings("MAX_EPOCHS=1", "Trainer.strategy='ddp'", "Trainer.devices=2", *SHORT)


def test_two_srun_tasks_make_one_run_the_same_as_lightnings_own_ddp(cluster, tmp_path):
    args = [f"--gin_file={CONFIGS / 'classifier.gin'}", *TWO_TASKS]
    root = tmp_path / "runs"  # both runs under one root, which run.json records
    result = subprocess.run(["srun", "-N", "1", "--ntasks-per-node=2",
                             *command("ginlight-train", *args, f"--root_dir={root}")],
                            cwd=_fresh(tmp_path / "cwd"), capture_output=True, text=True, timeout=JOB_S)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert result.stdout.count("ginlight-train: completed; run directory:") == 1  # not once per task
    (run_dir,) = run_dirs(root)
    assert len(list(run_dir.parent.iterdir())) == 1
    record = read_record(run_dir)
    assert record["status"] == "completed" and record["seed"] == 0
    slurm = record["slurm"]
    assert (slurm["ntasks"], slurm["nodelist"], slurm["restart_count"]) == (2, "localhost", 0)
    _wait_until(lambda: job_fields(slurm["job_id"])["JobState"] != "COMPLETING", "the job to end", JOB_S)
    assert job_fields(slurm["job_id"])["JobState"] == "COMPLETED"
    assert "SLURM auto-requeueing enabled" in (run_dir / "train.log").read_text()  # Lightning saw SLURM's tasks

    # Lightning's own launcher, outside SLURM, makes the same run: files, checkpoints, config, record.
    local = ginlight_train(*args, f"--root_dir={root}", timeout=JOB_S)
    assert local.returncode == 0, local.stderr[-3000:]
    (local_dir,) = set(run_dirs(root)) - {run_dir}
    assert_same_outcome(local_dir, run_dir, ignore_record=["slurm"])


def test_srun_n_is_refused_with_what_to_use_instead(cluster, tmp_path):
    result = subprocess.run(["srun", "-n", "2", *command("ginlight-train", f"--gin_file={CONFIGS / 'classifier.gin'}",
                                                         f"--root_dir={tmp_path / 'runs'}", *TWO_TASKS)],
                            cwd=tmp_path, capture_output=True, text=True, timeout=JOB_S)
    assert result.returncode != 0
    assert "Use `--ntasks-per-node=2` instead" in result.stderr and "srun --ntasks-per-node=N" in result.stderr
    assert not (tmp_path / "runs").exists()


# ---- sbatch: a requeued job continues its run ------------------------------------------------

BATCHES_PER_EPOCH = 3  # Trainer.limit_train_batches in SHORT
EPOCHS = 3
# Every step logged: a step metric is then the last step's in both runs (Lightning keeps the value of the
# last logged step, which for a run resumed past it would be another step's).
# The model is steered (tests/steering.py): held in the job's first start, not once it is requeued.
SETTINGS = bindings(*SHORT, f"MAX_EPOCHS={EPOCHS}", "ModelCheckpoint.monitor = None", "Trainer.log_every_n_steps = 1",
                    *steering.WRAP)


def test_a_batch_job_requeued_at_a_random_step_continues_its_run_to_the_uninterrupted_weights(cluster, tmp_path):
    project = steering.write_project(tmp_path / "project")
    cwd = _fresh(tmp_path / "cwd")
    args = [f"--project={project}", f"--gin_file={CONFIGS / 'classifier.gin'}", *SETTINGS]
    one_thread = {"OMP_NUM_THREADS": "1"}  # the same sums in and out of the job
    root = tmp_path / "runs"  # both runs under one root, which run.json records
    uninterrupted = ginlight_train(*args, f"--root_dir={root}", cwd=cwd, env=one_thread, timeout=JOB_S)
    assert uninterrupted.returncode == 0, uninterrupted.stderr[-3000:]
    (reference,) = run_dirs(root)

    # The script a user writes: it names no run directory, and is the same at every start.
    script = tmp_path / "train.sbatch"
    train = command("ginlight-train", *args, f"--root_dir={root}")
    script.write_text(f"#!/bin/bash\n#SBATCH --requeue\n{shlex.join(train)}\n")
    marker = tmp_path / "held"
    # Held at a random step inside an epoch before the last (whose training metrics a stop inside it would
    # split, docs/reproducibility.md), where the requeue's SIGTERM reaches it.
    step = random.choice([s for s in range(1, (EPOCHS - 1) * BATCHES_PER_EPOCH) if s % BATCHES_PER_EPOCH])
    print(f"held at step {step}")  # shown with a failure
    job_id = subprocess.run(["sbatch", "--parsable", f"--output={tmp_path / 'job.log'}", str(script)], cwd=cwd,
                            env={**os.environ, **one_thread, **steering.hold_env(step, marker)},
                            capture_output=True, text=True, check=True, timeout=60).stdout.strip()
    _wait_until(lambda: marker.exists() or job_fields(job_id)["JobState"] not in ("PENDING", "RUNNING"),
                "the job's held training step", JOB_S)
    assert marker.exists(), (tmp_path / "job.log").read_text()[-3000:]
    (run_dir,) = set(run_dirs(root)) - {reference}
    assert read_record(run_dir)["slurm"]["restart_count"] == 0

    subprocess.run(["scontrol", "requeue", job_id], check=True, timeout=60)  # as a preemption does
    marker.unlink()  # the step finishes, and the run saves there (or, if SIGKILL comes first, at the epoch end)
    _wait_until(lambda: job_fields(job_id)["JobState"] in ("COMPLETED", "FAILED", "CANCELLED"),
                "the requeued job to end", JOB_S)
    fields = job_fields(job_id)
    log = (tmp_path / "job.log").read_text()
    assert (fields["JobState"], fields["Restarts"], fields["ExitCode"]) == ("COMPLETED", "1", "0:0"), \
        f"held at step {step}\n{log[-3000:]}"

    assert run_dirs(root) == [reference, run_dir]  # continued in place, no other directory
    record = read_record(run_dir)
    assert record["status"] == "completed" and record["error"] is None
    assert record["slurm"]["job_id"] == job_id and record["slurm"]["restart_count"] == 1
    assert [r["from_checkpoint"] for r in record["resumptions"]] == [str(run_dir / "checkpoints" / "last.ckpt")]
    # Files, every checkpoint tensor by tensor (weights, optimizer, loops, random states), config, record.
    assert_same_outcome(reference, run_dir, ignore_record=["resumptions", "slurm"])


THREE_CALLS = """
import sys
import ginlight

root, project, gin_file = sys.argv[1:]
for number, lr in enumerate(["1e-3", "2e-3", "3e-3"]):
    steered = {steered} if number == 1 else []  # the second call is the one held, then requeued
    result = ginlight.train([gin_file], [*{settings}, f"torch.optim.AdamW.lr={{lr}}", *steered], projects=[project],
                            root_dir=root)
    print("call", number, result.status, result.run_dir, flush=True)
"""


def test_three_train_calls_in_one_job_make_three_runs_and_after_a_requeue_each_call_finds_its_own(cluster, tmp_path):
    project = steering.write_project(tmp_path / "project")
    root, script = tmp_path / "runs", tmp_path / "three.py"
    settings = [*SHORT, "MAX_EPOCHS=2", "ModelCheckpoint.monitor = None"]
    script.write_text(THREE_CALLS.format(steered=steering.WRAP, settings=settings))
    batch = tmp_path / "three.sbatch"
    batch.write_text(f"#!/bin/bash\n#SBATCH --requeue\n"
                     f"{shlex.join([sys.executable, str(script), str(root), str(project), str(CONFIGS / 'classifier.gin')])}\n")
    marker, log = tmp_path / "held", tmp_path / "job.log"
    job_id = subprocess.run(["sbatch", "--parsable", f"--output={log}", "--open-mode=append", str(batch)],
                            cwd=_fresh(tmp_path / "cwd"),
                            env={**os.environ, "OMP_NUM_THREADS": "1", **steering.hold_env(BATCHES_PER_EPOCH + 1, marker)},
                            capture_output=True, text=True, check=True, timeout=60).stdout.strip()
    # The second call held in its second epoch, after its first checkpoint; the first call completed.
    _wait_until(lambda: marker.exists() or job_fields(job_id)["JobState"] not in ("PENDING", "RUNNING"),
                "the second call's held training step", JOB_S)
    assert marker.exists(), log.read_text()[-3000:]
    first, second = run_dirs(root)
    assert read_record(first)["status"] == "completed" and read_record(second)["status"] == "running"

    requeue(job_id, second)
    _wait_until(lambda: job_fields(job_id)["JobState"] in ("COMPLETED", "FAILED", "CANCELLED"),
                "the requeued job to end", JOB_S)
    fields, output = job_fields(job_id), log.read_text()
    assert (fields["JobState"], fields["Restarts"], fields["ExitCode"]) == ("COMPLETED", "1", "0:0"), output[-3000:]

    runs = run_dirs(root)
    assert runs[:2] == [first, second] and len(runs) == 3, runs  # the third call's run, made after the requeue
    for run_dir, lr in zip(runs, ["1e-3", "2e-3", "3e-3"]):
        record = read_record(run_dir)
        assert record["status"] == "completed" and record["slurm"]["job_id"] == job_id
        assert f"torch.optim.AdamW.lr={lr}" in (run_dir / "config.gin").read_text()
        assert f"AdamW.lr = {float(lr)}" in (run_dir / "operative_config.gin").read_text()
    # Both attempts' output: the first attempt's first call; after the requeue, the first call found its
    # completed run, the second continued its own, the third made its own.
    assert read_record(first)["resumptions"] == [] and read_record(runs[2])["resumptions"] == []
    assert [r["from_checkpoint"] for r in read_record(second)["resumptions"]] == [
        str(second / "checkpoints" / "last.ckpt")]
    assert [line.split()[1:3] for line in output.splitlines() if line.startswith("call ")] == [
        ["0", "completed"], ["0", "completed"], ["1", "completed"], ["2", "completed"]]


# ---- sweeps as SLURM jobs ---------------------------------------------------------------------


def test_a_grid_sweep_runs_its_trials_as_slurm_jobs_a_requeued_one_resumes_and_it_continues(cluster, tmp_path):
    project = steering.write_project(tmp_path / "project")  # trial-001 held in its first start's first step
    sweep = command("ginlight-sweep", f"--gin_file={CONFIGS / 'classifier.gin'}", f"--root_dir={tmp_path / 'runs'}",
                    f"--project={project}",
                    *bindings("MAX_EPOCHS=1", "Trainer.limit_train_batches=2", "Trainer.limit_val_batches=1",
                              "Trainer.enable_progress_bar=False", "Trainer.enable_model_summary=False",
                              *steering.WRAP),
                    "--sweep=torch.optim.AdamW.lr=[1e-3, 3e-3]", "--sweep=BATCH_SIZE=[8, 16]",
                    "--launcher=slurm", "--slurm_partition=debug", "--slurm_time=10", "--slurm_cpus_per_trial=1",
                    "--workers=2")
    marker, cwd = tmp_path / "held", _fresh(tmp_path / "cwd")
    running = subprocess.Popen(sweep, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env={**os.environ, **steering.hold_env(1, marker, run="trial-001")})
    _wait_until(lambda: marker.exists() or running.poll() is not None, "trial-001's first training step", JOB_S)
    assert running.poll() is None, running.communicate()
    (folder,) = (tmp_path / "runs" / "classifier").glob("sweep-*")
    held_job = read_record(folder / "trial-001")["slurm"]["job_id"]
    requeue(held_job, folder / "trial-001")
    stdout, stderr = running.communicate(timeout=2 * JOB_S)
    assert running.returncode == 0, stdout[-3000:] + stderr[-3000:]
    assert "4 of 4 trials completed, 0 failed" in stdout
    assert stdout.count("/4] trial-") == 4

    rows = (folder / "sweep.csv").read_text().splitlines()
    assert len(rows) == 5 and all(",completed," in row for row in rows[1:])
    assert sorted(p.name for p in folder.glob("trial-*")) == [f"trial-{n:03d}" for n in range(4)]  # none rerun
    for number in range(4):
        trial = folder / f"trial-{number:03d}"
        record = read_record(trial)
        assert record["status"] == "completed"
        assert job_fields(record["slurm"]["job_id"])["JobName"] == trial.name  # each trial its own job
    requeued = read_record(folder / "trial-001")
    assert requeued["slurm"]["restart_count"] == 1 and job_fields(held_job)["Restarts"] == "1"
    assert [r["from_checkpoint"] for r in requeued["resumptions"]] == [None]  # held before its first checkpoint
    assert (folder / "summary.md").is_file() and (folder / "best_config.gin").is_file()

    again = subprocess.run(sweep, cwd=cwd, capture_output=True, text=True, timeout=JOB_S)
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    assert "4 finished already" in again.stdout and "4 of 4 trials completed" in again.stdout
    assert sorted(p.name for p in folder.glob("trial-*")) == [f"trial-{n:03d}" for n in range(4)]
