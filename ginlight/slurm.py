"""SLURM: a job's tasks share one run, a requeued job continues it, and sweep trials run as batch jobs.

srun starts every task of a job step at once; :mod:`ginlight.distributed` reads
them as Lightning's ``SLURMEnvironment`` does, and they agree on one run
directory and seed. When SLURM requeues a batch job (preemption,
``scontrol requeue``, or Lightning's auto-requeue on ``--signal=USR1@N`` before
the time limit) it runs the same script again under the same job id, with
``SLURM_RESTART_COUNT`` one higher. So each ``ginlight.train`` call of the script
finds the run that an earlier attempt of its job started with the same config,
recorded in that run's ``run.json`` and ``config.gin``, and continues it from
``checkpoints/last.ckpt`` as ``--resume`` does: nothing in the script has to change.

A sweep's trial is one ``sbatch`` job running the trial's command,
``python -m ginlight.cli.trial`` (:class:`SlurmLauncher`). The sweep's worker
threads keep each trial's Optuna heartbeat while its job waits in the queue, runs,
or is requeued and runs again; the trial reports to the study's storage itself,
and writes its outcome file, as local trials do. The sweep reads that file once
SLURM is done with the job, so the outcome of an attempt that a requeue
interrupted is replaced before it is read. Not submitit: its jobs count as
finished once a result file exists, which the interrupted attempt of a requeued
command writes, and it follows job states through ``sacct``, which needs SLURM's
accounting database.
"""

from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from lightning.fabric.plugins.environments import SLURMEnvironment

from ginlight import distributed, rundir
from ginlight.gin.composed import same_input
from ginlight.errors import ConfigError
from ginlight.rundir import Status

__all__ = ["job", "run_to_continue", "SlurmLauncher", "SlurmJob"]

#: How often a waiting sweep asks SLURM about each of its trials' jobs.
POLL_S = 2
#: Job states in which SLURM is not done with a job: a requeued job goes back to PENDING and runs again.
ACTIVE_STATES = frozenset({"PENDING", "CONFIGURING", "RUNNING", "COMPLETING", "REQUEUED", "REQUEUE_HOLD",
                           "REQUEUE_FED", "RESIZING", "SUSPENDED", "STOPPED", "SIGNALING", "STAGE_OUT"})


def job() -> dict[str, Any] | None:
    """This SLURM job as ``run.json`` records it; None outside a job and in an interactive shell
    (``--job-name=bash`` or ``interactive``, where Lightning's SLURMEnvironment sees no job either)."""
    job_id = SLURMEnvironment.job_id()
    if job_id is None:
        return None
    env = os.environ
    return {
        "job_id": str(job_id),
        "array_job_id": env.get("SLURM_ARRAY_JOB_ID"),
        "array_task_id": env.get("SLURM_ARRAY_TASK_ID"),
        "nodelist": env.get("SLURM_JOB_NODELIST") or env.get("SLURM_NODELIST"),
        "ntasks": int(env.get("SLURM_NTASKS", "1")),
        "restart_count": int(env.get("SLURM_RESTART_COUNT", "0")),  # set from the first requeue on
    }


def run_to_continue(roots: Iterable[str | os.PathLike], run_dir: str | os.PathLike | None, name: str,
                    composed: str, ckpt_path: str | None) -> Path | None:
    """The run that an earlier attempt of this SLURM job started with this config, if any: after a requeue,
    the run to continue.

    ``composed`` is the config as :func:`ginlight.gin.composed.merged_input` composes it
    (what the run recorded as ``config.gin``) and ``ckpt_path`` the checkpoint it
    starts from. Candidates are ``run_dir`` when given, else ``<root>/<name>/*``
    (``name`` may be a glob), oldest first. A run is this call's when its record
    names this job with a lower restart count (``SLURM_RESTART_COUNT``: an earlier
    attempt), the same checkpoint, and the same composed config. The command line
    plays no part: a script that calls ``ginlight.train`` three times makes three
    runs, and after a requeue each call finds its own. A run continued in this
    attempt records this attempt's count, so no later call of it takes that run too
    (a completed one is marked here; the others when they resume). srun's tasks all
    get rank 0's answer.
    """
    this = job()
    if this is None:
        return None
    rank = distributed.launched_rank()
    found = None
    if not rank:
        candidates = [Path(run_dir)] if run_dir is not None else \
            [path for root in roots for path in sorted(Path(root).glob(f"{name}/*"))]
        ckpt = ckpt_path and str(Path(ckpt_path).resolve())
        found = next((str(path) for path in candidates if _started_by(path, this, composed, ckpt)), None)
        if found is not None:
            record = rundir.RunRecord.read(found)
            if record.status == Status.COMPLETED:
                record.update(slurm=this)
    if rank is not None:
        found = distributed.from_rank_zero(found)
    return None if found is None else Path(found)


def _started_by(run_dir: Path, this: dict[str, Any], composed: str, ckpt_path: str | None) -> bool:
    """Whether ``run_dir`` is a training run that an earlier attempt of job ``this`` started with config
    ``composed`` from checkpoint ``ckpt_path``."""
    run = rundir.RunDir(run_dir)
    try:
        record, recorded = run.read_record(), run.config.read_text()
    except (ConfigError, OSError):
        return False
    started = record.slurm or {}
    return (started.get("job_id") == this["job_id"] and started.get("restart_count", 0) < this["restart_count"]
            and record.stage == "fit" and record.ckpt_path == ckpt_path
            and same_input(recorded, composed))


@dataclass(frozen=True)
class SlurmLauncher:
    """Submits each trial of a sweep as a SLURM batch job with these resources.

    Attributes:
        partition: ``sbatch --partition``; None for the cluster's default.
        time: ``sbatch --time`` (``MM``, ``HH:MM:SS``, ``D-HH``...); None for the partition's default.
        cpus_per_trial: ``--cpus-per-task``; also the trial's ``OMP_NUM_THREADS``.
        gpus_per_trial: GPUs per trial (``--gres=gpu:N``); 0 for none.

    Jobs are submitted with ``--requeue``, so that a preempted trial comes back and
    continues its run, and their output goes to the sweep's ``logs/trial-NNN.log``
    (appended to when a job runs again).
    """

    partition: str | None = None
    time: str | None = None
    cpus_per_trial: int = 1
    gpus_per_trial: int = 0

    def start(self, command: Sequence[str], log: Path, env: Mapping[str, str]) -> SlurmJob:
        """Submits ``command`` as a job in the current directory with environment ``env``."""
        options = [f"--job-name={log.stem}", f"--output={log}", "--open-mode=append", "--requeue",
                   f"--cpus-per-task={self.cpus_per_trial}"]
        if self.partition:
            options.append(f"--partition={self.partition}")
        if self.time:
            options.append(f"--time={self.time}")
        if self.gpus_per_trial:
            options.append(f"--gres=gpu:{self.gpus_per_trial}")
        result = _slurm_command(["sbatch", "--parsable", *options, f"--wrap={shlex.join(command)}"],
                                env={**env, "OMP_NUM_THREADS": str(self.cpus_per_trial)})
        return SlurmJob(result.split(";")[0])  # "<job id>[;<cluster>]"


class SlurmJob:
    """A trial's batch job, waited for and stopped like the process of a local trial."""

    def __init__(self, job_id: str):
        self.job_id = job_id
        self.returncode: int | None = None

    def wait(self) -> int:
        """The job's exit status (minus the signal that killed it) once SLURM is done with it; a requeued
        job is not done: it runs again under the same id."""
        exit_code = "0:0"
        while True:
            fields = self._fields()
            if fields is None:  # forgotten by SLURM (MinJobAge): its last state stands
                break
            exit_code = fields.get("ExitCode", exit_code)
            if fields.get("JobState") not in ACTIVE_STATES:
                break
            time.sleep(POLL_S)
        status, killed_by = (int(part) for part in exit_code.split(":"))
        self.returncode = -killed_by if killed_by else status
        return self.returncode

    def send_signal(self, signum: int) -> None:
        """Cancels the job: SLURM sends SIGTERM, on which the run saves a checkpoint, then SIGKILL after
        ``KillWait``; SIGKILL (a second Ctrl-C of the sweep) kills it at once."""
        extra = ["--signal=KILL", "--full"] if signum == signal.SIGKILL else []
        subprocess.run(["scancel", *extra, self.job_id], capture_output=True, timeout=60)

    def _fields(self) -> dict[str, str] | None:
        result = subprocess.run(["scontrol", "--oneliner", "show", "job", self.job_id], capture_output=True,
                                text=True, timeout=60)
        if result.returncode != 0:
            if "Invalid job id" in result.stderr:
                return None
            raise ConfigError(f"scontrol cannot show trial job {self.job_id}: {result.stderr.strip()}",
                              hint="Check that slurmctld is reachable from this machine.")
        return dict(re.findall(r"(\w+)=(\S*)", result.stdout))


def _slurm_command(args: list[str], env: Mapping[str, str] | None = None) -> str:
    """Runs a SLURM client command; its output, or a :class:`ConfigError` saying what SLURM answered."""
    try:
        result = subprocess.run(args, capture_output=True, text=True, timeout=120, env=env)
    except FileNotFoundError:
        raise ConfigError(f"{args[0]} not found: --launcher=slurm submits trials with SLURM's commands.",
                          hint="Run the sweep on a machine with SLURM's client commands (a login node).") from None
    if result.returncode != 0:
        raise ConfigError(f"{args[0]} failed: {result.stderr.strip() or result.stdout.strip()}",
                          location="--launcher=slurm",
                          hint="Check --slurm_partition, --slurm_time, --slurm_cpus_per_trial and "
                               "--slurm_gpus_per_trial against the cluster's limits (sinfo).")
    return result.stdout.strip()
