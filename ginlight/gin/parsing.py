"""Parsing a config with gin, and the checks gin leaves until a value is used.

:func:`load` and :func:`parse` clear gin's state, parse the files and bindings, and return the
:class:`~ginlight.gin.parsed.ParsedConfig` the layers above hand down: what the config says and where.
An undefined macro and a string where a number belongs fail here, at their line, before anything is built.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import os
import re
import sys
import typing
from pathlib import Path
from typing import Any, Iterator, Sequence

import gin

from ginlight import internals
from ginlight.errors import ConfigError
from ginlight.gin import composed, lookup, reading, registry
from ginlight.gin.failures import translate_errors
from ginlight.gin.operative import path_directives
from ginlight.gin.parsed import ParsedConfig
from ginlight.gin.project import add_to_path, import_projects, module_names

_STATEMENT = re.compile(r"^\s*[^#\s]", re.M)


def load(
    gin_files: Sequence[str | os.PathLike] = (),
    bindings: Sequence[str] = (),
    search_paths: Sequence[str | os.PathLike] = (),
    projects: Sequence[str] = (),
) -> ParsedConfig:
    """Reads a config the way every command does: the working directory and ``projects`` made
    importable (:func:`ginlight.gin.project.import_projects`), then :func:`parse`."""
    add_to_path(os.getcwd())
    import_projects(projects)
    return parse(gin_files, bindings, search_paths)


def own_modules(
    gin_files: Sequence[str | os.PathLike] = (),
    search_paths: Sequence[str | os.PathLike] = (),
    projects: Sequence[str] = (),
) -> list[str]:
    """The config's own modules, named without importing anything: its projects' and its gin files' ``import``s.

    The working directory and the projects' folders go on ``sys.path``, as :func:`load`
    puts them, so that a process started now imports them as a run would (a sweep's
    warm worker preloads them). A file that cannot be read is left for :func:`load` to report.
    """
    add_to_path(os.getcwd())
    names = module_names(projects)
    try:
        statements = reading.read([reading.resolve(gin_file, search_paths) for gin_file in gin_files], (), search_paths)
    except ConfigError:
        return names
    return [*names, *(statement.selector for statement in statements if statement.kind == "import")]


def parse(
    gin_files: Sequence[str | os.PathLike] = (),
    bindings: Sequence[str] = (),
    search_paths: Sequence[str | os.PathLike] = (),
) -> ParsedConfig:
    """Clears gin's state, then parses ``gin_files`` in order and ``bindings`` last; returns what was parsed.

    ``gin_files`` and ``include`` statements resolve against ``search_paths``
    (after absolute paths), then the given files' folders. Raises :class:`ConfigError`
    for any mistake gin or the checks below find.
    """
    gin.clear_config()
    files = [reading.resolve(gin_file, search_paths) for gin_file in gin_files]
    for path in files:
        if not _STATEMENT.search(path.read_text()):
            raise ConfigError(f"gin file '{path}' is empty: it holds no bindings, includes or imports.",
                              location=str(path), hint="Check that you passed the file you meant.")
    statements = reading.read(files, bindings, search_paths)
    # gin looks for includes in the folders the reader looked in (reading.include_folders).
    read = [*files, *(Path(file) for file in dict.fromkeys(s.file for s in statements) if file != reading.BINDINGS)]
    internals.set_include_folders(reading.include_folders(search_paths, read))
    for path in files:  # before registering: a path named there may be under one of these folders
        for folder in path_directives(path):
            add_to_path(folder)
    texts = [path.read_text() for path in dict.fromkeys(read)] + list(bindings)
    registry.register_referenced(statements, texts)
    for path in files:
        with translate_errors(path):
            gin.parse_config_file(str(path))
    with translate_errors(None):
        gin.parse_config(list(bindings))
    parsed = ParsedConfig(tuple(files), tuple(bindings), tuple(statements), registry.registered_as(statements),
                          composed.merged_input(files, bindings, statements))
    _check_macros(parsed)
    _check_value_types(parsed)
    _build_in_written_order()
    return parsed


@contextlib.contextmanager
def set_aside() -> Iterator[None]:
    """The caller's gin config and ``sys.path``, as they were before the block, again once it ends: for reading
    a config that is not the caller's (:func:`ginlight.load_system`) without disturbing theirs."""
    path = list(sys.path)
    with internals.config_set_aside():
        try:
            yield
        finally:
            sys.path[:] = path


def _build_in_written_order() -> None:
    """Orders each configurable's bindings by name, as the operative config writes them.

    gin builds referenced arguments in binding order, and building draws random
    initial weights; so a run and the rerun of its operative config (sorted by gin)
    must build in the same order to start from the same weights.
    """
    bindings = internals.parsed_bindings()
    for key, params in list(bindings.items()):
        bindings[key] = dict(sorted(params.items()))


def _check_macros(parsed: ParsedConfig) -> None:
    """gin only notices an undefined ``%MACRO`` when it is used; catch it now."""
    defined = {scope for (scope, selector) in internals.parsed_bindings() if selector == "gin.macro"}
    for reference in gin.config.iterate_references(internals.parsed_bindings()):
        if reference.configurable.wrapped is not gin.config.macro:
            continue
        name = reference.scoped_selector.rsplit("/", 1)[0]
        if name not in defined:
            raise ConfigError(
                f"macro '%{name}' is used but never defined.",
                location=parsed.macro_location(name),
                hint=f"Define it (`{name} = ...`) in a gin file or with --gin_bindings='{name}=...'.",
            )


def _check_value_types(parsed: ParsedConfig) -> None:
    """A string bound where only numbers or booleans belong fails now, with its line."""
    for (scope, selector), params in internals.parsed_bindings().items():
        configurable = internals.configurable(selector, exact=True)
        if configurable is None or configurable.wrapped is gin.config.macro:
            continue
        expected = _scalar_parameters(configurable.wrapped)
        for param, value in params.items():
            value = lookup.resolve_macro(value)
            if isinstance(value, str) and param in expected:
                name = f"{scope}/{configurable.name}" if scope else configurable.name
                raise ConfigError(
                    f"'{name}.{param}' is bound to the string {value!r}, but it takes {expected[param]}.",
                    location=parsed.binding_location(name, param),
                    hint="Write the value without quotes.",
                )


_SCALARS = {int: "a number", float: "a number", bool: "True or False"}


@functools.lru_cache(maxsize=None)
def _scalar_parameters(wrapped: Any) -> dict[str, str]:
    """Parameters that take only numbers or booleans, by annotation or by default value.

    Cached: a signature does not change, and every parse asks again (``load_system`` included).
    Callers only read the dict."""
    try:
        target = wrapped.__init__ if inspect.isclass(wrapped) else wrapped
        parameters = inspect.signature(target).parameters.values()
        hints = typing.get_type_hints(target)
    except Exception:  # builtins, unresolvable annotations: judge by defaults alone
        hints = {}
        try:
            parameters = inspect.signature(target).parameters.values()
        except (TypeError, ValueError):
            return {}
    scalar = {}
    for parameter in parameters:
        hint = hints.get(parameter.name)
        kinds = [t for t in typing.get_args(hint) or (hint,) if t is not type(None)] if hint else []
        if kinds and all(isinstance(t, type) and t in _SCALARS for t in kinds):  # Callable[[A], B] has a list
            scalar[parameter.name] = _SCALARS[kinds[0]]
        elif (type(parameter.default) in _SCALARS and str not in kinds and typing.Any not in kinds
              and not any(typing.get_origin(t) is typing.Literal for t in kinds)):  # Union[int, Literal['auto']]
            scalar[parameter.name] = _SCALARS[type(parameter.default)]
    return scalar
