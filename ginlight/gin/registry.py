"""Registers the stack's components as gin configurables under their import names.

Components are discovered from the installed packages, not listed by hand, so a
new optimizer in torch or a new metric in torchmetrics is configurable as soon as
it is installed. Each object is registered once, under the first public module
that exports it (``torch.nn.Linear``, not ``torch.nn.modules.linear.Linear``), so
the short form (``Linear``) works wherever it is unique.

Registering with gin inspects each object's signature and members, about a second
for the thousand components here, so it happens on demand: parsing a config
(:func:`ginlight.gin.parsing.parse`) registers the components its references and bindings
name (:func:`register_named`, through :func:`register_referenced`); :func:`register_all` registers every one, for
listing them, for suggesting names, and for code that calls gin itself.

ginlight's own configurables (``ginlight.System``, ``ginlight.data.digits``...) are
not discovered here: they register as their modules are imported, and the layers
that run a config import them (:mod:`ginlight.experiment`; ``ginlight.register_all()``
registers both kinds).

gin's wrappers for external classes and functions are dynamically created objects
that ``pickle`` cannot find by name. Each wrapper is therefore also published as
an attribute path of :data:`registered` (``registered.torch.optim.Adam``) and
renamed to match, so objects that hold a wrapper (a System holding
``@torch.optim.AdamW``, a transform ``@torch.sigmoid``) pickle for DataLoader
workers under spawn, ``torch.save`` and DDP.

Anything else a config names by its import path (``einops.layers.torch.Rearrange``,
``lightning.pytorch.demos.boring_classes.BoringModel``) registers the same way, under
that path, when the config is parsed (:func:`register_importable`): the object is found
by importing only the modules on its path (:mod:`ginlight.gin.importable`). gin writes such
an object by its shortest name (``Rearrange``) in the configs it prints, which alone
does not say where to import it from; :func:`register_directives` writes the
``# ginlight-register:`` lines that record their paths beside them, and :func:`register_referenced`
reads them back.
"""

from __future__ import annotations

import functools
import importlib
import inspect
import pkgutil
import re
import sys
import types
import warnings
from typing import Any, Callable, Iterable, Sequence

import gin

from ginlight import internals
from ginlight.gin import importable, reading

__all__ = ["registered", "register_all", "register_named", "register_importable", "registered_by_name",
           "register_modules_matching", "components", "register_referenced", "registered_as", "register_directives",
           "REGISTER_DIRECTIVE"]


class _Namespace:
    """A node of :data:`registered`; one per module path segment.

    Unpickling in a fresh process (a spawned worker) looks a wrapper up here before
    its config has registered it: a miss registers the components of that name, or
    else the object at that import path, or makes the node of a module on the way.
    """

    def __init__(self, path: str = ""):
        self.__path = path

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):  # dunders pickle probes for, and this node's own path
            raise AttributeError(name)
        path = f"{self.__path}.{name}" if self.__path else name
        register_named([path])
        if name not in vars(self):
            register_importable([path])
        if name not in vars(self):
            try:
                module = importable.locate(path)
            except importable.NotConfigurable:
                raise AttributeError(name) from None
            if not isinstance(module, types.ModuleType):
                raise AttributeError(name)
            setattr(self, name, _Namespace(path))
        return vars(self)[name]


#: Every wrapper registered here, reachable by its gin name.
registered = _Namespace()


def _publish(wrapper: Any, module: str, name: str) -> None:
    node = registered
    for depth, part in enumerate(module.split("."), 1):
        child = vars(node).get(part)  # not getattr: a miss there registers
        if child is None:
            child = _Namespace(".".join(module.split(".")[:depth]))
            setattr(node, part, child)
        node = child
    setattr(node, name, wrapper)
    wrapper.__module__ = __name__
    wrapper.__qualname__ = f"registered.{module}.{name}"


def _register(obj: Any, module: str, name: str) -> None:
    """Registers ``obj`` as ``module.name``; published for pickling where ``module`` is a module.

    A class method (``transformers.BertConfig.from_dict``) is not published: a fresh
    process would find ``registered.transformers.BertConfig`` to be the class's wrapper,
    and ``from_dict`` there its plain class method.
    """
    wrapper = gin.external_configurable(obj, name=name, module=module)
    if isinstance(sys.modules.get(module), types.ModuleType):
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
    # Imported here, when a config first names a component: `ginlight-train --help` imports this module.
    import torch
    from lightning import Trainer, seed_everything
    from lightning.pytorch.callbacks import Callback
    from lightning.fabric.loggers import Logger  # the base of every Lightning logger, pytorch's too
    from lightning.pytorch.profilers import Profiler
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
        ("lightning", lambda obj: obj in (Trainer, seed_everything)),
        ("lightning.pytorch.callbacks", _subclasses_of(Callback)),
        ("lightning.pytorch.loggers", _subclasses_of(Logger)),
        ("lightning.pytorch.profilers", _subclasses_of(Profiler)),
        # torch.compile too: `System.model = @torch.compile()` compiles the model it is given.
        ("torch", lambda obj: tensor_function(obj) or obj is torch.compile),
    ]


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


def components() -> list[tuple[str, str, Any]]:
    """Every discovered component as ``(module, name, object)``, each object once, under the first module that
    exports it: what :mod:`ginlight.gin.trust` judges configs from elsewhere against."""
    return [(module, name, obj) for name, found in _catalog().items() for module, obj in found]


_registered_names: set[str] = set()  # names whose components are all registered


def register_named(names: Iterable[str]) -> None:
    """Registers the components a config names: those whose name is the last part of one of ``names``.

    ``names`` are selectors as written (``torch.optim.AdamW``, ``optim.AdamW``,
    ``scope/AdamW``); every component named ``AdamW`` registers, so a short name
    that two modules export is ambiguous to gin exactly as with :func:`register_all`.
    """
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


@functools.cache
def register_all() -> None:
    """Registers every discovered component with gin; later calls do nothing: what gin has registered stays
    registered for the life of the process, so this is a process-wide cache, not state of a run."""
    register_named(_catalog())


_by_name: set[str] = set()  # the import paths register_importable registered


def register_importable(names: Iterable[str]) -> None:
    """Registers the classes and callables that ``names`` give by import path, where gin knows no such name yet.

    ``names`` are selectors as written; ``einops.layers.torch.Rearrange`` (or
    ``train/einops.layers.torch.Rearrange``) registers as gin's ``einops.layers.torch.Rearrange``.
    A name that is no such path (a short name, a misspelling, a constant) is left for
    gin to report where it is written, and for :func:`ginlight.gin.importable.configurable_at`
    to explain.
    """
    for name in names:
        path = name.rsplit("/", 1)[-1]
        if "." not in path or path in _by_name or internals.selectors_matching(path):
            continue
        try:
            obj = importable.configurable_at(path)
        except importable.NotConfigurable:
            continue
        # Importing it may have registered it (@gin.configurable); an object registered
        # under another name (torch.nn.Linear, not torch.nn.modules.linear.Linear) keeps that one.
        if internals.selectors_matching(path) or internals.registered_name(obj) is not None:
            continue
        module, short = path.rsplit(".", 1)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            _register(obj, module, short)
        _by_name.add(path)


def registered_by_name(selectors: Iterable[str]) -> list[str]:
    """Those of gin's ``selectors`` that :func:`register_importable` registered, sorted."""
    return sorted(_by_name.intersection(selectors))


def register_referenced(statements: Sequence[reading.Statement], texts: Iterable[str]) -> None:
    """Registers the components that ``statements`` name in bindings and references: the stack's
    (:func:`register_named`), then any other class or callable named by its import path
    or by a :data:`REGISTER_DIRECTIVE` line of ``texts`` (:func:`register_importable`)."""
    names = {name for text in texts for name in _REGISTER_LINE.findall(text)} | _named(statements)
    register_named(names)
    register_importable(names)


def _named(statements: Sequence[reading.Statement]) -> set[str]:
    """The configurables ``statements`` bind (in a binding or a block) or reference, as written."""
    names = set()
    for statement in statements:
        if statement.kind in ("binding", "block"):
            names.add(statement.selector)
            names.update(ref.name for ref in reading.references_in(statement.value)
                         if isinstance(ref, reading.Reference))
    return names


def registered_as(statements: Sequence[reading.Statement]) -> dict[str, str]:
    """The selectors ``statements`` write by import path that gin registered under another name, ``{path:
    selector}``; ask after gin parsed them (dynamic registration registers then)."""
    found = {}
    for name in _named(statements):
        path = name.rsplit("/", 1)[-1]
        if "." not in path or internals.selectors_matching(path):
            continue
        try:
            registered = internals.registered_name(importable.configurable_at(path))
        except importable.NotConfigurable:
            continue
        if registered is not None:
            found[path] = registered
    return found


#: A comment line in a gin file naming an import path to register before parsing. gin writes an
#: object registered by its path under its shortest name (``Rearrange``), which alone does not say
#: where to import it from; the configs ginlight writes carry these lines for such objects.
REGISTER_DIRECTIVE = "# ginlight-register: "
_REGISTER_LINE = re.compile(rf"^{REGISTER_DIRECTIVE}(\S+)\s*$", re.M)


def register_directives(configuration: dict) -> list[str]:
    """The :data:`REGISTER_DIRECTIVE` lines for the objects registered by path that ``configuration``
    (gin's ``_CONFIG`` or ``_OPERATIVE_CONFIG``) binds or references."""
    selectors = {selector for _, selector in configuration}
    selectors |= {reference.configurable.selector for reference in gin.config.iterate_references(configuration)}
    return [REGISTER_DIRECTIVE + path for path in registered_by_name(selectors)]


def register_modules_matching(pattern: str) -> None:
    """Registers the classes and functions of the module a glob ``pattern`` starts with, and of its submodules.

    So ``--list_configurables='einops.layers.*'`` lists einops' layers. A submodule
    that does not import (a backend that is not installed) is left out; a module of
    the stack, whose components :func:`register_all` discovers, is not searched.
    """
    module = _module_starting(pattern)
    if module is None or module.__name__ in {name for name, _ in _sources()}:
        return
    modules = [module]
    if hasattr(module, "__path__"):
        for info in pkgutil.walk_packages(module.__path__, prefix=f"{module.__name__}.", onerror=lambda _: None):
            if not any(part.startswith("_") for part in info.name.split(".")):
                try:
                    modules.append(importlib.import_module(info.name))
                except Exception:  # noqa: BLE001  an optional backend, any way it fails
                    continue
    top = module.__name__.split(".")[0]
    for each in modules:
        register_importable(
            f"{each.__name__}.{name}" for name, obj in _public(each)
            if importable.is_class_or_function(obj) and (getattr(obj, "__module__", None) or "").split(".")[0] == top
        )


def _module_starting(pattern: str) -> types.ModuleType | None:
    """The module named by the longest importable dotted prefix of ``pattern``'s literal start."""
    parts = re.split(r"[*?\[]", pattern, maxsplit=1)[0].split(".")
    for end in range(len(parts), 0, -1):
        path = ".".join(parts[:end])
        if not all(part.isidentifier() for part in parts[:end]):
            continue
        try:
            found = importable.locate(path)
        except importable.NotConfigurable:
            continue
        return found if isinstance(found, types.ModuleType) else None
    return None
