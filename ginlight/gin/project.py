"""Makes a user's code importable and registers its configurables (``--project``)."""

from __future__ import annotations

import importlib
import pkgutil
import sys
from pathlib import Path
from typing import Iterable

from ginlight.errors import ConfigError

__all__ = ["add_to_path", "import_projects", "module_names"]


def add_to_path(folder: str | Path) -> None:
    """Puts ``folder`` first on ``sys.path`` unless it is there already."""
    folder = str(Path(folder).resolve())
    if folder not in sys.path:
        sys.path.insert(0, folder)


def import_projects(projects: Iterable[str]) -> list[str]:
    """Imports each project so its ``@gin.configurable`` code registers.

    A project is a folder or a module name. A folder that is a package (it has
    ``__init__.py``) is imported as that package with all its submodules, its
    parent going on ``sys.path``; any other folder goes on ``sys.path`` itself and
    each of its modules and packages is imported. Returns the folders added to
    ``sys.path``, which reruns need too.
    """
    folders = []
    for project in projects:
        folder, modules = _layout(project)
        if folder is not None:
            folders.append(folder)
        for name, is_package in modules:
            if is_package:
                _import_package(name, project)
            else:
                _import(name, project)
    return folders


def module_names(projects: Iterable[str]) -> list[str]:
    """The modules and packages :func:`import_projects` imports first, named without importing them.

    Their folders go on ``sys.path``, so that a process started now (a sweep's warm
    worker, which preloads them) finds them too. A project that is no folder or module
    is left for :func:`import_projects` to report.
    """
    names = []
    for project in projects:
        try:
            names += [name for name, _ in _layout(project)[1]]
        except ConfigError:
            continue
    return names


def _layout(project: str) -> tuple[str | None, list[tuple[str, bool]]]:
    """The folder ``project`` puts on ``sys.path`` (put there now), and the modules it names: (name, is a package)."""
    path = Path(project).expanduser()
    if not path.exists() and not _looks_like_path(project):
        return None, [(project, False)]
    if not path.is_dir():
        raise ConfigError(f"--project={project}: no such folder.",
                          hint="Pass a folder holding your modules, or an importable module name.")
    path = path.resolve()
    if (path / "__init__.py").exists():
        add_to_path(path.parent)
        return str(path.parent), [(path.name, True)]
    add_to_path(path)
    return str(path), [(module.name, module.ispkg) for module in pkgutil.iter_modules([str(path)])]


def _looks_like_path(project: str) -> bool:
    return "/" in project or project.startswith(".")


def _import_package(name: str, project: str) -> None:
    package = _import(name, project)
    for module in pkgutil.walk_packages(package.__path__, prefix=f"{name}."):
        _import(module.name, project)


def _import(name: str, project: str):
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        raise ConfigError(
            f"--project={project}: importing '{name}' failed: {exc}.",
            hint="Install what it needs, or check the folder and module name.",
        ) from exc
