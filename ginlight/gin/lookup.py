"""What the parsed config binds, asked of gin: a parameter's bound value, macros resolved, or its
signature's default; and calling a configurable with ginlight's defaults where the config binds nothing."""

from __future__ import annotations

import inspect
from typing import Any

import gin

from ginlight import internals
from ginlight.gin import registry


def is_bound(selector: str, parameter: str) -> bool:
    """Whether the config binds ``selector.parameter`` (unscoped)."""
    try:
        gin.query_parameter(f"{selector}.{parameter}")
    except ValueError:
        return False
    return True


def query(selector: str, parameter: str, default: Any = None) -> Any:
    """The value bound to ``selector.parameter``, macros resolved; ``default`` when unbound."""
    if not is_bound(selector, parameter):
        return default
    return resolve_macro(gin.query_parameter(f"{selector}.{parameter}"))


def resolve_macro(value: Any) -> Any:
    """The value a ``%MACRO`` reference stands for; any other value as it is."""
    while isinstance(value, gin.config.ConfigurableReference) and value.configurable.wrapped is gin.config.macro:
        value = gin.query_parameter(f"{value.scoped_selector}.value")
    return value


def signature_defaults(selector: str) -> dict[str, Any]:
    """``{parameter: default}`` of a registered configurable's signature, for the parameters that have one."""
    return {name: default for name, default in signature_parameters(selector).items()
            if default is not inspect.Parameter.empty}


def call_configurable(selector: str, **defaults):
    """Calls a registered configurable, passing only the ``defaults`` the user left unbound.

    Arguments passed explicitly would override gin's bindings; this keeps a
    user's ``TQDMProgressBar.refresh_rate = 1`` stronger than ginlight's default.
    gin records no argument a caller passes in the operative config, so a rerun of
    that config finds the parameter unbound again and gets the same default.
    """
    registry.register_named([selector])  # ginlight's own choices, such as the Trainer, whatever the config names
    kwargs = {key: value for key, value in defaults.items() if not is_bound(selector, key)}
    return gin.get_configurable(selector)(**kwargs)


def signature_parameters(selector: str) -> dict[str, Any]:
    """``{parameter: default}`` of a registered configurable's signature; ``inspect.Parameter.empty`` where
    there is none. ``*args`` and ``**kwargs`` are left out: gin cannot bind them by name."""
    registry.register_named([selector])
    try:
        wrapped = internals.configurable(selector).wrapped
        target = wrapped.__init__ if inspect.isclass(wrapped) else wrapped
        parameters = list(inspect.signature(target).parameters.values())
    except (TypeError, ValueError):
        return {}
    return {p.name: p.default for p in parameters
            if p.name != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)}
