"""Reads gin text as written: statements with their file and line, includes followed.

This is ginlight's one reader of gin text: parsing (which registers what a config
names, and locates errors), ``--print_config``, ``config.gin``, ``ginlight-diff``,
``ginlight-runs`` and the sweep's search space all read through :func:`read`, and
:func:`resolve` with :func:`include_folders` is the one rule for finding a file.

gin's parser (``gin.config_parser``) is run with a delegate that keeps references
and macros as text, so reading needs neither gin's registry nor the modules a
config imports (nor torch). gin itself keeps no line numbers once a config is
parsed; these statements are what error messages and ``--print_config`` point at.
"""

from __future__ import annotations

import functools
import itertools
import os
import re
import tokenize
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator, NamedTuple, Sequence

from gin import config_parser

from ginlight import internals
from ginlight.errors import ConfigError

__all__ = ["Reference", "Macro", "KeepAsText", "Statement", "include_folders", "read", "parse_binding", "resolve",
           "references_in", "instances_in", "without", "BINDINGS", "DYNAMIC_REGISTRATION"]

#: The origin of a statement given with ``--gin_bindings``.
BINDINGS = "--gin_bindings"


@dataclass(frozen=True)
class Reference:
    """``@name`` or ``@name()`` as written."""

    name: str
    evaluate: bool

    def __repr__(self) -> str:
        return f"@{self.name}()" if self.evaluate else f"@{self.name}"


@dataclass(frozen=True)
class Macro:
    """``%NAME`` as written."""

    name: str

    def __repr__(self) -> str:
        return f"%{self.name}"


class KeepAsText(config_parser.ParserDelegate):
    """Has gin's parser keep references and macros as written (:class:`Reference`, :class:`Macro`)."""

    def configurable_reference(self, scoped_configurable_name: str, evaluate: bool) -> Reference:
        return Reference(scoped_configurable_name, evaluate)

    def macro(self, macro_name: str) -> Macro:
        return Macro(macro_name)


class Statement(NamedTuple):
    """One statement of a gin file or binding.

    ``kind`` is ``"binding"`` (``param`` is None for a macro definition; a
    parameter set inside a block is a binding at its own line), ``"block"``
    (the ``selector:`` line that opens a block of bindings; ``param`` and
    ``value`` are None), ``"import"`` (``selector`` holds the module, ``value``
    the statement as gin writes it) or ``"include"`` (``selector`` holds the
    included file as written, ``value`` the path it resolved to). ``file`` is
    the path of the file as it was found, or :data:`BINDINGS` with ``text`` the
    binding as given.

    In a file under ``from __gin__ import dynamic_registration``, selectors and
    references name what they name by import path (``optim.AdamW`` after
    ``import torch.optim as optim`` is ``torch.optim.AdamW``); ``text`` keeps
    them as written.
    """

    kind: str
    scope: str
    selector: str
    param: str | None
    value: Any
    file: str
    line: int
    text: str

    @property
    def location(self) -> str:
        """``file:line``, or ``--gin_bindings`` for a binding given on the command line."""
        return self.file if self.file == BINDINGS else f"{self.file}:{self.line}"

    @property
    def name(self) -> str:
        """The configurable with its scope (``train/DataLoader``), or the macro's name."""
        return f"{self.scope}/{self.selector}" if self.scope else self.selector


def resolve(gin_file: str | os.PathLike, search_paths: Sequence[str | os.PathLike] = ()) -> Path:
    """The existing path of ``gin_file``: as given when absolute, else under the first search path that has it.

    This is the one rule for ``--gin_file`` and ``include`` alike (gin's own
    include lookup is given the same folders, see :func:`ginlight.gin.parsing.parse`).
    """
    path = Path(gin_file)
    candidates = [path] if path.is_absolute() else [Path(p) / path for p in search_paths] or [path]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    searched = ", ".join(str(Path(p).resolve()) for p in search_paths) or os.getcwd()
    raise ConfigError(
        f"gin file '{gin_file}' not found (searched: {searched}).",
        hint="Check the path, or add its folder with --gin_search_paths.",
    )


def include_folders(search_paths: Sequence[str | os.PathLike], gin_files: Sequence[Path]) -> list[str]:
    """Where ``include`` looks, in order: the search paths, then the folders of ``gin_files``.

    The one rule for includes: :func:`read` applies it with the files read so far
    (the given ones, then each included one), and gin is given the same folders.
    """
    return list(dict.fromkeys([*map(str, search_paths), *(str(Path(f).parent) for f in gin_files)])) or [""]


def read(gin_files: Sequence[Path], bindings: Sequence[str] = (),
         search_paths: Sequence[str | os.PathLike] = ()) -> list[Statement]:
    """Every statement of ``gin_files`` (each include's statements in its place), then of ``bindings``.

    Includes resolve by :func:`include_folders`. Raises :class:`ConfigError` for
    text gin cannot read, located at its line, and for a binding that cannot be
    read, quoting it.
    """
    statements: list[Statement] = []
    files = [Path(path) for path in gin_files]  # grows by each included file: where includes look next
    for path in files[:len(gin_files)]:
        statements += _read_file(path, search_paths, files, [])
    names = _ImportPaths()
    for binding in bindings:
        try:
            statements += _read_text(binding, BINDINGS, names)
        except (SyntaxError, tokenize.TokenError) as exc:
            raise ConfigError(f"cannot read the binding `{binding}`: {_reason(exc).rstrip('.')}.", location=BINDINGS,
                              hint="Write it as `configurable.parameter = value`, e.g. "
                                   "--gin_bindings='Trainer.max_epochs=3'.") from None
    return statements


def _read_text(text: str, origin: str, names: _ImportPaths | None = None) -> list[Statement]:
    """The statements of ``text`` given outside a gin file, each with ``origin`` as its file and ``text`` as its
    text; ``names`` carries the imports of earlier texts parsed with it (gin parses all bindings as one)."""
    names = names or _ImportPaths()
    return [names.read(_statement(item, origin)._replace(text=text))
            for item in config_parser.ConfigParser(text, KeepAsText())]


def _read_file(path: Path, search_paths: Sequence[str | os.PathLike], files: list[Path],
               including: list[Path]) -> list[Statement]:
    if path.resolve() in including:
        raise ConfigError(f"'{path}' includes itself (through {' -> '.join(map(str, including))}).",
                          location=str(including[-1]))
    try:
        parsed = _parsed(path.read_text())
    except (SyntaxError, tokenize.TokenError) as exc:
        raise ConfigError(f"gin syntax error: {_reason(exc)}", location=f"{path}:{_line(exc)}",
                          hint="Check the statement's syntax (`configurable.parameter = value`), "
                               "its brackets and quotes.") from None
    statements, file, names = [], str(path), _ImportPaths()  # gin gives each file a parse context of its own
    for offset, parsed_statement in parsed:
        statement = names.read(parsed_statement._replace(file=file, line=offset + parsed_statement.line))
        if statement.kind == "include":
            try:
                included = resolve(statement.selector, include_folders(search_paths, files))
            except ConfigError as exc:
                raise ConfigError(exc.message, location=statement.location, hint=exc.hint) from None
            files.append(included)
            statements.append(statement._replace(value=str(included)))
            statements += _read_file(included, search_paths, files, [*including, path.resolve()])
        else:
            statements.append(statement)
    return statements


def _statement(item: Any, file: str) -> Statement:
    line, text = item.location.line_num, item.location.line_content.strip()
    if isinstance(item, config_parser.IncludeStatement):
        return Statement("include", "", item.filename, None, None, file, line, text)
    if isinstance(item, config_parser.ImportStatement):
        return Statement("import", "", item.module, None, item.format(), file, line, text)
    if isinstance(item, config_parser.BlockDeclaration):
        return Statement("block", item.scope or "", item.selector, None, None, file, line, text)
    return Statement("binding", item.scope or "", item.selector, item.arg_name or None, item.value, file, line, text)


#: The import that switches gin to dynamic registration for the rest of a file (gin's ``__gin__`` feature).
DYNAMIC_REGISTRATION = "from __gin__ import dynamic_registration"


class _ImportPaths:
    """What the names of one file (or of the bindings) stand for, as gin's parse context keeps them:
    under dynamic registration, the first part of a selector is a name an ``import`` bound."""

    def __init__(self) -> None:
        self.dynamic = False
        self.symbols: dict[str, str] = {}

    def read(self, statement: Statement) -> Statement:
        """``statement``, its names given by import path where dynamic registration is on; an import is noted."""
        if statement.kind == "import":
            self._note(statement)
        elif self.dynamic and statement.kind in ("binding", "block"):
            macro = statement.kind == "binding" and statement.param is None  # a macro's name is no import path
            selector = statement.selector if macro else self.path(statement.selector)
            return statement._replace(selector=selector, value=self._value(statement.value))
        return statement

    def _note(self, statement: Statement) -> None:
        module, written = statement.selector, statement.value
        if written == DYNAMIC_REGISTRATION:
            self.dynamic = True
            return
        alias = written.split(" as ")[1] if " as " in written else None
        if written.startswith("from "):
            self.symbols[alias or module.rsplit(".", 1)[-1]] = module
        elif alias:
            self.symbols[alias] = module
        else:
            self.symbols[module.split(".")[0]] = module.split(".")[0]

    def path(self, selector: str) -> str:
        """The import path of ``selector`` (maybe scoped); as written when its first part was not imported."""
        scope, slash, name = selector.rpartition("/")
        first, dot, rest = name.partition(".")
        if first not in self.symbols:
            return selector
        return f"{scope}{slash}{self.symbols[first]}{dot}{rest}"

    def _value(self, value: Any) -> Any:
        if isinstance(value, Reference):
            return Reference(self.path(value.name), value.evaluate)
        if isinstance(value, (list, tuple, set)):
            return type(value)(self._value(item) for item in value)
        if isinstance(value, dict):
            return {self._value(key): self._value(item) for key, item in value.items()}
        return value


# Cuts between pieces of a file: before a comment line (gin's operative configs head each configurable's
# section with one, and the whole file with lines naming its run), and at a blank line before an unindented one;
# before comment lines only where an unindented statement follows them (an indented one goes on a block).
_PIECE_START = re.compile(r"\n(?=#)(?=(?:[ \t]*(?:#.*)?\n)*[^\s#])|\n\n(?=[^\s#])")


def _parsed(text: str) -> list[tuple[int, Statement]]:
    """The statements of ``text``, without a file, as ``(line offset, statement)``: each distinct piece of
    ``text`` is parsed once per process.

    Runs of one project share most of their operative configs' sections, so
    listing many runs (``ginlight-runs``) tokenizes each distinct one once. A cut
    inside a statement leaves a piece that does not parse; then the whole text
    is parsed as one, so that an error is reported at its line in the file.
    """
    cuts = list(_PIECE_START.finditer(text))
    starts = [0, *(cut.end() for cut in cuts)]
    ends = [*(cut.start() for cut in cuts), len(text)]
    offsets = list(itertools.accumulate(text.count("\n", start, end) for start, end in zip([0, *starts], starts)))
    try:
        return [(offset, statement) for offset, start, end in zip(offsets, starts, ends)
                for statement in _parse_piece(text[start:end])]
    except (SyntaxError, ValueError, tokenize.TokenError):
        return [(0, _statement(item, "")) for item in config_parser.ConfigParser(text, KeepAsText())]


@functools.cache
def _parse_piece(text: str) -> tuple[Statement, ...]:
    """One piece of a file, parsed (shared between callers: never modify it)."""
    return tuple(_statement(item, "") for item in config_parser.ConfigParser(text, KeepAsText()))


def _reason(exc: Exception) -> str:
    if isinstance(exc, SyntaxError):
        return exc.msg
    return f"{internals.token_error(exc)[0]} (an unclosed bracket or quote?)"


def _line(exc: Exception) -> int:
    if isinstance(exc, SyntaxError):
        return exc.lineno or 0
    return internals.token_error(exc)[1]


def references_in(value: Any) -> Iterator[Reference | Macro]:
    """The references and macros inside a statement's value, nested containers included."""
    return instances_in(value, (Reference, Macro))


def instances_in(value: Any, kinds: tuple[type, ...]) -> Iterator[Any]:
    """The instances of ``kinds`` inside a gin value: in its lists, tuples and sets, and its dicts' keys and
    values, at any depth."""
    if isinstance(value, kinds):
        yield value
    elif isinstance(value, (list, tuple, set)):
        for item in value:
            yield from instances_in(item, kinds)
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from instances_in(key, kinds)
            yield from instances_in(item, kinds)


def parse_binding(text: str, name: str, where: str, hint: str) -> Statement:
    """The one binding ``text`` is, written outside a gin file (a sweep line); its ``file`` is ``where``.

    Raises :class:`ConfigError` located at ``where``, calling the text ``name``,
    when gin cannot read it or it is not exactly one binding.
    """
    try:
        statements = _read_text(text, where)
    except (SyntaxError, tokenize.TokenError) as exc:
        raise ConfigError(f"cannot read {name}: {_reason(exc)}", location=where, hint=hint) from None
    if len(statements) != 1 or statements[0].kind != "binding":
        raise ConfigError(f"{name} is not one binding.", location=where, hint=hint)
    return statements[0]


def without(gin_file: Path, dropped: Sequence[str]) -> str:
    """The text of ``gin_file`` (one file, no includes) less the bindings of the parameters ``dropped``
    (``ginlight.System.dataloaders``) and of every configurable that only their values reach.

    For :func:`ginlight.load_system`, which builds the System without its data: gin need not parse
    the loaders' and datasets' bindings it will never call. A configurable that anything else binds
    or references (directly, or through another configurable's bindings or a macro) keeps all its
    bindings. (Code that calls a dataset's configurable itself, unnamed in the config, would get its
    defaults; but then the System would build a dataset, which ``load_system`` promises not to.)
    Names match as gin matches a partial name: one ends with ``.`` and the other. Each dropped
    statement's lines are left blank, so that lines keep their numbers in messages.
    """
    statements = read([gin_file])
    lines = gin_file.read_text().splitlines(keepends=True)
    if any(s.kind in ("block", "include") for s in statements):  # lines and statements do not pair up simply
        return "".join(lines)
    ends = [s.line - 1 for s in statements[1:]] + [len(lines)]  # a statement's last line, or a comment after it

    def named(name: str, names: set[str]) -> bool:
        return any(name == other or name.endswith("." + other) or other.endswith("." + name) for other in names)

    def refs(chosen: Iterable[Statement]) -> set[str]:
        return {ref.name.rsplit("/", 1)[-1] for s in chosen for ref in references_in(s.value)
                if isinstance(ref, Reference)}

    def reached(roots: set[str], edges: dict[str, set[str]]) -> set[str]:
        reach, todo = set(), set(roots)
        while todo:
            reach |= todo
            todo = {name for selector, names in edges.items() if named(selector, todo) for name in names} - reach
        return reach

    selectors = {s.selector for s in statements if s.param is not None}
    targets = {(selector, name.rsplit(".", 1)[1]) for name in dropped for selector in selectors
               if named(selector, {name.rsplit(".", 1)[0]})}
    is_dropped = [(s.selector, s.param) in targets for s in statements]
    kept = [s for s, drop in zip(statements, is_dropped) if not drop]
    edges = {selector: set() for selector in selectors}  # configurable -> what its bindings reference
    for statement in kept:
        if statement.param is not None:
            edges[statement.selector] |= refs([statement])
    only_theirs = reached(refs(s for s, drop in zip(statements, is_dropped) if drop), edges)
    theirs = {selector for selector in selectors if named(selector, only_theirs)}
    others = reached(refs(s for s in kept if s.param is None or s.selector not in theirs), edges)
    only = {name for name in only_theirs if not named(name, others)}
    unreached = {selector for selector in selectors if named(selector, only)}
    for statement, end, drop in zip(statements, ends, is_dropped):
        if drop or (statement.param is not None and statement.selector in unreached):
            while end > statement.line and lines[end - 1].strip()[:1] in ("", "#"):
                end -= 1  # comments after it stay: `# ginlight-path:` and `# ginlight-register:` lines among them
            lines[statement.line - 1:end] = ["\n"] * (end - statement.line + 1)
    return "".join(lines)
