"""ginlight.pending_updates.PendingUpdates: metric updates held back and applied together leave the state of one per batch."""

from __future__ import annotations

import torch
from torchmetrics import MaxMetric, MeanMetric, Metric, MetricCollection
from torchmetrics.classification import MulticlassAccuracy, MulticlassF1Score
from torchmetrics.wrappers import Running

from ginlight.pending_updates import PENDING_ELEMENTS, PendingUpdates, holds_safely


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


class UpdateCount(Metric):
    """A user's metric whose state counts its updates: concatenating two of them into one would lose one."""

    def __init__(self):
        super().__init__()
        self.add_state("updates", default=torch.tensor(0), dist_reduce_fx="sum")

    def update(self, pred: torch.Tensor, target: torch.Tensor) -> None:
        self.updates += 1

    def compute(self) -> torch.Tensor:
        return self.updates


def test_a_users_metric_gets_one_update_per_batch_even_beside_torchmetrics_own():
    alone, together = UpdateCount(), MetricCollection({"count": UpdateCount(), "accuracy": MulticlassAccuracy(5)})
    for metric in (alone, together):
        pending = PendingUpdates(metric)
        for pred, target in _batches([4, 4, 4]):
            pending(pred, target)
        pending.flush()
    assert alone.compute().item() == 3
    assert together.compute()["count"].item() == 3


def test_only_torchmetrics_own_sum_and_concatenation_metrics_are_held():
    class Subclass(MulticlassAccuracy):  # a user's subclass may change update(): not known to be safe
        pass

    assert holds_safely(MulticlassAccuracy(5)) and holds_safely(MeanMetric())
    assert not holds_safely(Subclass(5))
    assert not holds_safely(MaxMetric())  # a max state: safe to group perhaps, but not known to be
    assert not holds_safely(UpdateCount())
    assert not holds_safely(Running(MeanMetric(), window=2))
