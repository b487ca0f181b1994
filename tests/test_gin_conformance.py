"""gin's own parser and ginlight's reader read the same config: every construct of gin 0.5, and the .gin files
gin-config ships.

Each corpus file is parsed by gin itself (``gin.parse_config_file``: its bindings, its imports and its includes
as gin records them) and read by :func:`ginlight.gin.reading.read`; both are brought to one form, every name as
gin registered it, and compared whole. A construct gin reads and the reader does not fails here.
"""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path
from typing import Any

import gin
import pytest

from ginlight import internals
from ginlight.gin import reading, importable
from ginlight.gin.reading import Macro, Reference

#: The package the corpus configures, written once per session (gin registers its names for the process).
PACKAGE = "ginread_corpus"
MODULES = {
    "__init__.py": """
        import enum

        import gin

        gin.constant('ginread_corpus.SIZE', 3)


        @gin.constants_from_enum
        class Color(enum.Enum):
            RED = 1
            BLUE = 2


        @gin.configurable
        def combine(first=None, second=None, third=None):
            return first, second, third


        @gin.configurable
        class Thing:
            def __init__(self, size=1, color=None, parts=()):
                self.size, self.color, self.parts = size, color, parts
        """,
    "layers/__init__.py": "",
    "layers/deep.py": """
        import gin


        @gin.configurable
        def dense(units=1, activation=None):
            return units, activation


        def plain(width=1, depth=2):  # not decorated: dynamic registration registers it
            return width, depth
        """,
}

#: One config per construct, by name; ``include`` paths resolve as their tests set up.
CORPUS = {
    "bindings_scopes_and_macros": """
        # Plain bindings, macros, scopes (nested too) and references, called and not.
        import ginread_corpus
        UNITS = 16
        ginread_corpus.combine.first = %UNITS
        outer/inner/ginread_corpus.combine.first = 2
        train/combine.second = @Thing()
        combine.third = {'a': [@Thing, @eval/Thing()], 'b': (1, 2.5, None, True, 'text')}
        Thing.size = %ginread_corpus.SIZE
        Thing.color = %ginread_corpus.Color.BLUE
        eval/Thing.parts = %gin.REQUIRED
        """,
    "blocks": """
        import ginread_corpus

        ginread_corpus.Thing:
          size = 5
          # a comment inside a block
        # and one at the margin: the block goes on

        # after a blank line too
          color = %ginread_corpus.Color.RED
          parts = [
              1,
              2,
          ]

        train/combine:
          first = @Thing()  # a trailing comment
          second = %ginread_corpus.Color.RED
        combine.third = 'after the blocks # not a comment'

        outer/inner/Thing:
          size = \\
              7
        """,
    "singletons": """
        import ginread_corpus
        shared/gin.singleton.constructor = @Thing
        combine.first = @shared/gin.singleton()
        combine.second = @shared/gin.singleton()
        """,
    "dynamic_registration": """
        from __gin__ import dynamic_registration
        import ginread_corpus
        import ginread_corpus.layers.deep
        import ginread_corpus.layers.deep as deep_alias
        from ginread_corpus.layers import deep

        ginread_corpus.combine.first = @deep.plain()
        ginread_corpus.combine.second = @ginread_corpus.layers.deep.dense
        train/deep_alias.plain.width = 7
        deep.dense:
          units = 32
          activation = @deep_alias.plain
        eval/deep_alias.dense:
          units = 64
        ginread_corpus.Thing.color = %gin.REQUIRED
        """,
    "submodule_imports": """
        import ginread_corpus.layers.deep
        dense.units = 4
        ginread_corpus.layers.deep.dense.activation = 'relu'
        """,
    "nested_includes": """
        include 'parts/middle.gin'
        combine.first = 'top'
        """,
}
#: What the configs above include: one beside its includer, one found through a search path.
INCLUDED = {
    "parts/middle.gin": "import ginread_corpus\ninclude 'leaf.gin'\ninclude 'searched.gin'\n"
                        "combine.second = 'middle'\n",
    "parts/leaf.gin": "import ginread_corpus.layers.deep\ndense.units = 8\n",
    "search/searched.gin": "Thing.size = 11\n",
}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("corpus")
    for name, text in MODULES.items():
        path = root / "src" / PACKAGE / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    for name, text in INCLUDED.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    for name, text in CORPUS.items():
        (root / f"{name}.gin").write_text(textwrap.dedent(text).lstrip())
    sys.path.insert(0, str(root / "src"))
    yield root
    sys.path.remove(str(root / "src"))


def _shipped_by_gin() -> list[Path]:
    """The .gin files in gin-config's own package (gin 0.5.0 ships none)."""
    return sorted(Path(gin.__file__).parent.rglob("*.gin"))


def _registered(name: str) -> str:
    """The selector gin registered ``name`` under: short or long form, or (under dynamic registration) its
    import path."""
    found = internals.configurable(name)
    if found is not None:
        return found.selector
    return internals.registered_name(importable.configurable_at(name))


def _ginlight_value(value: Any) -> Any:
    if isinstance(value, Reference):
        scope, _, name = value.name.rpartition("/")
        return ("@", scope, _registered(name), value.evaluate)
    if isinstance(value, Macro):
        return ("%", value.name)
    return _containers(value, _ginlight_value)


def _gin_value(value: Any) -> Any:
    if isinstance(value, gin.config.ConfigurableReference):
        scope = value.scoped_selector.rpartition("/")[0]
        if value.configurable.selector in ("gin.macro", "gin.constant"):
            return ("%", scope)
        return ("@", scope, value.configurable.selector, value.evaluate)
    return _containers(value, _gin_value)


def _containers(value: Any, each) -> Any:
    if isinstance(value, (list, tuple)):
        return type(value)(each(item) for item in value)
    if isinstance(value, dict):
        return {each(key): each(item) for key, item in value.items()}
    return value


def read_by_ginlight(path: Path, search_paths: list[Path]) -> dict[str, Any]:
    bindings, imports, includes = {}, [], []
    for statement in reading.read([path], search_paths=search_paths):
        if statement.kind == "binding" and statement.param is None:
            bindings[(statement.selector, "gin.macro", "value")] = _ginlight_value(statement.value)
        elif statement.kind == "binding":
            bindings[(statement.scope, _registered(statement.selector), statement.param)] = \
                _ginlight_value(statement.value)
        elif statement.kind == "import" and statement.value != reading.DYNAMIC_REGISTRATION:
            imports.append(statement.selector)
        elif statement.kind == "include":
            includes.append(statement.selector)
    return {"bindings": bindings, "imports": imports, "includes": includes}


def read_by_gin(path: Path, search_paths: list[Path]) -> dict[str, Any]:
    """gin's own reading, given the folders ginlight's include rule names (gin alone looks in its search
    paths only, not beside the including file)."""
    read = [path, *(Path(s.value) for s in reading.read([path], search_paths=search_paths) if s.kind == "include")]
    gin.clear_config()
    internals.set_include_folders(reading.include_folders(search_paths, read))
    parsed = gin.parse_config_file(str(path))
    bindings = {(scope, selector, param): _gin_value(value)
                for (scope, selector), params in internals.parsed_bindings().items()
                for param, value in params.items()}
    imports, includes = [], []

    def walk(node) -> None:
        imports.extend(module for module in node.imports if not module.startswith("__gin__."))
        for included in node.includes:
            includes.append(included.filename)
            walk(included)

    walk(parsed)
    gin.clear_config()
    internals.set_include_folders([""])  # gin's own default: the process is left as it was found
    return {"bindings": bindings, "imports": imports, "includes": includes}


def _compare(path: Path, search_paths: list[Path]) -> None:
    by_gin = read_by_gin(path, search_paths)
    assert read_by_ginlight(path, search_paths) == by_gin
    assert by_gin["bindings"]  # the file was read, not skipped


@pytest.mark.parametrize("name", sorted(CORPUS))
def test_ginlight_reads_each_construct_as_gin_does(corpus, name):
    _compare(corpus / f"{name}.gin", [corpus, corpus / "search"])


def test_ginlight_reads_the_gin_files_gin_ships_as_gin_does():
    """Whatever the installed gin ships (one test, not a parameter each: no files must not read as a skip)."""
    for path in _shipped_by_gin():
        _compare(path, [path.parent])


def test_the_corpus_covers_every_statement_gin_yields(corpus):
    """Blocks, imports of each form, includes, bindings and macros: each kind is in the corpus above."""
    statements = [s for name in CORPUS for s in reading.read([corpus / f"{name}.gin"],
                                                              search_paths=[corpus, corpus / "search"])]
    assert {s.kind for s in statements} == {"binding", "block", "import", "include"}
    written = {s.text.split(" as ")[0].split(" import ")[0] for s in statements if s.kind == "import"}
    assert {"from __gin__", "from ginread_corpus.layers", "import ginread_corpus.layers.deep"} <= written
    assert any(" as " in s.text for s in statements if s.kind == "import")
