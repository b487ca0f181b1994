"""Carries gin's configuration into processes that start with it empty.

A process made by the spawn start method (DataLoader workers with
``multiprocessing_context='spawn'``, Lightning's ``ddp_spawn`` ranks) imports
ginlight afresh: gin holds no bindings there, so a configurable called in it
(a transform in a dataset's ``__getitem__``, the optimizer the System builds
when training starts) would silently take its defaults. A :class:`GinConfigCarrier`
travels with what is pickled into such a process and parses the configuration
again when it arrives, after importing the ginlight modules the sending process had
loaded: ginlight's own configurables register as their modules are imported, and
the configuration may name them by their short names (``System``, ``Experiment``).
"""

from __future__ import annotations

import importlib
import os
import sys
from typing import Any, Callable, Sequence

import gin
from lightning import Callback
from lightning.fabric.utilities.seed import pl_worker_init_function

from ginlight import internals
from ginlight.gin import reading, registry
from ginlight.gin.operative import config_str
from ginlight.gin.project import add_to_path

__all__ = ["GinConfigCarrier"]


class GinConfigCarrier(Callback):
    """Holds gin's configuration as text; restores it in a process where gin has none.

    As a callback it travels with the Trainer into ``ddp_spawn`` ranks; as a
    DataLoader ``worker_init_fn`` (see :meth:`wrap_workers`) into workers, where it
    then calls the loader's own ``worker_init_fn`` (or Lightning's worker seeding).

    Args:
        paths: folders the configuration's imports need on ``sys.path``.
        worker_init_fn: the loader's own ``worker_init_fn``, called after the restore.
        text: the configuration; by default gin's current one.
    """

    def __init__(
        self,
        paths: Sequence[str],
        worker_init_fn: Callable[[int], Any] | None = None,
        text: str | None = None,
    ):
        self.text = config_str() if text is None else text
        self.paths = list(paths)
        self.worker_init_fn = worker_init_fn
        # Not the command line's modules: they hold no configurables, and under `python -m` one is __main__.
        self.modules = sorted(name for name in sys.modules
                              if name.startswith("ginlight.") and not name.startswith("ginlight.cli"))

    def __getstate__(self) -> dict[str, Any]:
        return dict(self.__dict__)

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self.restore()

    def restore(self) -> None:
        """Parses the carried configuration unless this process has one already."""
        if internals.parsed_bindings():
            return
        for path in self.paths:
            add_to_path(path)
        for module in self.modules:
            importlib.import_module(module)
        registry.register_referenced(reading.read([], [self.text]), [self.text])
        gin.parse_config(self.text)

    def __call__(self, worker_id: int) -> None:
        if self.worker_init_fn is not None:
            self.worker_init_fn(worker_id)
        elif os.environ.get(internals.SEED_WORKERS_ENV) == "1":
            # Lightning seeds workers only when a loader has no worker_init_fn of its own.
            pl_worker_init_function(worker_id)

    def wrap_workers(self, loader: Any) -> None:
        """Makes ``loader``'s worker processes restore the configuration first."""
        if getattr(loader, "num_workers", 0) > 0 and not isinstance(loader.worker_init_fn, GinConfigCarrier):
            loader.worker_init_fn = GinConfigCarrier(self.paths, loader.worker_init_fn, self.text)
