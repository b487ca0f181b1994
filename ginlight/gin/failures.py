"""gin's errors turned into :class:`ConfigError`: what is wrong, where (gin file and line), what to do.

gin reports many mistakes with the file and line appended to a Python exception message, and some
(tokenizer errors, a missing macro) with no location at all; an error raised while gin builds a
component names only the configurable it was calling. Everything here funnels those into one shape,
locating what gin gives no line for in the parse it came from (:class:`~ginlight.gin.parsed.ParsedConfig`).
The wording of gin's messages is matched in :mod:`ginlight.internals` only.
"""

from __future__ import annotations

import difflib
import inspect
import logging
import re
import tokenize
from pathlib import Path
from typing import Iterable

from ginlight import internals
from ginlight.errors import ConfigError
from ginlight.gin import importable, registry
from ginlight.gin.parsed import ParsedConfig


class translate_errors:
    """Context manager that re-raises gin's exceptions as :class:`ConfigError`.

    Args:
        source: the gin file being parsed, for errors gin gives no location for.
    """

    def __init__(self, source: Path | None):
        self.source = source

    def __enter__(self) -> None:
        # gin logs every search path it tries; the error says it once.
        for name in internals.FILE_SEARCH_LOGGERS:
            logging.getLogger(name).addFilter(_quiet_gin_search)

    def __exit__(self, exc_type, exc, tb) -> bool:
        for name in internals.FILE_SEARCH_LOGGERS:
            logging.getLogger(name).removeFilter(_quiet_gin_search)
        if exc is None or isinstance(exc, ConfigError) or not isinstance(exc, Exception):
            return False
        raise _to_config_error(exc, self.source) from None


def _quiet_gin_search(record: logging.LogRecord) -> bool:
    return not record.getMessage().startswith(internals.FILE_SEARCH_MESSAGES)


def _to_config_error(exc: Exception, source: Path | None) -> ConfigError:
    text = str(exc)
    match = internals.MESSAGE_LOCATION.search(text)
    location, statement = None, None
    if match:
        location = f"{match['file']}:{match['line']}"
        statement = match["source"].strip().splitlines()[0]  # the line, without gin's caret under it
        text = text[: match.start()]
    elif isinstance(exc, SyntaxError) and exc.lineno:
        location = f"{exc.filename or source or '--gin_bindings'}:{exc.lineno}"
        text = exc.msg
    elif source is not None:
        location = str(source)
        if isinstance(exc, tokenize.TokenError):
            location += f":{internals.token_error(exc)[1]}"
    else:
        location = "--gin_bindings"
    message, hint = _explain(exc, text.strip())
    if statement:
        message = f"{message} In: `{statement}`"
    return ConfigError(message, location=location, hint=hint)


def _explain(exc: Exception, text: str) -> tuple[str, str | None]:
    unknown = internals.UNKNOWN_CONFIGURABLE.match(text)
    if unknown:
        return _explain_unknown(unknown[1])
    unresolved = internals.UNRESOLVED_NAME.match(text)
    if unresolved:
        return _explain_unknown(f"{unresolved[1]}.{unresolved[2]}")
    unimported = internals.UNIMPORTED_NAME.match(text)
    if unimported:
        return f"'{unimported[1]}' is not a name an import of this file binds (it uses dynamic registration).", (
            f"Import it above this line: `import {unimported[1]}`, `import a.b as {unimported[1]}` or "
            f"`from a import {unimported[1]}`.")
    parameter = internals.UNKNOWN_PARAMETER.match(text)
    if parameter:
        name, param = parameter[1], parameter[2]
        if param in _parameters(name):
            return f"'{name}' takes '{param}' as *{param} or **{param}, which gin cannot bind by name.", (
                f"Wrap '{name}' in a @gin.configurable function of your own with named parameters.")
        return f"'{name}' has no parameter '{param}'.", _did_you_mean(param, _parameters(name)) or (
            f"Its parameters are: {', '.join(_parameters(name)) or 'none'}."
        )
    if isinstance(exc, ModuleNotFoundError):
        missing = internals.MODULE_NOT_FOUND.search(text)
        return f"cannot import module {missing[1] if missing else text}.", (
            "Install it, or pass the folder that holds it with --project."
        )
    unopenable = internals.UNOPENABLE_FILE.search(text) if isinstance(exc, OSError) else None
    if unopenable:
        return text[:unopenable.end()] + ".", "Check the path, or add its folder with --gin_search_paths."
    if isinstance(exc, tokenize.TokenError):
        return (f"gin syntax error: {internals.token_error(exc)[0]} (an unclosed bracket or quote?)",
                "Check brackets and quotes.")
    if isinstance(exc, SyntaxError):
        return f"gin syntax error: {text}", "Check the statement's syntax (`configurable.parameter = value`)."
    return text, None


def _explain_unknown(name: str) -> tuple[str, str]:
    """Why gin knows no configurable ``name``: what its import path names instead, or the closest names."""
    path = name.rsplit("/", 1)[-1]
    problem = None
    if "." in path:
        try:
            registered_as = internals.registered_name(importable.configurable_at(path))
        except importable.NotConfigurable as exc:
            problem = exc
        else:
            if registered_as is not None:
                return (f"unknown configurable '{name}': that object is registered as '{registered_as}'.",
                        f"Write '{registered_as}' (or its short form).")
    if problem is not None and not problem.missing_package:
        return f"unknown configurable '{name}': {problem.message}", problem.hint
    registry.register_all()  # suggest from every name, not only those the config names
    suggestion = _did_you_mean(name, _configurable_names())
    if problem is not None and suggestion is None:  # no short name of ours either: a package to install
        return f"unknown configurable '{name}': {problem.message}", problem.hint
    return f"unknown configurable '{name}'.", suggestion or (
        "Name it by its import path (`@package.module.Name()`), import the module that defines it "
        "(an `import` line in the gin file, or --project), or see `ginlight-train --list_configurables`."
    )


def _did_you_mean(name: str, candidates: Iterable[str]) -> str | None:
    candidates = list(candidates)
    close = difflib.get_close_matches(name, candidates, n=3, cutoff=0.6)
    if not close:
        short = name.rsplit(".", 1)[-1]
        close = [c for c in candidates if c.rsplit(".", 1)[-1] in difflib.get_close_matches(
            short, [c.rsplit(".", 1)[-1] for c in candidates], n=3, cutoff=0.75)][:3]
    return f"Did you mean {' or '.join(repr(c) for c in close)}?" if close else None


def _configurable_names() -> list[str]:
    return sorted(
        name
        for selector in internals.selectors()
        for name in {selector, selector.rsplit(".", 1)[-1]}
    )


def _parameters(name: str) -> list[str]:
    try:
        wrapped = internals.configurable(name).wrapped
        target = wrapped.__init__ if inspect.isclass(wrapped) else wrapped
        return [p for p in inspect.signature(target).parameters if p != "self"]
    except (TypeError, ValueError, AttributeError):
        return []


def build_error(exc: Exception, parsed: ParsedConfig) -> ConfigError | None:
    """A :class:`ConfigError` for an exception raised while gin built a component of ``parsed``.

    Returns None when the exception does not come from a gin call (a bug in user
    code is not a configuration error, and keeps its traceback).
    """
    text = str(exc)
    missing = internals.REQUIRED_UNBOUND.search(text)
    if missing:
        params = [p.strip(" '") for p in missing[2].split(",")]
        return ConfigError(
            f"'{missing[1]}' needs a value for {', '.join(params)} and none is bound.",
            location=parsed.reference_location(missing[1]),
            hint="Bind it in a gin file, e.g. " + "; ".join(f"`{missing[1]}.{p} = ...`" for p in params) + ".",
        )
    call = internals.MESSAGE_CALL.search(text)
    if call is None:
        return None
    name = call["name"]
    cause = text[: call.start()].strip()
    missing_args = internals.MISSING_ARGUMENTS.search(cause.splitlines()[0])
    if missing_args:
        params = re.findall(r"'([^']+)'", missing_args[1])
        if params[0] in ("params", "optimizer"):  # @torch.optim.Adam() where @torch.optim.Adam belongs
            return ConfigError(
                f"'{name}' was called without its {params[0]}: it is bound as an instance, `@{name}()`, "
                "where a callable belongs.",
                location=parsed.reference_location(name),
                hint=f"Drop the parentheses: `System.optimizer = @{name}` (or `System.scheduler = ...`); "
                f"the System calls it with the {params[0]}.",
            )
        return ConfigError(
            f"'{name}' needs a value for {', '.join(params)} and none is bound.",
            location=parsed.reference_location(name),
            hint="Bind it in a gin file, e.g. " + "; ".join(f"`{name}.{p} = ...`" for p in params) + ".",
        )
    where = parsed.binding_location(name)
    return ConfigError(
        f"building '{name}' failed: {cause.splitlines()[0] if cause else type(exc).__name__}",
        location=where,
        hint=f"Check the values bound to '{name}'.",
    )


def located(error: ConfigError, parsed: ParsedConfig) -> ConfigError:
    """``error`` as raised by its code, located at the binding of ``parsed`` it names (:attr:`ConfigError.binding`)
    when it has no location of its own. (Raised inside a gin call, ``error`` is gin's proxy, which appends the call.)"""
    location = error.location
    if location is None and error.binding:
        name, _, parameter = error.binding.rpartition(".")
        location = parsed.binding_location(name, parameter)
    return ConfigError(error.message, location, error.hint, error.binding)
