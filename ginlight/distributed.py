"""Ranks that a launcher starts itself (torchrun, a cluster's srun) agree on one run.

Lightning's own DDP launcher reruns the command for each extra rank after rank 0
has chosen the run directory and seed, and passes them on through the
environment (see :mod:`ginlight.experiment`). A launcher such as torchrun or
SLURM's srun starts every rank at once instead, so the ranks agree through
torch.distributed: the process group is initialised early (Lightning reuses it)
and rank 0's choices are broadcast. srun's tasks are read, and their group
addressed, as Lightning's own ``SLURMEnvironment`` reads them, so ginlight and
Lightning agree on every rank.
"""

from __future__ import annotations

import functools
import os
from typing import Any

import torch
import torch.distributed as dist
from lightning.fabric.plugins.environments import SLURMEnvironment

from ginlight.errors import ConfigError

__all__ = ["launched_rank", "srun_tasks", "from_rank_zero"]


def launched_rank() -> int | None:
    """This process's global rank when a launcher started all ranks (``RANK`` and
    ``WORLD_SIZE`` > 1 set in the environment, or srun's tasks); None otherwise."""
    if "RANK" in os.environ and int(os.environ.get("WORLD_SIZE", "1")) > 1:
        return int(os.environ["RANK"])
    tasks = srun_tasks()
    return None if tasks is None else tasks.global_rank()


def srun_tasks() -> SLURMEnvironment | None:
    """Lightning's SLURM environment when srun started this process as one of several tasks of a step.

    A batch script's own process (no ``SLURM_STEP_ID``) is one process whatever
    ``--ntasks`` says: only srun starts the tasks. Lightning's refusal of ``srun -n N``
    (it needs ``--ntasks-per-node``) is raised here, before anything is built.
    """
    if "SLURM_STEP_ID" not in os.environ or not SLURMEnvironment.detect() or int(os.environ["SLURM_NTASKS"]) < 2:
        return None
    try:
        return SLURMEnvironment()
    except RuntimeError as exc:
        raise ConfigError(str(exc), hint="Start the tasks with srun --ntasks-per-node=N, N matching "
                                         "Trainer.devices (and --nodes matching Trainer.num_nodes).") from None


def from_rank_zero(value: Any) -> Any:
    """Rank 0's ``value`` on every rank; every rank must call it, in the same order."""
    if not dist.is_initialized():
        backend = "cpu:gloo,cuda:nccl" if torch.cuda.is_available() else "gloo"
        tasks = srun_tasks()
        if tasks is None:  # torchrun and the like: RANK, WORLD_SIZE, MASTER_ADDR and MASTER_PORT
            dist.init_process_group(backend=backend)
        else:  # the address and port Lightning derives from the node list and job id
            dist.init_process_group(backend=backend, init_method=f"tcp://{tasks.main_address}:{tasks.main_port}",
                                    rank=tasks.global_rank(), world_size=tasks.world_size())
    shared = [value]
    dist.broadcast_object_list(shared, src=0, group=_objects_group())
    return shared[0]


@functools.cache
def _objects_group() -> Any:
    """The gloo group rank 0's choices travel on, whatever the device backend: made once per process, and kept, as
    the process group it belongs to is (a resource of the process, not state of a run)."""
    return dist.new_group(backend="gloo")
