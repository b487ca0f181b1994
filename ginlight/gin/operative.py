"""The configs ginlight writes for gin to parse again: the operative config of a run, runnable on its own
from any directory, and the config carried into other processes; with the directive lines they carry.

gin's own texts (:func:`gin.operative_config_str`, :func:`gin.config_str`) name what was imported by
``import`` lines only, and an object registered by its path by its shortest name alone; the lines added
here (:data:`PATH_DIRECTIVE`, :data:`ginlight.gin.registry.REGISTER_DIRECTIVE`) say where to find the rest.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Iterable

import gin

from ginlight import internals
from ginlight.gin import reading, registry, source


def config_str() -> str:
    """gin's config (:func:`gin.config_str`) as a text that parses in a fresh process: with the
    :data:`~ginlight.gin.registry.REGISTER_DIRECTIVE` lines its objects registered by path need."""
    return "\n".join([*registry.register_directives(internals.parsed_bindings()), gin.config_str()])


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
    lines += registry.register_directives(internals.operative_bindings())
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
