"""The configs the project shows: the shipped ones and those the README and docs/ write out, each with the
flags its command gives. CI checks each with ``ginlight-check --strict`` (``python tests/documented_configs.py``
in .ci/run); test_check_command.py does the same, so that it runs locally too.
"""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CONFIGS = REPO / "configs"
DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
#: A fenced block that starts with a comment naming its file (``# my_lab/models.py``, ``# line.gin``).
_BLOCK = re.compile(r"```\w*\n# (\S+\.(?:gin|py))\n(.*?)```", re.S)
_COMMAND = re.compile(r"^ +ginlight-train (.*)$", re.M)
_FLAGS = ("--gin_file=", "--gin_bindings=", "--project=")


def shipped() -> list[list[str]]:
    """The ``--gin_file`` flags of each shipped config (its header names its command), and of the
    classifier composed with each debug preset; relative to the repository."""
    configs = sorted(path for path in CONFIGS.glob("*.gin")
                     if re.search(rf"ginlight-train --gin_file=configs/{re.escape(path.name)}\b", path.read_text()))
    presets = sorted((CONFIGS / "debug").glob("*.gin"))
    return ([[f"--gin_file={path.relative_to(REPO)}"] for path in configs]
            + [["--gin_file=configs/classifier.gin", f"--gin_file={path.relative_to(REPO)}"] for path in presets])


def write_documented(folder: Path) -> list[list[str]]:
    """Writes each file the README and docs/ show under ``folder``; returns the gin flags of each
    ``ginlight-train`` command of theirs that runs such a gin file (relative to ``folder``)."""
    commands = []
    for doc in DOCS:
        text = doc.read_text()
        written = set()
        for path, body in _BLOCK.findall(text):
            (folder / path).parent.mkdir(parents=True, exist_ok=True)
            (folder / path).write_text(f"# {path}\n{body}")
            written.add(path)
        for line in _COMMAND.findall(text):
            args = [arg for arg in shlex.split(line) if arg.startswith(_FLAGS)]
            gin_files = [arg.split("=", 1)[1] for arg in args if arg.startswith("--gin_file=")]
            if gin_files and set(gin_files) <= written:
                commands.append(args)
    return commands


def check_command(*args: str) -> list[str]:
    """``ginlight-check --strict`` with ``args``: the console script installed beside this Python."""
    return [str(Path(sys.executable).parent / "ginlight-check"), "--strict", *args]


def main() -> int:
    """Checks every config; prints what fails, and returns 1 if any does."""
    failed = 0
    with tempfile.TemporaryDirectory(prefix="ginlight-docs-") as folder:
        runs = [(args, REPO) for args in shipped()] + [(args, Path(folder)) for args in write_documented(Path(folder))]
        for args, cwd in runs:
            result = subprocess.run(check_command(*args), cwd=cwd, capture_output=True, text=True)
            print(f"ginlight-check --strict {shlex.join(args)}: {'ok' if result.returncode == 0 else 'FAILED'}")
            if result.returncode != 0:
                failed += 1
                print(result.stdout + result.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
