"""What differs between two configs: runs, operative configs or any gin files.

Files are read with gin's own parser (:mod:`ginlight.gin.reading`), without registering or importing anything
(so no torch): bindings are compared as written, by configurable and parameter,
after ``include`` statements are followed. A binding whose value uses a macro is
also compared with its macros resolved, so a changed ``LR = ...`` shows at every
binding that reads ``%LR``. Compare operative configs (or runs) for the most
telling result: they spell every name the same way and list every default.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from ginlight import rundir
from ginlight.gin import reading
from ginlight.gin.reading import Macro
from ginlight.errors import ConfigError

__all__ = ["Config", "Difference", "read_config", "diff", "to_text", "to_json"]

MACROS = "Macros"


@dataclass
class Config:
    """One side of a diff: its bindings, keyed by ``(configurable, parameter)``, and its imports.

    A configurable is named with its scope (``train/DataLoader``); a macro is a
    binding of the configurable :data:`MACROS`. ``files`` lists the gin files
    read, the included ones after the file that includes them.
    """

    source: Path
    files: list[Path] = field(default_factory=list)
    bindings: dict[tuple[str, str], Any] = field(default_factory=dict)
    imports: list[str] = field(default_factory=list)
    metrics: dict[str, float] | None = None
    record: rundir.RunRecord | None = None

    def resolve(self, value: Any, depth: int = 0) -> Any:
        """``value`` with each ``%MACRO`` replaced by what it is bound to (an unbound one stays)."""
        if isinstance(value, Macro) and (MACROS, value.name) in self.bindings and depth < 100:
            return self.resolve(self.bindings[(MACROS, value.name)], depth + 1)
        if isinstance(value, (list, tuple)):
            return type(value)(self.resolve(item, depth) for item in value)
        if isinstance(value, dict):
            return {key: self.resolve(item, depth) for key, item in value.items()}
        return value


def read_config(path: str | os.PathLike, search_paths: Sequence[str | os.PathLike] = ()) -> Config:
    """Reads a run directory (its operative config and final metrics) or a gin file.

    Includes are followed by the rule every command follows (:func:`ginlight.gin.reading.read`).
    """
    path = Path(path)
    if path.is_dir():
        run = rundir.RunDir.open(path, needs=(rundir.OPERATIVE_CONFIG,))
        config = _read(path, run.operative_config, search_paths)
        if run.record_file.is_file():
            config.record = run.read_record()
            config.metrics = config.record.metrics
        return config
    if not path.is_file():
        raise ConfigError(f"'{path}' not found.", hint="Pass two run directories or gin files.")
    return _read(path, path, search_paths)


def _read(source: Path, gin_file: Path, search_paths: Sequence[str | os.PathLike]) -> Config:
    config = Config(source, files=[gin_file])
    for statement in reading.read([gin_file], search_paths=search_paths):
        if statement.kind == "binding":
            # `NAME = value` defines a macro
            key = (statement.name, statement.param) if statement.param else (MACROS, statement.name)
            config.bindings[key] = statement.value
        elif statement.kind == "include":
            config.files.append(Path(statement.value))
        elif statement.kind == "import" and statement.value not in config.imports:
            config.imports.append(statement.value)
    return config


@dataclass
class Difference:
    """One binding that differs: ``kind`` is added (only in B), removed (only in A) or changed.

    ``resolved`` holds both sides with their macros resolved, for a changed
    binding whose value uses macros.
    """

    configurable: str
    parameter: str
    kind: str
    a: Any = None
    b: Any = None
    resolved: tuple[Any, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        """Values in gin syntax."""
        entry = {"configurable": self.configurable, "parameter": self.parameter, "kind": self.kind}
        if self.kind != "added":
            entry["a"] = repr(self.a)
        if self.kind != "removed":
            entry["b"] = repr(self.b)
        if self.resolved is not None:
            entry["a_resolved"], entry["b_resolved"] = map(repr, self.resolved)
        return entry


def diff(a: Config, b: Config) -> list[Difference]:
    """The bindings added, removed and changed from ``a`` to ``b``: macros first, then by configurable."""
    differences = []
    for key in sorted({*a.bindings, *b.bindings}, key=_order):
        configurable, parameter = key
        if key not in a.bindings:
            differences.append(Difference(configurable, parameter, "added", b=b.bindings[key]))
        elif key not in b.bindings:
            differences.append(Difference(configurable, parameter, "removed", a=a.bindings[key]))
        else:
            value_a, value_b = a.bindings[key], b.bindings[key]
            resolved_a, resolved_b = a.resolve(value_a), b.resolve(value_b)
            if repr(value_a) != repr(value_b) or repr(resolved_a) != repr(resolved_b):
                uses_macros = repr(resolved_a) != repr(value_a) or repr(resolved_b) != repr(value_b)
                differences.append(Difference(configurable, parameter, "changed", value_a, value_b,
                                              (resolved_a, resolved_b) if uses_macros else None))
    return differences


def _order(key: tuple[str, str]) -> tuple[bool, str, str, str]:
    """Macros first, then configurables by name, their scoped variants together, as gin's operative config does."""
    configurable, parameter = key
    scope, _, name = configurable.rpartition("/")
    return configurable != MACROS, name.lower(), scope, parameter


def to_json(a: Config, b: Config) -> dict[str, Any]:
    """The diff for tools: gin-syntax values, and final metrics when both sides are runs."""
    return {
        "a": str(a.source),
        "b": str(b.source),
        "bindings": [difference.to_dict() for difference in diff(a, b)],
        "imports": _imports(a, b),
        "metrics": _metrics(a, b),
        "code": _code(a, b),
        "versions": _versions(a, b),
    }


def _imports(a: Config, b: Config) -> dict[str, list[str]]:
    return {"added": [i for i in b.imports if i not in a.imports], "removed": [i for i in a.imports if i not in b.imports]}


def _code(a: Config, b: Config) -> list[str] | None:
    """What differs in the code two runs recorded (:meth:`ginlight.rundir.RunRecord.code_differences`); None
    unless both are runs."""
    if a.record is None or b.record is None:
        return None
    return a.record.code_differences(b.record)


def _versions(a: Config, b: Config) -> dict[str, dict[str, str | None]] | None:
    """The package versions that differ between two runs; None unless both are runs."""
    if a.record is None or b.record is None:
        return None
    versions_a, versions_b = a.record.versions, b.record.versions
    return {name: {"a": versions_a.get(name), "b": versions_b.get(name)}
            for name in sorted({*versions_a, *versions_b}) if versions_a.get(name) != versions_b.get(name)}


def _metrics(a: Config, b: Config) -> dict[str, dict[str, float | None]] | None:
    if a.metrics is None or b.metrics is None:
        return None
    return {name: {"a": a.metrics.get(name), "b": b.metrics.get(name)} for name in sorted({*a.metrics, *b.metrics})}


def to_text(a: Config, b: Config) -> str:
    """The diff for a terminal: ``+`` added, ``-`` removed, ``~`` changed, grouped by configurable."""
    lines = [f"A: {a.source}", f"B: {b.source}"]
    imports = _imports(a, b)
    if imports["added"] or imports["removed"]:
        lines += ["", "Imports"]
        lines += [f"  + {i}" for i in imports["added"]] + [f"  - {i}" for i in imports["removed"]]
    differences = diff(a, b)
    group = None
    for difference in differences:
        if difference.configurable != group:
            group = difference.configurable
            lines += ["", group]
        lines.append(f"  {_line(difference)}")
    if not differences:
        lines += ["", "The two configs bind the same values."]
    code, versions = _code(a, b), _versions(a, b)
    if code is not None:
        lines += ["", "Code"] + ([f"  ~ {line}" for line in code] or ["  the same commit, changes and modules"])
    if versions is not None:
        lines += ["", "Versions"] + ([f"  ~ {name}: {v['a']} -> {v['b']}" for name, v in versions.items()]
                                     or ["  the same"])
    metrics = _metrics(a, b)
    if metrics:
        lines += ["", *_metric_table(metrics)]
    return "\n".join(lines)


def _line(difference: Difference) -> str:
    if difference.kind == "added":
        return f"+ {difference.parameter} = {difference.b!r}"
    if difference.kind == "removed":
        return f"- {difference.parameter} = {difference.a!r}"
    resolved = difference.resolved or (difference.a, difference.b)
    sides = [_with_resolved(difference.a, resolved[0]), _with_resolved(difference.b, resolved[1])]
    return f"~ {difference.parameter}: {sides[0]} -> {sides[1]}"


def _with_resolved(value: Any, resolved: Any) -> str:
    if repr(resolved) == repr(value):
        return repr(value)
    return f"{value!r} (= {resolved!r})"


def _metric_table(metrics: dict[str, dict[str, float | None]]) -> list[str]:
    rows = [("Final metrics", "A", "B", "B - A")]
    for name, values in metrics.items():
        a, b = values["a"], values["b"]
        delta = f"{b - a:+.6g}" if isinstance(a, (int, float)) and isinstance(b, (int, float)) and a != b else ""
        rows.append((f"  {name}", _number(a), _number(b), delta))
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    return [("  ".join(cell.ljust(width) for cell, width in zip(row, widths)) + "  " + row[3]).rstrip() for row in rows]


def _number(value: float | None) -> str:
    if value is None:
        return "-"
    return "nan" if isinstance(value, float) and math.isnan(value) else f"{value:.6g}"
