"""Registers the stack's components as gin configurables under their import names.

Components are discovered from the installed packages, not listed by hand, so a
new optimizer in torch or a new metric in torchmetrics is configurable as soon as
it is installed. Each object is registered once, under the first public module
that exports it (``torch.nn.Linear``, not ``torch.nn.modules.linear.Linear``), so
the short form (``Linear``) works wherever it is unique.

Registering with gin inspects each object's signature and members, about a second
for the thousand components here, so it happens on demand: parsing a config
(:func:`ginlight.config.parse`) registers the components its references and bindings
name (:func:`register_named`); :func:`register_all` registers every one, for
listing them, for suggesting names, and for code that calls gin itself.

gin's wrappers for external classes and functions are dynamically created objects
that ``pickle`` cannot find by name. Each wrapper is therefore also published as
an attribute path of :data:`registered` (``registered.torch.optim.Adam``) and
renamed to match, so objects that hold a wrapper (a System holding
``@torch.optim.AdamW``, a transform ``@torch.sigmoid``) pickle for DataLoader
workers under spawn, ``torch.save`` and DDP.
"""

from __future__ import annotations

import functools
import importlib
import inspect
import types
import warnings
from typing import Any, Callable, Iterable

import gin

__all__ = ["registered", "register_all", "register_named"]


class _Namespace(types.SimpleNamespace):
    """A node of :data:`registered`; one per module path segment.

    Unpickling in a fresh process (a spawned worker) looks a wrapper up here before
    its config has registered it: a miss registers everything, then looks again.
    """

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") or _done:
            raise AttributeError(name)
        register_all()
        return getattr(self, name)


#: Every wrapper registered here, reachable by its gin name.
registered = _Namespace()
_done = False


def _publish(wrapper: Any, module: str, name: str) -> None:
    node = registered
    for part in module.split("."):
        child = vars(node).get(part)  # not getattr: a miss there registers everything
        if child is None:
            child = _Namespace()
            setattr(node, part, child)
        node = child
    setattr(node, name, wrapper)
    wrapper.__module__ = __name__
    wrapper.__qualname__ = f"registered.{module}.{name}"


def _register(obj: Any, module: str, name: str) -> None:
    wrapper = gin.external_configurable(obj, name=name, module=module)
    _publish(wrapper, module, name)


def _public(module: types.ModuleType) -> Iterable[tuple[str, Any]]:
    names = getattr(module, "__all__", None) or [n for n in dir(module) if not n.startswith("_")]
    for name in names:
        obj = getattr(module, name, None)
        if obj is not None:
            yield name, obj


def _subclasses_of(base: type) -> Callable[[Any], bool]:
    return lambda obj: inspect.isclass(obj) and issubclass(obj, base) and obj is not base


def _is_function(obj: Any) -> bool:
    return inspect.isfunction(obj) or inspect.isbuiltin(obj)


def _sources() -> list[tuple[str, Callable[[Any], bool]]]:
    """(module, predicate) pairs, in priority order for names exported twice."""
    import torch
    from lightning.pytorch.callbacks import Callback
    from lightning.fabric.loggers import Logger  # the base of every Lightning logger, pytorch's too
    from torchmetrics import Metric, MetricCollection

    module_class = _subclasses_of(torch.nn.Module)
    metric = lambda obj: _subclasses_of(Metric)(obj) or obj is MetricCollection  # noqa: E731
    # Out-of-place tensor operations (torch.sigmoid, torch.argmax), for adapters'
    # transforms; the rest of torch's namespace would double registration time.
    tensor_function = lambda obj: (  # noqa: E731
        _is_function(obj) and hasattr(torch.Tensor, obj.__name__) and not obj.__name__.endswith("_")
    )
    return [
        ("torch.optim", _subclasses_of(torch.optim.Optimizer)),
        (
            "torch.optim.lr_scheduler",
            lambda obj: _subclasses_of(torch.optim.lr_scheduler.LRScheduler)(obj)
            or obj is torch.optim.lr_scheduler.ReduceLROnPlateau,
        ),
        ("torch.nn", module_class),
        ("torch.nn.functional", _is_function),
        ("torch.nn.init", _is_function),
        ("torch.utils.data", lambda obj: inspect.isclass(obj) or inspect.isfunction(obj)),
        ("torchmetrics", metric),
        *[
            (f"torchmetrics.{domain}", metric)
            for domain in (
                "classification", "regression", "retrieval", "text", "image", "audio",
                "detection", "segmentation", "nominal", "clustering", "wrappers",
                "aggregation", "multimodal", "shape",
            )
        ],
        ("lightning", lambda obj: obj in (_trainer(), _seed_everything())),
        ("lightning.pytorch.callbacks", _subclasses_of(Callback)),
        ("lightning.pytorch.loggers", _subclasses_of(Logger)),
        # torch.compile too: `System.model = @torch.compile()` compiles the model it is given.
        ("torch", lambda obj: tensor_function(obj) or obj is torch.compile),
    ]


def _trainer() -> type:
    from lightning import Trainer

    return Trainer


def _seed_everything() -> Callable:
    from lightning import seed_everything

    return seed_everything


@functools.cache
def _catalog() -> dict[str, list[tuple[str, Any]]]:
    """Every discoverable component as ``{name: [(module, object), ...]}``, each object once, under
    the first source that exports it; cheap next to registering them."""
    catalog: dict[str, list[tuple[str, Any]]] = {}
    seen: set[int] = set()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for module_name, wanted in _sources():
            try:
                module = importlib.import_module(module_name)
            except ImportError:  # a torchmetrics domain whose extra is absent
                continue
            for name, obj in _public(module):
                if wanted(obj) and id(obj) not in seen:
                    seen.add(id(obj))
                    catalog.setdefault(name, []).append((module_name, obj))
    return catalog


_registered_names: set[str] = set()  # names whose components are all registered


def register_named(names: Iterable[str]) -> None:
    """Registers the components a config names: those whose name is the last part of one of ``names``.

    ``names`` are selectors as written (``torch.optim.AdamW``, ``optim.AdamW``,
    ``scope/AdamW``); every component named ``AdamW`` registers, so a short name
    that two modules export is ambiguous to gin exactly as with :func:`register_all`.
    """
    _import_own_configurables()
    wanted = {name.rsplit("/", 1)[-1].rsplit(".", 1)[-1] for name in names} - _registered_names
    if not wanted:
        return
    catalog = _catalog()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name in wanted:
            for module_name, obj in catalog.get(name, ()):
                _register(obj, module_name, name)
    _registered_names.update(wanted)


def register_all() -> None:
    """Registers every discovered component with gin; later calls do nothing."""
    global _done
    if not _done:
        register_named(_catalog())
        _done = True


@functools.cache
def _import_own_configurables() -> None:
    """ginlight's own configurables register when their modules are imported: once per process."""
    for module_name in ("adapters", "system", "data", "models", "callbacks", "experiment"):
        importlib.import_module(f"ginlight.{module_name}")
