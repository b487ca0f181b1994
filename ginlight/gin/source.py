"""The user's code that a run imports: which modules, the folders they come from, and a copy of it.

A run is only as reproducible as the code it ran. Researchers commit when an
idea works, so a run usually starts from a dirty tree, with modules that may not
be tracked at all. So a run keeps, besides the commit, the uncommitted changes to
tracked files as a patch, and each user module's path and hash with a copy of its
source. "The user's" means: imported, written in Python, and neither from the
standard library, nor from an installed package, nor ginlight itself.
"""

from __future__ import annotations

import hashlib
import shutil
import site
import subprocess
import sys
import sysconfig
from pathlib import Path
from typing import Any

__all__ = ["user_modules", "import_root", "fingerprint", "snapshot", "changed_modules", "PATCH_LIMIT", "SOURCES_LIMIT"]

#: A patch larger than this is cut (the record says so); sources larger in total are hashed, not copied.
PATCH_LIMIT = 1 << 20
SOURCES_LIMIT = 4 << 20
_OWN_PACKAGES = ("ginlight", "__main__", "__mp_main__")


def _installed_prefixes() -> tuple[str, ...]:
    paths = sysconfig.get_paths()
    prefixes = {paths[key] for key in ("stdlib", "platstdlib", "purelib", "platlib")}
    prefixes.update(site.getsitepackages())
    prefixes.add(site.getusersitepackages())
    return tuple(str(Path(p).resolve()) for p in prefixes if p)


def _is_installed(path: Path, prefixes: tuple[str, ...]) -> bool:
    text = str(path)
    return text.startswith(prefixes) or any(part in ("site-packages", "dist-packages") for part in path.parts)


def user_modules() -> dict[str, Path]:
    """The user's modules imported in this process, by name, with their source files."""
    prefixes = _installed_prefixes()
    found = {}
    for name, module in list(sys.modules.items()):
        file = getattr(module, "__file__", None)
        if not file or not file.endswith(".py") or name.split(".")[0] in _OWN_PACKAGES or file.startswith(prefixes):
            continue
        path = Path(file).resolve()
        if path.is_file() and not _is_installed(path, prefixes):
            found[name] = path
    return dict(sorted(found.items()))


def import_root(name: str, file: Path) -> Path:
    """The folder on ``sys.path`` that module ``name``, read from ``file``, was imported from."""
    folder = file.parent
    for _ in range(name.count(".") + (file.name == "__init__.py")):
        folder = folder.parent
    return folder


def fingerprint(modules: dict[str, Path]) -> dict[str, dict[str, str]]:
    """Each module's path and the SHA-256 of its source."""
    return {name: {"path": str(path), "sha256": hashlib.sha256(path.read_bytes()).hexdigest()}
            for name, path in modules.items()}


def snapshot(patch: Path, sources: Path, modules: dict[str, Path]) -> dict[str, Any]:
    """Keeps the code of a run in its run directory (which names the files: :class:`ginlight.rundir.RunDir`);
    returns the ``git`` and ``code`` entries of ``run.json``.

    ``git``: for a run whose working directory is in a git work tree, the commit,
    whether the tree was dirty, and the uncommitted changes to tracked files in the file
    ``patch`` (cut at :data:`PATCH_LIMIT` bytes, ``patch_truncated`` says so).
    ``code``: each user module's path and SHA-256 (:func:`fingerprint`); their
    sources are copied to ``sources/<module path>.py`` unless together
    larger than :data:`SOURCES_LIMIT` (``sources_copied`` says which).
    """
    copied = sum(path.stat().st_size for path in modules.values()) <= SOURCES_LIMIT
    if copied:
        for name, path in modules.items():
            target = sources / _relative(name, path)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, target)
    return {"git": _git(patch), "code": {"modules": fingerprint(modules), "sources_copied": copied}}


def _relative(name: str, path: Path) -> Path:
    """``a/b/c.py`` for module ``a.b.c``; ``a/b/__init__.py`` for package ``a.b``."""
    parts = name.split(".")
    return Path(*parts, path.name) if path.name == "__init__.py" else Path(*parts[:-1], path.name)


def _run_git(*args: str) -> subprocess.CompletedProcess | None:
    try:
        result = subprocess.run(["git", *args], capture_output=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return result if result.returncode == 0 else None


def _git(patch_file: Path) -> dict[str, Any] | None:
    commit = _run_git("rev-parse", "HEAD")
    if commit is None:
        return None
    root = _run_git("rev-parse", "--show-toplevel")
    status = _run_git("status", "--porcelain", "--untracked-files=no")
    patch = _run_git("diff", "--binary", "HEAD")
    record: dict[str, Any] = {
        "commit": commit.stdout.decode().strip(),
        "root": root.stdout.decode().strip() if root else None,
        "dirty": bool(status and status.stdout.strip()),
        "patch": None,
    }
    if patch is not None and patch.stdout:
        text = patch.stdout
        record.update(patch=patch_file.name, patch_bytes=len(text), patch_truncated=len(text) > PATCH_LIMIT,
                      patch_sha256=hashlib.sha256(text).hexdigest())
        patch_file.write_bytes(text[:PATCH_LIMIT])
    return record


def changed_modules(a: dict[str, dict[str, str]], b: dict[str, dict[str, str]]) -> list[str]:
    """The modules whose source differs between two :func:`fingerprint` s, or that only one of them has."""
    return sorted(name for name in {*a, *b} if (a.get(name) or {}).get("sha256") != (b.get(name) or {}).get("sha256"))
