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
        path = Path(project).expanduser()
        if not path.exists() and not _looks_like_path(project):
            _import(project, project)
            continue
        if not path.is_dir():
            raise ConfigError(f"--project={project}: no such folder.",
                              hint="Pass a folder holding your modules, or an importable module name.")
        path = path.resolve()
        if (path / "__init__.py").exists():
            folders.append(str(path.parent))
            add_to_path(path.parent)
            _import_package(path.name, project)
        else:
            folders.append(str(path))
            add_to_path(path)
            for module in pkgutil.iter_modules([str(path)]):
                if module.ispkg:
                    _import_package(module.name, project)
                else:
                    _import(module.name, project)
    return folders


def module_names(projects: Iterable[str]) -> list[str]:
    """The top-level modules that :func:`import_projects` would import for ``projects``, read from the disk
    without importing them: code the user chose to run on this command."""
    names = []
    for project in projects:
        path = Path(project).expanduser()
        if not path.is_dir():
            if not _looks_like_path(project):
                names.append(project)
        elif (path / "__init__.py").exists():
            names.append(path.resolve().name)
        else:
            names += [module.name for module in pkgutil.iter_modules([str(path)])]
    return names


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
