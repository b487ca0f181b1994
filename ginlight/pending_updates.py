"""Metric updates held back and applied together: one torchmetrics update for several batches.

The System routes every metric and loss-mean update through a :class:`PendingUpdates`
(docs/performance.md: "Metric updates are held back and applied together").
"""

from __future__ import annotations

from typing import Any

import torch
from torchmetrics import Metric, MetricCollection
from torchmetrics.utilities.data import dim_zero_cat, dim_zero_sum
from torchmetrics.wrappers.abstract import WrapperMetric

from ginlight import internals

__all__ = ["PendingUpdates", "PENDING_ELEMENTS", "holds_safely"]


class PendingUpdates:
    """Holds a metric's updates back and applies them together, as one update of the concatenated batches.

    A torchmetrics update has a fixed cost (argument checks, a dozen small kernels,
    state writes through ``nn.Module.__setattr__``, on a GPU host syncs in the
    checks) that outweighs a small model's whole step. Where a metric's states are sums or
    concatenations over samples, one update with several batches concatenated
    leaves the state that one update per batch would. That is known only of
    torchmetrics' own classes whose every state says so (:func:`holds_safely`):
    any other metric, a user's ``Metric`` subclass above all (its state may count
    updates), gets one update per batch, as do all the metrics of a collection
    holding one. Held updates are applied
    once they hold :data:`PENDING_ELEMENTS` values, and by :meth:`flush`, which must
    precede ``compute()``. The first update after a flush is applied at once, so
    that arguments a metric rejects fail at the step that passed them; so are
    updates whose arguments do not concatenate with the held ones (anything but
    tensors with a batch dimension, other shapes, dtypes or devices), and every
    update of torchmetrics' wrappers, whose state may depend on how samples were
    grouped into updates.
    """

    def __init__(self, metric: Metric | MetricCollection):
        self.metric = metric
        wrapped = metric.values() if isinstance(metric, MetricCollection) else [metric]
        self.holds = all(holds_safely(m) for m in wrapped)
        self.held: list[tuple[list[torch.Tensor], dict[str, torch.Tensor]]] = []
        self.layout: tuple | None = None  # of the held updates' arguments (see _layout)
        self.elements = 0
        self.updated = False  # since the last flush

    def __call__(self, *args: Any, **kwargs: Any) -> None:
        layout = _layout(args, kwargs) if self.holds and self.updated else None
        if layout is None or (self.held and layout != self.layout):
            self.flush()
            self.metric.update(*args, **kwargs)
            self.updated = True
            return
        self.layout = layout
        self.held.append(([a.detach() for a in args], {k: v.detach() for k, v in kwargs.items()}))
        for value in (*args, *kwargs.values()):
            self.elements += value.numel()
        if self.elements >= PENDING_ELEMENTS:
            self._apply_held()

    def flush(self) -> bool:
        """Applies the held updates; returns whether the metric was updated since the last flush."""
        self._apply_held()
        updated, self.updated = self.updated, False
        return updated

    def _apply_held(self) -> None:
        if not self.held:
            return
        held, self.held, self.elements = self.held, [], 0
        args = [torch.cat(column) for column in zip(*(a for a, _ in held))]
        kwargs = {key: torch.cat([k[key] for _, k in held]) for key in held[0][1]}
        self.metric.update(*args, **kwargs)


def holds_safely(metric: Metric) -> bool:
    """Whether updates of ``metric`` may be concatenated: a class of torchmetrics itself, not a wrapper (whose
    state may depend on how samples were grouped into updates), with states that are all summed or
    concatenated across updates (the reductions torchmetrics also syncs ranks by)."""
    reductions = internals.metric_reductions(metric)
    return (type(metric).__module__.split(".")[0] == "torchmetrics" and not isinstance(metric, WrapperMetric)
            and bool(reductions) and all(fx in (dim_zero_sum, dim_zero_cat) for fx in reductions.values()))


#: Values (summed over the held arguments) that make :class:`PendingUpdates` apply its held updates.
PENDING_ELEMENTS = 2**16


def _layout(args: tuple, kwargs: dict) -> tuple | None:
    """What must match for updates to concatenate along dim 0: each argument's position or name, shape
    past the batch dimension, dtype and device. None when an argument is not a tensor with a batch dimension."""
    layout = []
    for name, value in (*enumerate(args), *kwargs.items()):
        if not isinstance(value, torch.Tensor) or not value.ndim:
            return None
        layout.append((name, value.shape[1:], value.dtype, value.device))
    return tuple(layout)
