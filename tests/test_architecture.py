"""ginlight's imports point one way, down its layers (the package docstring, ginlight/__init__.py), with no cycle.

Every module under ginlight/ is read with ``ast``, not imported: the graph holds each
import of a ginlight module, at module level or inside a function. An import inside a
function is allowed only where :data:`LAZY` gives the reason (``--help`` that must not
wait for Lightning), since one elsewhere is how a cycle hides. And only ``ginlight/internals.py`` reaches
another library's private names (:func:`private_reaches`).
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "ginlight"

ARCHITECTURE = PACKAGE.parent / "docs" / "architecture.md"
#: A row of the layers' table: | layer | `module.py`, `package/`, ... | what it does |
_ROW = re.compile(r"^\| ([^|`]+?) \| ((?:`[\w/.]+`(?:, )?)+) \| [^|]+ \|$", re.M)


def _layers() -> list[tuple[str, list[str]]]:
    """The layers as docs/architecture.md's table lists them (the one list of them), lowest first: each with
    the modules and packages it names. The package itself, ``ginlight``, holds the version and the lazy public
    names, imports nothing, and sits lowest."""
    layers = []
    for layer, cell in _ROW.findall(ARCHITECTURE.read_text()):
        paths = re.findall(r"`([\w/.]+)`", cell)
        layers.append((layer, ["ginlight." + path.removesuffix(".py").strip("/").replace("/", ".") for path in paths]))
    assert len(layers) >= 5, f"no table of layers found in {ARCHITECTURE}"
    layers.reverse()
    layers[0][1].insert(0, "ginlight")
    return layers


#: The layers, lowest first; a module belongs to the first entry that names it or a package above it.
LAYERS = _layers()

#: Imports of ginlight modules inside functions: (importer, imported) -> why it is not at module level.
LAZY = {
    ("ginlight.cli.train", "ginlight.experiment"): "ginlight-train --help must not wait for Lightning",
    ("ginlight.cli.train", "ginlight.reproduce"): "ginlight-train --help must not wait for Lightning",
    ("ginlight.cli.check", "ginlight.experiment"): "ginlight-check --help must not wait for Lightning",
    ("ginlight.cli.sweep", "ginlight.sweep"): "ginlight-sweep --help must not wait for Optuna and Lightning",
    ("ginlight.cli.sweep", "ginlight.slurm"): "ginlight-sweep --help must not wait for Lightning",
    ("ginlight.cli.sweep", "ginlight.sweep.warm"): "ginlight-sweep --help must not wait for Optuna and Lightning",
    ("ginlight.cli.runs", "ginlight.curves"): "a listing must not wait for TensorBoard's reader and numpy",
}


def _modules() -> dict[str, Path]:
    modules = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return modules


def _imported(node: ast.Import | ast.ImportFrom, importer: str, is_package: bool, modules: dict[str, Path]):
    """The ginlight modules an import statement names: ``from ginlight import rundir`` names ginlight.rundir."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names if alias.name in modules]
    if node.level:  # relative: from its package, one level up per dot after the first
        package = importer.split(".") if is_package else importer.split(".")[:-1]
        base = ".".join(package[:len(package) - node.level + 1] + ([node.module] if node.module else []))
    else:
        base = node.module or ""
    if base not in modules:
        return []
    return [f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base for alias in node.names]


def _imports() -> list[tuple[str, str, bool, int]]:
    """Every import of a ginlight module by another: (importer, imported, inside a function, line)."""
    modules = _modules()
    found = []

    def visit(node: ast.AST, importer: str, is_package: bool, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.Import, ast.ImportFrom)):
                found.extend((importer, imported, in_function, child.lineno)
                             for imported in _imported(child, importer, is_package, modules) if imported != importer)
            visit(child, importer, is_package,
                  in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)))

    for name, path in modules.items():
        visit(ast.parse(path.read_text(), str(path)), name, path.name == "__init__.py", False)
    return found


def _layer(module: str) -> int:
    for index, (_, members) in enumerate(LAYERS):
        if any(module == member or module.startswith(member + ".") for member in members
               if member != "ginlight" or module == "ginlight"):
            return index
    raise AssertionError(f"{module} is in no layer: add it to the table of layers in {ARCHITECTURE}.")


def test_every_module_has_a_layer():
    for module in _modules():
        _layer(module)


def test_imports_point_to_the_same_layer_or_a_lower_one():
    upward = [f"{importer} ({LAYERS[_layer(importer)][0]}) imports {imported} ({LAYERS[_layer(imported)][0]}), "
              f"line {line}"
              for importer, imported, _, line in _imports() if _layer(imported) > _layer(importer)]
    assert not upward, "\n".join(upward)


def test_no_import_cycles():
    graph: dict[str, set[str]] = {}
    for importer, imported, _, _ in _imports():
        graph.setdefault(importer, set()).add(imported)
    done: set[str] = set()

    def cycle_from(module: str, path: list[str]) -> list[str] | None:
        if module in path:
            return path[path.index(module):] + [module]
        if module in done:
            return None
        for imported in sorted(graph.get(module, ())):
            found = cycle_from(imported, [*path, module])
            if found:
                return found
        done.add(module)
        return None

    for module in sorted(graph):
        cycle = cycle_from(module, [])
        assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_imports_inside_functions_are_the_listed_lazy_ones():
    lazy = {(importer, imported): line for importer, imported, in_function, line in _imports() if in_function}
    unlisted = [f"{importer} imports {imported} inside a function, line {line}"
                for (importer, imported), line in lazy.items() if (importer, imported) not in LAZY]
    assert not unlisted, "move these to module level, or list them in LAZY with the reason:\n" + "\n".join(unlisted)
    assert set(LAZY) <= set(lazy), f"LAZY lists imports that are gone: {sorted(set(LAZY) - set(lazy))}"


#: The libraries whose private names only ginlight/internals.py reaches (docs/architecture.md).
PRIVATE_OWNERS = ("gin", "lightning", "torch", "torchmetrics")
INTERNALS = "ginlight.internals"


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def private_reaches(source: str) -> list[str]:
    """Each reach in ``source`` into a private name: ``from torch import _x`` or ``import torch._x`` of one of
    :data:`PRIVATE_OWNERS`, an underscored attribute at any depth of a name imported from them
    (``gin.config._CONFIG``), and ``getattr``, ``setattr`` or ``hasattr`` of an underscored name on anything."""
    tree = ast.parse(source)
    imported, found = set(), []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] in PRIVATE_OWNERS:
                    imported.add(alias.asname or alias.name.split(".")[0])
                    if any(_private(part) for part in alias.name.split(".")):
                        found.append(f"line {node.lineno}: import {alias.name}")
        elif (isinstance(node, ast.ImportFrom) and not node.level
              and (node.module or "").split(".")[0] in PRIVATE_OWNERS):
            for alias in node.names:
                imported.add(alias.asname or alias.name)
                if _private(alias.name) or any(_private(part) for part in node.module.split(".")):
                    found.append(f"line {node.lineno}: from {node.module} import {alias.name}")
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and _private(node.attr):
            root = node.value
            while isinstance(root, ast.Attribute):
                root = root.value
            if isinstance(root, ast.Name) and root.id in imported:
                found.append(f"line {node.lineno}: {ast.unparse(node)}")
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
              and node.func.id in ("getattr", "setattr", "hasattr") and len(node.args) >= 2
              and isinstance(node.args[1], ast.Constant) and isinstance(node.args[1].value, str)
              and _private(node.args[1].value)):
            found.append(f"line {node.lineno}: {ast.unparse(node)}")
    return found


def test_the_private_reach_finder_finds_each_kind_of_reach():
    source = ("import gin\nimport torch._dynamo\nfrom lightning.pytorch.strategies.launchers import _Launcher\n"
              "from torchmetrics import Metric as M\nimport os\n"
              "gin.config._CONFIG\nM._reductions\nos._exit\ngetattr(object, '_hidden', None)\ngin.config.__name__\n")
    assert [reach.split(":")[0] for reach in private_reaches(source)] == [
        "line 2", "line 3", "line 6", "line 7", "line 9"]


def test_only_internals_reaches_other_libraries_private_names():
    reaches = [f"{name} {reach}" for name, path in _modules().items() if name != INTERNALS
               for reach in private_reaches(path.read_text())]
    assert not reaches, ("move each into ginlight/internals.py, with the version it was checked on and a test in "
                         "tests/test_internals.py:\n" + "\n".join(reaches))


#: The most lines a function may have, from its ``def`` to its last line: one that does more reads as named steps.
MAX_FUNCTION_LINES = 60


def test_no_function_is_longer_than_sixty_lines():
    long = [f"{name}: {node.name} ({node.end_lineno - node.lineno + 1} lines, line {node.lineno})"
            for name, path in _modules().items() for node in ast.walk(ast.parse(path.read_text(), str(path)))
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
            and node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES]
    assert not long, f"split these into named steps of at most {MAX_FUNCTION_LINES} lines:\n" + "\n".join(long)


def test_no_module_keeps_state_in_globals_it_rebinds():
    """A ``global`` statement is how run state hides in a module; a run's context is passed down
    (:class:`ginlight.runcontext.RunContext`), and a process-wide cache is a ``functools.cache``."""
    rebound = [f"{name}, line {node.lineno}: global {', '.join(node.names)}"
               for name, path in _modules().items() for node in ast.walk(ast.parse(path.read_text(), str(path)))
               if isinstance(node, ast.Global)]
    assert not rebound, "pass these down instead:\n" + "\n".join(rebound)
