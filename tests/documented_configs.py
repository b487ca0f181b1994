"""The configs the README and docs/ write out, each with the flags its command gives: test_check_command.py checks
each with ``ginlight-check --strict`` (test_check.py checks the shipped ones, in-process).
"""

from __future__ import annotations

import re
import shlex
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
#: A fenced block that starts with a comment naming its file (``# my_lab/models.py``, ``# line.gin``).
_BLOCK = re.compile(r"```\w*\n# (\S+\.(?:gin|py))\n(.*?)```", re.S)
_COMMAND = re.compile(r"^ +ginlight-train (.*)$", re.M)
_FLAGS = ("--gin_file=", "--gin_bindings=", "--project=")


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
