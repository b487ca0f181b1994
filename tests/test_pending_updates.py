"""ginlight.pending_updates.PendingUpdates: metric updates held back and applied together leave the state of one per batch."""

from __future__ import annotations

import torch
from torchmetrics import MeanMetric, MetricCollection
from torchmetrics.classification import MulticlassAccuracy, MulticlassF1Score
from torchmetrics.wrappers import Running

from ginlight.pending_updates import PENDING_ELEMENTS, PendingUpdates


def _batches(sizes, num_classes=5, features=()):
    generator = torch.Generator().manual_seed(0)
    return [(torch.randn(n, num_classes, *features, generator=generator),
             torch.randint(0, num_classes, (n, *features), generator=generator)) for n in sizes]


def test_pending_updates_leave_the_state_of_one_update_per_batch():
    # Big enough batches that held updates are applied on the way, not only by flush().
    sizes = [PENDING_ELEMENTS // 12, 7, PENDING_ELEMENTS // 5, 1, 33, PENDING_ELEMENTS // 7]
    batches = _batches(sizes) + _batches([3, 4], features=(2,))  # other shapes: applied at once

    def metrics():
        return MetricCollection({"accuracy": MulticlassAccuracy(5, average="micro", multidim_average="global"),
                                 "f1": MulticlassF1Score(5, average="macro")})

    expected, held = metrics(), metrics()
    pending = PendingUpdates(held)
    for pred, target in batches:
        expected.update(pred, target)
        pending(pred, target)
    assert pending.flush()
    assert not pending.flush()  # nothing since
    assert {k: v.item() for k, v in held.compute().items()} == {k: v.item() for k, v in expected.compute().items()}


def test_pending_updates_apply_wrappers_at_once():
    running = Running(MeanMetric(), window=2)
    pending = PendingUpdates(running)
    for value in (1.0, 2.0, 6.0):
        pending(torch.tensor([value]))
    assert running.compute().item() == 4.0  # the last two updates, as they were made
