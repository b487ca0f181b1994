"""Ranks that a launcher starts itself (torchrun, a cluster's srun) agree on one run.

Lightning's own DDP launcher reruns the command for each extra rank after rank 0
has chosen the run directory and seed, and passes them on through the
environment (see :mod:`ginlight.experiment`). A launcher such as torchrun starts
every rank at once instead, so the ranks agree through torch.distributed: the
process group is initialised early (Lightning reuses it) and rank 0's choices
are broadcast.
"""

from __future__ import annotations

import os
from typing import Any

import torch
import torch.distributed as dist

__all__ = ["launched_rank", "from_rank_zero"]

_group: Any = None


def launched_rank() -> int | None:
    """This process's global rank when a launcher started all ranks (``RANK`` and
    ``WORLD_SIZE`` > 1 set in the environment); None otherwise."""
    if "RANK" in os.environ and int(os.environ.get("WORLD_SIZE", "1")) > 1:
        return int(os.environ["RANK"])
    return None


def from_rank_zero(value: Any) -> Any:
    """Rank 0's ``value`` on every rank; every rank must call it, in the same order."""
    global _group
    if not dist.is_initialized():
        backend = "cpu:gloo,cuda:nccl" if torch.cuda.is_available() else "gloo"
        dist.init_process_group(backend=backend)
    if _group is None:
        _group = dist.new_group(backend="gloo")  # objects travel on the CPU whatever the device backend
    shared = [value]
    dist.broadcast_object_list(shared, src=0, group=_group)
    return shared[0]
