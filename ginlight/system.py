"""The System: one task-agnostic LightningModule wired entirely from gin."""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import gin
import torch
from lightning import LightningModule
from lightning.pytorch.trainer.states import TrainerFn
from torch import nn
from torch.utils.data import DataLoader
from torchmetrics import MeanMetric, Metric, MetricCollection

from ginlight.internals import HOOK_NAME_ATTRIBUTE
from ginlight.adapters import BatchAdapter, CriterionAdapter, LoggingAdapter, MetricsAdapter
from ginlight.errors import ConfigError
from ginlight.pending_updates import PendingUpdates
from ginlight.resumable_loader import ResumableLoader
from ginlight.stages import METRIC_MODES, MODES

__all__ = ["System"]

#: The adapters a System has in each mode; it builds those it is not given, with their gin bindings.
ADAPTER_TYPES = {
    "batch": BatchAdapter,
    "criterion": CriterionAdapter,
    "metrics": MetricsAdapter,
    "logging": LoggingAdapter,
}
MetricsSpec = Metric | Sequence[Metric] | Mapping[str, Metric] | None


def metric_name(metric: Metric) -> str:
    """``MulticlassAccuracy`` -> ``accuracy``: the key a metric is logged under."""
    return re.sub(r"^(Binary|Multiclass|Multilabel)", "", type(metric).__name__).lower()


def _collection(spec: MetricsSpec, mode: str) -> MetricCollection | None:
    if spec is None:
        return None
    if isinstance(spec, Metric):
        spec = [spec]
    if not isinstance(spec, (Mapping, Sequence)):
        raise ConfigError(
            f"System.metrics['{mode}'] is {spec!r}, not a torchmetrics Metric (or a list or dict of them).",
            hint="Bind an instance, e.g. `@torchmetrics.Accuracy()`, not the class.", binding="System.metrics",
        )
    if isinstance(spec, Mapping):
        metrics = dict(spec)
    else:
        metrics = {metric_name(m): m for m in spec}
    for name, metric in metrics.items():
        if not isinstance(metric, Metric):
            raise ConfigError(
                f"System.metrics['{mode}'] entry '{name}' is {metric!r}, not a torchmetrics Metric.",
                hint="Bind an instance, e.g. `@torchmetrics.Accuracy()`, not the class.", binding="System.metrics",
            )
    # clone(): modes never share state, even when a gin macro hands them one object.
    return MetricCollection(metrics, prefix=f"{mode}/", compute_groups=False).clone()


@gin.configurable(module="ginlight")
class System(LightningModule):
    """Holds a model and what trains it; adapters route data between them.

    Args:
        model: the network.
        optimizer: a callable taking the parameters (``@torch.optim.AdamW``).
        param_groups: optional options per submodule, ``{"encoder": {"lr": 1e-4}}``;
            the parameters of other submodules form the default group.
        scheduler: optional callable taking the optimizer.
        scheduler_interval: ``"epoch"`` or ``"step"``.
        scheduler_frequency: step the scheduler every this many intervals.
        scheduler_monitor: the logged value ``ReduceLROnPlateau`` watches.
        criterion: a loss module or callable; it may return a dict of named losses
            with a ``total`` entry.
        metrics: per mode (``train``, ``val``, ``test``), a metric, list or dict.
        dataloaders: per mode (``train``, ``val``, ``test``, ``predict``).
        inferer: optional ``(input, model) -> pred`` for val, test and predict.
        adapters: per mode, a dict with ``batch``, ``criterion``, ``metrics`` and
            ``logging`` adapters; missing ones serve ``(input, target)`` batches.
        stop_on_nonfinite_loss: fail the run at a NaN or infinite training loss. The
            loss is read on logging steps (``Trainer.log_every_n_steps``), where
            logging reads it anyway: no extra device sync, and the run stops within
            that many steps of the first bad loss, before its optimizer step.
    """

    def __init__(
        self,
        model: nn.Module = gin.REQUIRED,
        optimizer: Callable[..., torch.optim.Optimizer] | None = None,
        param_groups: Mapping[str, Mapping[str, Any]] | None = None,
        scheduler: Callable[[torch.optim.Optimizer], Any] | None = None,
        scheduler_interval: str = "epoch",
        scheduler_frequency: int = 1,
        scheduler_monitor: str | None = None,
        criterion: Callable[..., Any] | None = None,
        metrics: Mapping[str, MetricsSpec] | None = None,
        dataloaders: Mapping[str, DataLoader] | None = None,
        inferer: Callable[[Any, nn.Module], Any] | None = None,
        adapters: Mapping[str, Mapping[str, Any]] | None = None,
        stop_on_nonfinite_loss: bool = True,
    ):
        super().__init__()
        if not isinstance(model, nn.Module):
            raise ConfigError(f"System.model must be a torch.nn.Module, got {model!r}.",
                              hint="Bind an instance, e.g. `System.model = @MyNet()`.", binding="System.model")
        if isinstance(optimizer, torch.optim.Optimizer) or (optimizer is not None and not callable(optimizer)):
            raise ConfigError(
                f"System.optimizer must be a callable that takes the parameters, got an instance {optimizer!r}.",
                hint="Bind the class without parentheses: `System.optimizer = @torch.optim.AdamW`.",
                binding="System.optimizer",
            )
        if scheduler_interval not in ("epoch", "step"):
            raise ConfigError(f"System.scheduler_interval must be 'epoch' or 'step', got {scheduler_interval!r}.",
                              binding="System.scheduler_interval")
        _check_modes("metrics", metrics, METRIC_MODES)
        _check_modes("dataloaders", dataloaders, MODES)
        _check_modes("adapters", adapters, MODES)
        self.model = model
        self.optimizer = optimizer
        self.param_groups = dict(param_groups or {})
        self.scheduler = scheduler
        self.scheduler_settings = {
            "interval": scheduler_interval,
            "frequency": scheduler_frequency,
            **({"monitor": scheduler_monitor} if scheduler_monitor else {}),
        }
        self.criterion = criterion
        self.dataloaders = dict(dataloaders or {})
        self.inferer = inferer
        metrics = metrics or {}
        self.train_metrics = _collection(metrics.get("train"), "train")
        self.val_metrics = _collection(metrics.get("val"), "val")
        self.test_metrics = _collection(metrics.get("test"), "test")
        self.adapters = {mode: _adapters((adapters or {}).get(mode, {}), mode) for mode in MODES}
        self.stop_on_nonfinite_loss = stop_on_nonfinite_loss
        # Sample-weighted mean of the loss (and of each named loss) per mode.
        self.losses = nn.ModuleDict()
        # Updates of the metrics and loss means, held back and applied together (see PendingUpdates).
        self._pending: dict[str, PendingUpdates] = {}

    def __setattr__(self, name: str, value: Any) -> None:
        # Lightning sets its hook-name attribute before and after each of the dozens of hook calls in a
        # step. nn.Module's __setattr__ checks every assignment for parameters, buffers and
        # submodules, ~5 % of a small model's step; a hook's name is none of those.
        if name == HOOK_NAME_ATTRIBUTE:  # one global lookup: this runs dozens of times per step
            object.__setattr__(self, name, value)
        else:
            super().__setattr__(name, value)

    # -- Lightning hooks ---------------------------------------------------------

    def forward(self, input: Any) -> Any:
        return self.model(input)

    def configure_optimizers(self) -> Any:
        if self.optimizer is None:
            raise ConfigError("System.optimizer is not bound, and training needs one.",
                              hint="Bind it, e.g. `System.optimizer = @torch.optim.AdamW`.")
        optimizer = self.optimizer(self._parameter_groups())
        if self.scheduler is None:
            return optimizer
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": self.scheduler(optimizer), **self.scheduler_settings}}

    def training_step(self, batch: Any, batch_idx: int) -> Any:
        loss = self._step(batch, "train")
        if loss is None:
            raise ConfigError("System.criterion is not bound, and training needs one.",
                              hint="Bind it, e.g. `System.criterion = @torch.nn.CrossEntropyLoss()`.")
        total = loss["total"] if isinstance(loss, Mapping) else loss
        if self.trainer.global_step % self.trainer.log_every_n_steps == 0:
            # Only on logging steps: self.log has a cost, and step values are only written then.
            loss_step = total.detach()
            self.log("train/loss_step", loss_step, prog_bar=True, on_step=True, on_epoch=False)
            if self.stop_on_nonfinite_loss and not math.isfinite(value := loss_step.item()):
                raise FloatingPointError(
                    f"the training loss is {value} at step {self.trainer.global_step} (epoch "
                    f"{self.current_epoch}, batch {batch_idx}). Lower the learning rate, check the data for "
                    "NaNs, or bind `System.stop_on_nonfinite_loss = False` to train on."
                )
        return total

    def validation_step(self, batch: Any, batch_idx: int, dataloader_idx: int = 0) -> None:
        self._step(batch, "val")

    def test_step(self, batch: Any, batch_idx: int, dataloader_idx: int = 0) -> None:
        self._step(batch, "test")

    def predict_step(self, batch: Any, batch_idx: int, dataloader_idx: int = 0) -> Any:
        adapters = self.adapters["predict"]
        input, target, identifier = adapters["batch"](batch)
        pred = self._infer(input)
        logged = adapters["logging"](input, target, pred)
        return {"pred": logged["pred"], "identifier": identifier}

    def on_train_epoch_end(self) -> None:
        self._log_epoch("train")

    def on_validation_epoch_end(self) -> None:
        self._log_epoch("val")

    def on_test_epoch_end(self) -> None:
        self._log_epoch("test")

    def train_dataloader(self) -> Any:
        """The training loader, resumable mid-epoch (:class:`~ginlight.resumable_loader.ResumableLoader`) where
        one process trains. Several ranks get it as it is: Lightning gives each a ``DistributedSampler``."""
        loader = self._dataloader("train")
        if self.trainer.world_size > 1 or callable(getattr(loader, "load_state_dict", None)):
            return loader  # a loader resumable itself (torchdata's StatefulDataLoader) needs no help
        if self.trainer.overfit_batches > 0:
            return loader  # Lightning swaps its sampler for a sequential one, which takes the DataLoader itself
        return ResumableLoader(loader, self._training_batches_taken)

    def _training_batches_taken(self) -> int | None:
        """The batches the training loop has taken in this epoch; None once it took all it takes (which
        ``Trainer.limit_train_batches`` may make fewer than the loader's)."""
        taken = self.trainer.fit_loop.epoch_loop.batch_progress.current.processed
        return None if taken >= self.trainer.num_training_batches else taken

    def val_dataloader(self) -> Any:
        if "val" not in self.dataloaders and self.trainer.state.fn == TrainerFn.FITTING:
            return []  # Lightning's way to fit without validation
        return self._dataloader("val")

    def test_dataloader(self) -> Any:
        return self._dataloader("test")

    def predict_dataloader(self) -> Any:
        return self._dataloader("predict")

    # -- the step shared by train, val and test ------------------------------------

    def _step(self, batch: Any, mode: str) -> Any:
        """Runs the model on a batch, tracks its loss and metrics; returns the loss (None without a criterion)."""
        adapters = self.adapters[mode]
        input, target, _ = adapters["batch"](batch)
        pred = self.model(input) if mode == "train" else self._infer(input)
        loss = None
        if self.criterion is not None:
            loss = adapters["criterion"](self.criterion, input, target, pred)
            self._track_loss(loss, mode, _batch_size(input, target))
        metrics = self._metrics(mode)
        if metrics is not None:
            adapters["metrics"](self._pending_updates(mode, metrics), input, target, pred)
        return loss

    def _infer(self, input: Any) -> Any:
        return self.inferer(input, self.model) if self.inferer is not None else self.model(input)

    def _metrics(self, mode: str) -> MetricCollection | None:
        return getattr(self, f"{mode}_metrics", None)

    def _track_loss(self, loss: Any, mode: str, batch_size: int) -> None:
        named = loss if isinstance(loss, Mapping) else {"total": loss}
        if isinstance(loss, Mapping) and "total" not in loss:
            raise ConfigError(f"the criterion returned a dict without a 'total' entry (keys: {sorted(loss)}).",
                              hint="Return the loss to optimise under 'total'.")
        for name, value in named.items():
            # ModuleDict keys cannot hold dots; slashes read oddly in state_dict.
            slot = f"{mode}|loss" if name == "total" else f"{mode}|loss|{name}"
            pending = self._pending.get(slot)
            if pending is None:
                self.losses[slot] = MeanMetric(nan_strategy="disable").to(value.device)
                pending = self._pending_updates(slot, self.losses[slot])
            # The batch's mean loss once per sample: a sample-weighted mean, with the batch dimension
            # held updates concatenate along. (MeanMetric's `weight` would say the same, but
            # nan_strategy="disable", which keeps NaNs visible without a host sync, drops it:
            # torchmetrics#3434.)
            value = value.detach()
            pending(value.reshape(1).expand(batch_size) if value.numel() == 1 else value.reshape(-1))

    def _pending_updates(self, key: str, metric: Metric | MetricCollection) -> PendingUpdates:
        pending = self._pending.get(key)
        if pending is None:
            pending = self._pending[key] = PendingUpdates(metric)
        return pending

    def _log_epoch(self, mode: str) -> None:
        for slot, mean in self.losses.items():
            key = slot.replace("|", "/")
            if key.startswith(f"{mode}/") and self._pending[slot].flush():
                # compute() has reduced across ranks already; averaging the ranks' equal values
                # changes nothing and spares Lightning's warning about unsynced epoch values.
                self.log(key, mean.compute(), prog_bar=key == "val/loss", sync_dist=True)
                mean.reset()
        metrics = self._metrics(mode)
        if metrics is not None and mode in self._pending and self._pending[mode].flush():
            self.log_dict(metrics.compute(), prog_bar=mode == "val", sync_dist=True)
            metrics.reset()

    def _dataloader(self, mode: str) -> Any:
        if mode not in self.dataloaders:
            raise ConfigError(
                f"the '{mode}' stage needs a dataloader and System.dataloaders has none for '{mode}' "
                f"(it has: {sorted(self.dataloaders) or 'none'}).",
                hint=f"Bind System.dataloaders = {{'{mode}': @DataLoader(), ...}}, or give the Experiment a datamodule.",
            )
        return self.dataloaders[mode]

    def _parameter_groups(self) -> Iterable[Any]:
        if not self.param_groups:
            return self.model.parameters()
        groups, grouped = [], set()
        for prefix, options in self.param_groups.items():
            params = [p for name, p in self.model.named_parameters() if name == prefix or name.startswith(prefix + ".")]
            if not params:
                names = sorted({n.split(".")[0] for n, _ in self.model.named_parameters()})
                raise ConfigError(f"System.param_groups names '{prefix}', which holds no parameters of the model.",
                                  hint=f"The model's submodules are: {', '.join(names)}.")
            grouped.update(id(p) for p in params)
            groups.append({"params": params, **options})
        rest = [p for p in self.model.parameters() if id(p) not in grouped]
        return ([{"params": rest}] if rest else []) + groups


def _check_modes(name: str, value: Mapping[str, Any] | None, allowed: Sequence[str]) -> None:
    if value is None:
        return
    if not isinstance(value, Mapping):
        raise ConfigError(f"System.{name} must be a dict keyed by mode ({', '.join(allowed)}), got {value!r}.",
                          hint=f"For example `System.{name} = {{'{allowed[0]}': ...}}`.", binding=f"System.{name}")
    unknown = sorted(set(value) - set(allowed))
    if unknown:
        raise ConfigError(f"System.{name} has unknown modes {unknown}; the modes are {', '.join(allowed)}.",
                          binding=f"System.{name}")


def _adapters(given: Mapping[str, Any], mode: str) -> dict[str, Any]:
    unknown = sorted(set(given) - set(ADAPTER_TYPES))
    if unknown:
        raise ConfigError(f"System.adapters['{mode}'] has unknown entries {unknown}; "
                          f"the entries are {', '.join(ADAPTER_TYPES)}.", binding="System.adapters")
    adapters = {}
    for kind, cls in ADAPTER_TYPES.items():
        adapter = given.get(kind)
        if adapter is None:
            # A predict batch may hold no target.
            adapter = (cls(0) if mode == "predict" else cls(0, 1)) if kind == "batch" else cls()
        elif not isinstance(adapter, cls):
            raise ConfigError(f"System.adapters['{mode}']['{kind}'] must be a {cls.__name__}, got {adapter!r}.",
                              binding="System.adapters")
        adapters[kind] = adapter
    adapters["batch"].mode = mode
    return adapters


def _batch_size(input: Any, target: Any) -> int:
    for value in (target, input):
        if isinstance(value, torch.Tensor) and value.ndim:
            return value.shape[0]
    return 1
