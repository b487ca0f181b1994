"""``config.gin``: a config's input as composed, each file's text in order with its includes inlined, then
the bindings; and whether two such inputs are one config (a requeued SLURM job finds its run by it)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Sequence

from ginlight.gin import reading


def merged_input(gin_files: Sequence[Path], bindings: Sequence[str], statements: Sequence[reading.Statement]) -> str:
    """The input as composed: each file's text in order, includes inlined, then the bindings.

    ``statements`` are those the files and bindings read as: the includes are those that reading resolved.
    """
    includes = {(Path(s.file).resolve(), s.line): Path(s.value) for s in statements if s.kind == "include"}
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
