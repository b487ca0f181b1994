"""The System's training loader, made resumable in the middle of an epoch.

Lightning saves the position of a training loader that has ``state_dict`` and
``load_state_dict`` in every checkpoint taken inside an epoch, and gives it back on
resume; an ordinary ``DataLoader`` has neither, so a run stopped mid-epoch (SIGTERM,
SIGINT, a requeue) would resume with a fresh shuffle of that epoch.
"""

from __future__ import annotations

from typing import Any, Callable, Iterator

import torch

__all__ = ["ResumableLoader"]


class ResumableLoader:
    """A ``DataLoader`` whose place in its epoch is saved with each checkpoint.

    A ``DataLoader`` draws an epoch's order (the sampler's seed) and its workers'
    base seed from torch's global generator as the epoch's iteration starts, and
    cannot seek. So this records the generator's state at that moment and, at each
    save, how many batches the training loop has taken (``batches_done``: None once it
    has taken all of the epoch's, which may be fewer than the loader's). Resumed,
    it starts the epoch from the recorded state, so the order and the workers' seeds
    are the same, and takes the batches already trained on without handing them to
    the loop. Those are loaded again, as the workers loaded them the first time, which keeps a
    worker's random transforms exact. Then it puts the generator back as the checkpoint left it.
    Everything else is the wrapped loader's (``dataset``, ``batch_size``, ``sampler``...).
    """

    def __init__(self, loader: Any, batches_done: Callable[[], int | None]):
        self.loader = loader
        self._batches_done = batches_done
        self._epoch_start: torch.Tensor | None = None  # the global generator's state as the epoch began
        self._resume: dict[str, Any] | None = None

    def __len__(self) -> int:
        return len(self.loader)

    def __getattr__(self, name: str) -> Any:
        if name == "loader":  # not set yet (an unpickled copy): no recursion
            raise AttributeError(name)
        return getattr(self.loader, name)

    def __iter__(self) -> Iterator[Any]:
        # A generator: nothing is drawn or started until the loop takes the first batch, so an iter() that only
        # checks the loader is iterable (Lightning's, for a loader that is not a DataLoader) changes nothing.
        resume, self._resume = self._resume, None
        if resume is None or resume["epoch_start"] is None or resume["batches"] is None:
            # A new epoch, or one whose batches were all taken: its order comes from the generator as it is now.
            self._epoch_start = torch.get_rng_state()
            yield from self.loader
            return
        resumed = torch.get_rng_state()
        self._epoch_start = resume["epoch_start"]
        torch.set_rng_state(self._epoch_start)
        try:
            batches = iter(self.loader)
            for _ in range(resume["batches"]):
                next(batches)
            # The next batch too, as the training loop fetches it ahead of each step: a loader that draws its
            # order lazily (no workers) draws it here, from the epoch's state.
            following = next(batches)
        finally:
            torch.set_rng_state(resumed)
        yield following
        yield from batches

    def state_dict(self) -> dict[str, Any]:
        """The epoch's starting generator state and the batches the loop has taken from it."""
        return {"epoch_start": self._epoch_start, "batches": self._batches_done()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Makes the next iteration continue the saved epoch where it stopped."""
        self._resume = dict(state)
