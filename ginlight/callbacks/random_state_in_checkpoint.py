"""The random number generators' states, saved in each checkpoint and restored on resume."""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import torch
from lightning import Callback

__all__ = ["RandomStateInCheckpoint"]


class RandomStateInCheckpoint(Callback):
    """Saves the random number generators' states in each checkpoint and restores them on resume.

    Lightning restores weights, optimizer, schedulers and loop counters, but not
    the generators, and an unseeded ``DataLoader(shuffle=True)`` draws each
    epoch's order from torch's global one. Stored as tensors and plain Python
    values so the checkpoint still loads with ``weights_only=True``.
    """

    def state_dict(self) -> dict[str, Any]:
        kind, keys, position, has_gauss, cached = np.random.get_state()
        version, python_state, gauss = random.getstate()
        return {
            "torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else [],
            "numpy": [kind, keys.tolist(), position, has_gauss, cached],
            "python": [version, list(python_state), gauss],
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        torch.set_rng_state(state["torch"])
        if state["cuda"] and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["cuda"])
        kind, keys, position, has_gauss, cached = state["numpy"]
        np.random.set_state((kind, np.array(keys, dtype=np.uint32), position, has_gauss, cached))
        version, python_state, gauss = state["python"]
        random.setstate((version, tuple(python_state), gauss))
