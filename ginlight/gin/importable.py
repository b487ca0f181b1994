"""Finds what a fully qualified import path in a gin file names, and says why when it names nothing usable.

``einops.layers.torch.Rearrange`` is resolved the way Python's ``import`` would
reach it: the first part imported as a package, each next part an attribute or
else a submodule. Only the modules on the path are imported, so a config that
names nothing outside the stack imports nothing more.
"""

from __future__ import annotations

import difflib
import importlib
import inspect
import pkgutil
import types
from typing import Any

__all__ = ["NotConfigurable", "locate", "configurable_at", "public_names", "is_class_or_function"]


class NotConfigurable(Exception):
    """An import path that names nothing gin can configure.

    Args:
        message: what is wrong with the path.
        hint: what to do about it.
        missing_package: the path's first part is no installed module, so it may
            be a gin short name (``optim.Adam``) rather than an import path.
    """

    def __init__(self, message: str, hint: str, missing_package: bool = False):
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.missing_package = missing_package


def locate(path: str) -> Any:
    """The object ``path`` names, importing the modules on the way; raises :class:`NotConfigurable`."""
    parts = path.split(".")
    obj = _import(parts[0], parts[0])
    for depth in range(1, len(parts)):
        prefix, name = ".".join(parts[:depth]), parts[depth]
        found = _attribute(obj, prefix, name)
        if found is _MISSING and _is_package(obj):
            found = _import(f"{prefix}.{name}", prefix)
        if found is _MISSING:
            raise NotConfigurable(
                f"'{prefix}' has no attribute '{name}'.",
                _did_you_mean(name, prefix, public_names(obj))
                or f"See what it offers with `ginlight-train --list_configurables='{prefix}.*'`.",
            )
        obj = found
    return obj


def configurable_at(path: str) -> Any:
    """The class or callable ``path`` names; raises :class:`NotConfigurable` for anything else."""
    obj = locate(path)
    if isinstance(obj, types.ModuleType):
        raise NotConfigurable(f"'{path}' is a module, neither a class nor a callable: gin cannot call it.",
                              f"Name a class or function in it; `ginlight-train --list_configurables='{path}.*'` "
                              "lists them.")
    if not callable(obj):
        raise NotConfigurable(
            f"'{path}' is a {type(obj).__name__} ({obj!r:.60}), neither a class nor a callable: gin configures "
            "only what it calls.",
            "Bind the value itself where it is needed, or name a function that returns it.",
        )
    return obj


def public_names(obj: Any) -> list[str]:
    """The names a user may write after ``obj.``: its public attributes, and a package's submodules."""
    names = {name for name in dir(obj) if not name.startswith("_")}
    if _is_package(obj):
        names |= {module.name for module in pkgutil.iter_modules(obj.__path__) if not module.name.startswith("_")}
    return sorted(names)


_MISSING = object()


def _attribute(obj: Any, prefix: str, name: str) -> Any:
    try:
        return getattr(obj, name)
    except AttributeError:
        return _MISSING
    except ImportError as exc:  # a lazily importing package (transformers) whose submodule fails
        raise _import_failed(prefix, exc) from exc


def _is_package(obj: Any) -> bool:
    return isinstance(obj, types.ModuleType) and hasattr(obj, "__path__")


def _import(module: str, parent: str) -> Any:
    """``module`` imported; _MISSING when ``parent`` has no such submodule."""
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name == module and "." in module:
            return _MISSING
        if exc.name == module:
            raise NotConfigurable(
                f"no module named '{module}' is installed.",
                f"Install the package that provides it (often `pip install {module}`; its name on the package "
                "index can differ), or pass the folder that holds it with --project.",
                missing_package=True,
            ) from exc
        raise _import_failed(module, exc) from exc
    except Exception as exc:  # the module's own code failed: its message is the news
        raise _import_failed(module, exc) from exc


def _import_failed(module: str, exc: Exception) -> NotConfigurable:
    if isinstance(exc, ModuleNotFoundError) and exc.name:
        return NotConfigurable(f"importing '{module}' needs '{exc.name}', which is not installed.",
                               f"Install the package that provides '{exc.name}'.")
    return NotConfigurable(f"importing '{module}' failed: {type(exc).__name__}: {exc}",
                           "Fix what the error names, or check the module path.")


def _did_you_mean(name: str, prefix: str, candidates: list[str]) -> str | None:
    close = difflib.get_close_matches(name, candidates, n=3, cutoff=0.6)
    if not close:
        lowered = {candidate.lower(): candidate for candidate in candidates}
        close = [lowered[c] for c in difflib.get_close_matches(name.lower(), list(lowered), n=3, cutoff=0.6)]
    return f"Did you mean {' or '.join(repr(f'{prefix}.{c}') for c in close)}?" if close else None


def is_class_or_function(obj: Any) -> bool:
    """Whether ``obj`` is what a module's listing offers: a class or a function, not a constant or an instance."""
    return inspect.isclass(obj) or inspect.isfunction(obj) or inspect.isbuiltin(obj)
