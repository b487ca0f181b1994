"""Parses gin files and bindings, and turns gin's errors into :class:`ConfigError`.

gin reports many mistakes with the file and line appended to a Python exception
message, and some (tokenizer errors, a missing macro) with no location at all.
Everything here funnels those into one shape: what is wrong, where, and what to do.
"""

from __future__ import annotations

import contextlib
import difflib
import functools
import inspect
import logging
import os
import re
import sys
import tokenize
import typing
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence

import gin

from ginlight import internals
from ginlight.gin import reading, importable, registry, source
from ginlight.errors import ConfigError
from ginlight.gin.project import add_to_path, import_projects, module_names

# The statements of the config parsed last, for locating what gin keeps no line for.
_statements: list[reading.Statement] = []
# The selectors those statements write by import path that gin registered under another name
# (`ginlight.experiment.Experiment` is gin's `ginlight.Experiment`), for locating their bindings.
_registered_as: dict[str, str] = {}
_STATEMENT = re.compile(r"^\s*[^#\s]", re.M)


def load(
    gin_files: Sequence[str | os.PathLike] = (),
    bindings: Sequence[str] = (),
    search_paths: Sequence[str | os.PathLike] = (),
    projects: Sequence[str] = (),
) -> None:
    """Reads a config the way every command does: the working directory and ``projects`` made
    importable (:func:`ginlight.gin.project.import_projects`), then :func:`parse`."""
    add_to_path(os.getcwd())
    import_projects(projects)
    parse(gin_files, bindings, search_paths)


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
        statements = reading.read([resolve(gin_file, search_paths) for gin_file in gin_files], (), search_paths)
    except ConfigError:
        return names
    return [*names, *(statement.selector for statement in statements if statement.kind == "import")]


def parse(
    gin_files: Sequence[str | os.PathLike] = (),
    bindings: Sequence[str] = (),
    search_paths: Sequence[str | os.PathLike] = (),
) -> None:
    """Clears gin's state, then parses ``gin_files`` in order and ``bindings`` last.

    ``gin_files`` and ``include`` statements resolve against ``search_paths``
    (after absolute paths), then the given files' folders. Raises :class:`ConfigError`
    for any mistake gin or the checks below find.
    """
    gin.clear_config()
    files = [resolve(gin_file, search_paths) for gin_file in gin_files]
    for path in files:
        if not _STATEMENT.search(path.read_text()):
            raise ConfigError(f"gin file '{path}' is empty: it holds no bindings, includes or imports.",
                              location=str(path), hint="Check that you passed the file you meant.")
    _statements[:] = reading.read(files, bindings, search_paths)
    # gin looks for includes in the folders the reader looked in (reading.include_folders).
    read = [*files, *(Path(file) for file in dict.fromkeys(s.file for s in _statements) if file != reading.BINDINGS)]
    internals.set_include_folders(reading.include_folders(search_paths, read))
    for path in files:  # before registering: a path named there may be under one of these folders
        for folder in path_directives(path):
            add_to_path(folder)
    texts = [path.read_text() for path in dict.fromkeys(read)] + list(bindings)
    register_referenced(_statements, texts)
    for path in files:
        with translate_errors(path):
            gin.parse_config_file(str(path))
    with translate_errors(None):
        gin.parse_config(list(bindings))
    _note_registered_names(_statements)
    _check_macros()
    _check_value_types()
    _build_in_written_order()


@contextlib.contextmanager
def set_aside() -> Iterator[None]:
    """The caller's gin config and ``sys.path``, as they were before the block, again once it ends: for reading
    a config that is not the caller's (:func:`ginlight.load_system`) without disturbing theirs."""
    statements, path = list(_statements), list(sys.path)
    with internals.config_set_aside():
        try:
            yield
        finally:
            _statements[:] = statements
            sys.path[:] = path


def statements() -> list[reading.Statement]:
    """The statements of the config :func:`parse` read last, in order: where each binding is written."""
    return list(_statements)


def register_referenced(statements: Sequence[reading.Statement], texts: Iterable[str]) -> None:
    """Registers the components that ``statements`` name in bindings and references: the stack's
    (:func:`ginlight.gin.registry.register_named`), then any other class or callable named by its import path
    or by a :data:`REGISTER_DIRECTIVE` line of ``texts`` (:func:`ginlight.gin.registry.register_importable`)."""
    names = {name for text in texts for name in _REGISTER_LINE.findall(text)} | _named(statements)
    registry.register_named(names)
    registry.register_importable(names)


def _named(statements: Sequence[reading.Statement]) -> set[str]:
    """The configurables ``statements`` bind (in a binding or a block) or reference, as written."""
    names = set()
    for statement in statements:
        if statement.kind in ("binding", "block"):
            names.add(statement.selector)
            names.update(ref.name for ref in reading.references_in(statement.value)
                         if isinstance(ref, reading.Reference))
    return names


def _note_registered_names(statements: Sequence[reading.Statement]) -> None:
    """Fills :data:`_registered_as` for ``statements``; after gin parsed them (dynamic registration registers then)."""
    _registered_as.clear()
    for name in _named(statements):
        path = name.rsplit("/", 1)[-1]
        if "." not in path or internals.selectors_matching(path):
            continue
        try:
            registered = internals.registered_name(importable.configurable_at(path))
        except importable.NotConfigurable:
            continue
        if registered is not None:
            _registered_as[path] = registered


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
    return [REGISTER_DIRECTIVE + path for path in registry.registered_by_name(selectors)]


def config_str() -> str:
    """gin's config (:func:`gin.config_str`) as a text that parses in a fresh process: with the
    :data:`REGISTER_DIRECTIVE` lines its objects registered by path need."""
    return "\n".join([*register_directives(internals.parsed_bindings()), gin.config_str()])


def _build_in_written_order() -> None:
    """Orders each configurable's bindings by name, as the operative config writes them.

    gin builds referenced arguments in binding order, and building draws random
    initial weights; so a run and the rerun of its operative config (sorted by gin)
    must build in the same order to start from the same weights.
    """
    bindings = internals.parsed_bindings()
    for key, params in list(bindings.items()):
        bindings[key] = dict(sorted(params.items()))


resolve = reading.resolve


class translate_errors:
    """Context manager that re-raises gin's exceptions as :class:`ConfigError`.

    Args:
        source: the gin file being parsed, for errors gin gives no location for.
    """

    def __init__(self, source: Path | None):
        self.source = source

    def __enter__(self) -> None:
        # gin logs every search path it tries; the error says it once.
        for name in _GIN_LOGGERS:
            logging.getLogger(name).addFilter(_quiet_gin_search)

    def __exit__(self, exc_type, exc, tb) -> bool:
        for name in _GIN_LOGGERS:
            logging.getLogger(name).removeFilter(_quiet_gin_search)
        if exc is None or isinstance(exc, ConfigError) or not isinstance(exc, Exception):
            return False
        raise _to_config_error(exc, self.source) from None


_GIN_LOGGERS = ("", "absl")


def _quiet_gin_search(record: logging.LogRecord) -> bool:
    return not record.getMessage().startswith(("Path not found", "system_path_file_exists"))


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
            location += f":{exc.args[1][0] - 1}"
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
        return f"cannot import module {text.split('No module named ')[-1]}.", (
            "Install it, or pass the folder that holds it with --project."
        )
    if isinstance(exc, OSError) and "Unable to open file" in text:
        return text.split(". Searched")[0] + ".", "Check the path, or add its folder with --gin_search_paths."
    if isinstance(exc, tokenize.TokenError):
        return f"gin syntax error: {exc.args[0]} (an unclosed bracket or quote?)", "Check brackets and quotes."
    if isinstance(exc, SyntaxError) or exc.__class__.__name__ == "ParseError":
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


def _check_macros() -> None:
    """gin only notices an undefined ``%MACRO`` when it is used; catch it now."""
    defined = {scope for (scope, selector) in internals.parsed_bindings() if selector == "gin.macro"}
    for reference in gin.config.iterate_references(internals.parsed_bindings()):
        if reference.configurable.wrapped is not gin.config.macro:
            continue
        name = reference.scoped_selector.rsplit("/", 1)[0]
        if name not in defined:
            raise ConfigError(
                f"macro '%{name}' is used but never defined.",
                location=_macro_location(name),
                hint=f"Define it (`{name} = ...`) in a gin file or with --gin_bindings='{name}=...'.",
            )


def _check_value_types() -> None:
    """A string bound where only numbers or booleans belong fails now, with its line."""
    for (scope, selector), params in internals.parsed_bindings().items():
        configurable = internals.configurable(selector, exact=True)
        if configurable is None or configurable.wrapped is gin.config.macro:
            continue
        expected = _scalar_parameters(configurable.wrapped)
        for param, value in params.items():
            value = resolve_macro(value)
            if isinstance(value, str) and param in expected:
                name = f"{scope}/{configurable.name}" if scope else configurable.name
                raise ConfigError(
                    f"'{name}.{param}' is bound to the string {value!r}, but it takes {expected[param]}.",
                    location=binding_location(name, param),
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


def build_error(exc: Exception) -> ConfigError | None:
    """A :class:`ConfigError` for an exception raised while gin built a component.

    Returns None when the exception does not come from a gin call (a bug in user
    code is not a configuration error, and keeps its traceback).
    """
    text = str(exc)
    missing = internals.REQUIRED_UNBOUND.search(text)
    if missing:
        params = [p.strip(" '") for p in missing[2].split(",")]
        return ConfigError(
            f"'{missing[1]}' needs a value for {', '.join(params)} and none is bound.",
            location=_reference_location(missing[1]),
            hint="Bind it in a gin file, e.g. " + "; ".join(f"`{missing[1]}.{p} = ...`" for p in params) + ".",
        )
    call = internals.MESSAGE_CALL.search(text)
    if call is None:
        return None
    name = call["name"]
    cause = text[: call.start()].strip()
    missing_args = re.search(r"missing \d+ required positional arguments?: (.*)", cause.splitlines()[0])
    if missing_args:
        params = re.findall(r"'([^']+)'", missing_args[1])
        if params[0] in ("params", "optimizer"):  # @torch.optim.Adam() where @torch.optim.Adam belongs
            return ConfigError(
                f"'{name}' was called without its {params[0]}: it is bound as an instance, `@{name}()`, "
                "where a callable belongs.",
                location=_reference_location(name),
                hint=f"Drop the parentheses: `System.optimizer = @{name}` (or `System.scheduler = ...`); "
                f"the System calls it with the {params[0]}.",
            )
        return ConfigError(
            f"'{name}' needs a value for {', '.join(params)} and none is bound.",
            location=_reference_location(name),
            hint="Bind it in a gin file, e.g. " + "; ".join(f"`{name}.{p} = ...`" for p in params) + ".",
        )
    where = binding_location(name)
    return ConfigError(
        f"building '{name}' failed: {cause.splitlines()[0] if cause else type(exc).__name__}",
        location=where,
        hint=f"Check the values bound to '{name}'.",
    )


def _names(written: str, name: str) -> bool:
    """Whether the selector ``written`` (short or long form, maybe scoped) names the configurable ``name``."""
    scope, _, written = written.rpartition("/")
    written = _registered_as.get(written, written)
    name_scope, _, name = name.rpartition("/")
    return (not name_scope or scope == name_scope) and (
        name == written or name.endswith("." + written) or written.endswith("." + name))


def located(error: ConfigError) -> ConfigError:
    """``error`` as raised by its code, located at the binding it names (:attr:`ConfigError.binding`) when it
    has no location of its own. (Raised inside a gin call, ``error`` is gin's proxy, which appends the call.)"""
    location = error.location
    if location is None and error.binding:
        name, _, parameter = error.binding.rpartition(".")
        location = binding_location(name, parameter)
    return ConfigError(error.message, location, error.hint, error.binding)


def _reference_location(name: str) -> str | None:
    """Where ``@name()`` is first written: ``file:line``, or ``--gin_bindings``."""
    for statement in _statements:
        if any(isinstance(ref, reading.Reference) and ref.evaluate and _names(ref.name, name)
               for ref in reading.references_in(statement.value)):
            return statement.location
    return None


def binding_location(name: str, parameter: str | None = None) -> str | None:
    """Where ``name.parameter`` (any parameter when None) is bound: ``file:line``, or
    ``--gin_bindings``. The last binding wins in gin, so the last one is reported.
    """
    found = None
    for statement in _statements:
        if (statement.kind == "binding" and statement.param is not None and _names(statement.name, name)
                and parameter in (None, statement.param)):
            found = statement.location
    return found


def _macro_location(name: str) -> str | None:
    """Where ``%name`` is first used: ``file:line``, or ``--gin_bindings``."""
    for statement in _statements:
        if reading.Macro(name) in reading.references_in(statement.value):
            return statement.location
    return None


#: A comment line in a gin file that puts a folder on ``sys.path`` before parsing,
#: so an operative config reruns from any directory.
PATH_DIRECTIVE = "# ginlight-path: "
_HOME_PACKAGES = ("ginlight", "gin", "torch", "lightning", "torchmetrics", "builtins", "__main__")


def path_directives(gin_file: Path) -> list[str]:
    """The folders a gin file asks to have on ``sys.path`` (see :data:`PATH_DIRECTIVE`)."""
    return [line[len(PATH_DIRECTIVE):].strip() for line in gin_file.read_text().splitlines()
            if line.startswith(PATH_DIRECTIVE)]


def operative_config(header: str = "") -> str:
    """gin's operative config, made runnable on its own, from any directory.

    gin lists the modules imported by ``import`` lines; this adds the modules of
    every user configurable that was called, and a path directive for each folder
    that a module of the user's (:func:`ginlight.gin.source.user_modules`) among them
    was imported from. Derived from what was imported, the directives come out
    the same when the operative config itself is run, resumed or reproduced.
    """
    text = gin.operative_config_str()
    # gin writes the imports it parsed first, then a blank line; they join the modules added here in one
    # block, so that the config and the rerun of it (which parsed them all) come out the same.
    # (gin writes `import a.b as a2` where top-level names repeat; `import a.b` reads the same.)
    gin_imports = re.match(r"(?:(?:from \S+ )?import \S+(?: as \S+)?\n)*\n*", text)[0]
    # Under dynamic registration gin imports each configurable's module itself, and its selectors start with
    # the names those lines bind: they stay as gin wrote them, its `from __gin__` line first.
    dynamic = gin_imports.startswith(reading.DYNAMIC_REGISTRATION + "\n")
    modules = {f"{package}.{module}" if package else module for package, module
               in re.findall(r"^(?:from (\S+) )?import (\S+)", gin_imports, re.M) if package != "__gin__"}
    for _, selector in internals.operative_bindings():
        module = getattr(internals.configurable(selector, exact=True).wrapped, "__module__", None) or ""
        if module.split(".")[0] not in _HOME_PACKAGES:
            modules.add(module)
    lines = [f"# {line}" if line else "#" for line in header.splitlines()]
    lines += [PATH_DIRECTIVE + path for path in import_roots(modules)]
    lines += register_directives(internals.operative_bindings())
    lines += gin_imports.strip().splitlines() if dynamic else [f"import {module}" for module in sorted(modules)]
    return "\n".join(lines + [text[len(gin_imports):]]) + "\n"


def import_roots(modules: Iterable[str] | None = None) -> list[str]:
    """The folders the user's ``modules`` (by default every module of the user's) were imported from.

    These go on ``sys.path`` wherever the config is parsed again: a rerun, a
    spawned process, a DataLoader worker.
    """
    user = source.user_modules()
    names = user if modules is None else [m for m in modules if m in user]
    return sorted({str(source.import_root(name, user[name])) for name in names})


def merged_input(gin_files: Sequence[Path], bindings: Sequence[str]) -> str:
    """The input as composed: each file's text in order, includes inlined, then the bindings.

    Call after :func:`parse`: the includes are those its reading resolved.
    """
    includes = {(Path(s.file).resolve(), s.line): Path(s.value) for s in _statements if s.kind == "include"}
    parts = [_inlined(Path(path), includes) for path in gin_files]
    if bindings:
        parts.append(_PART_HEADER.format("--gin_bindings") + "\n" + "\n".join(bindings) + "\n")
    return "\n".join(parts)


def same_input(a: str, b: str) -> bool:
    """Whether two inputs as :func:`merged_input` composes them are one config: the same text, whatever the
    paths their files were read from (a checkpoint's config is a new temporary file each time)."""
    return _PART_HEADER_LINE.sub("", a) == _PART_HEADER_LINE.sub("", b)


#: The line that heads each part of :func:`merged_input`: a file's path, or ``--gin_bindings``.
_PART_HEADER = "# ---- {} ----"
_PART_HEADER_LINE = re.compile(r"^# ---- .* ----$", re.M)


def _inlined(path: Path, includes: dict[tuple[Path, int], Path]) -> str:
    """``path``'s text, headed by its name, with each ``include`` line followed by the included text."""
    lines = path.read_text().splitlines()
    for number in sorted((line for file, line in includes if file == path.resolve()), reverse=True):
        included = _inlined(includes[(path.resolve(), number)], includes).rstrip()
        lines[number - 1:number] = [f"# {lines[number - 1].strip()}", included]
    return _PART_HEADER.format(path) + "\n" + "\n".join(lines).rstrip() + "\n"


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


def describe(implicit: dict[str, dict[str, str]] | None = None) -> str:
    """The parsed config as ``--print_config`` shows it, building nothing.

    Every parameter of every configurable the config binds or references, and of
    those in ``implicit`` (what ginlight builds whatever the config says, such as
    the Trainer), one line each: the bound value and where it was bound
    (``file:line`` or ``--gin_bindings``), or the signature's default. ``implicit``
    also gives, per parameter, the value ginlight passes where nothing is bound.
    Call after :func:`parse`.
    """
    implicit = implicit or {}
    registry.register_named(implicit)
    blocks = {("", internals.configurable(name).selector) for name in implicit}
    blocks |= {key for key in internals.parsed_bindings() if key[1] != "gin.macro"}
    for reference in gin.config.iterate_references(internals.parsed_bindings()):
        if reference.configurable.wrapped is not gin.config.macro:
            scope = reference.scoped_selector.rpartition("/")[0]
            blocks.add((scope, reference.configurable.selector))
    rows: list[tuple[str, str]] = []
    macros = [s for s in _statements if s.kind == "binding" and s.param is None]
    if macros:
        rows.append(("# Macros", ""))
        last = {s.selector: s for s in macros}
        rows += [(f"{name} = {last[name].value!r}", last[name].location) for name in sorted(last)]
    for scope, selector in sorted(blocks, key=lambda key: (key[1], key[0])):
        name = f"{scope}/{selector}" if scope else selector
        bound = internals.parsed_bindings().get((scope, selector), {})
        passed = next((values for key, values in implicit.items()
                       if internals.configurable(key).selector == selector), {}) if not scope else {}
        rows.append((f"# {name}", ""))
        signature = signature_parameters(selector)
        parameters = list(bound) if scope else [*signature, *bound]
        for param in dict.fromkeys(parameters):
            if param in bound:
                statement = _binding_statement(name, param)
                value = repr(statement.value) if statement else repr(bound[param])
                rows.append((f"{name}.{param} = {value}", statement.location if statement else "bound"))
            elif param in passed:
                rows.append((f"{name}.{param} = {passed[param]}", "ginlight's default"))
            else:
                default = signature[param]
                if default is inspect.Parameter.empty or default is gin.REQUIRED:
                    rows.append((f"{name}.{param} = REQUIRED", "required, and not bound"))
                else:
                    rows.append((f"{name}.{param} = {default!r}", "default"))
    width = min(max(len(text) for text, origin in rows if origin), 80)
    lines = ["# Every parameter of every configurable this config reaches. After each value: where it",
             "# was bound (file:line or --gin_bindings), `default` (the signature's) or `ginlight's default`."]
    for text, origin in rows:
        if not origin:
            lines += ["", text]
        else:
            lines.append(f"{text.ljust(width)}  # {origin}")
    return "\n".join(lines) + "\n"


def _binding_statement(name: str, param: str) -> reading.Statement | None:
    """The statement that binds ``name.param`` last (gin's last binding wins)."""
    found = None
    for statement in _statements:
        if statement.kind == "binding" and statement.param == param and _names(statement.name, name):
            found = statement
    return found


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
