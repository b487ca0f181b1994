"""The search space: the swept bindings, read from ``--sweep`` lines and sweep files in gin syntax."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

from ginlight.gin import reading
from ginlight.errors import ConfigError

if TYPE_CHECKING:
    import optuna

__all__ = ["Parameter", "parse_parameter", "load_search_space"]

_HINT = ("Write `configurable.parameter = [value, ...]` in gin syntax, or a distribution: "
         "loguniform(low, high), uniform(low, high), int(low, high), choice(value, ...).")
_DISTRIBUTION = re.compile(
    r"^(?P<key>[^=]*=)\s*(?P<kind>loguniform|uniform|int|choice)\s*\((?P<args>.*)\)\s*$", re.S)


@dataclass(frozen=True)
class Parameter:
    """One swept binding: a list of gin values to choose from, or a range to sample.

    Attributes:
        key: what is bound, ``[scope/]configurable.parameter`` or a macro name.
        kind: ``choice`` (a list), ``uniform``, ``loguniform`` or ``int``.
        choices: the gin text of each value of a ``choice``.
        low, high: the range of the other kinds.
        where: where the line was written (``--sweep`` or ``file:line``), for errors.
        values: the parsed choices (numbers decide the plot's axis).
    """

    key: str
    kind: str
    choices: tuple[str, ...] = ()
    low: float = 0
    high: float = 0
    where: str = "--sweep"
    values: tuple[Any, ...] = field(default=(), compare=False, repr=False)

    def __str__(self) -> str:
        if self.kind == "choice":
            return f"{self.key} = [{', '.join(self.choices)}]"
        return f"{self.key} = {self.kind}({self.low!r}, {self.high!r})"

    def suggest(self, trial: optuna.Trial) -> str:
        """Draws this parameter for ``trial`` (or reads it back on a rerun); returns gin text."""
        if self.kind == "choice":
            return trial.suggest_categorical(self.key, self.choices)
        if self.kind == "int":
            return repr(trial.suggest_int(self.key, self.low, self.high))
        return repr(trial.suggest_float(self.key, self.low, self.high, log=self.kind == "loguniform"))

    def text(self, value: Any) -> str:
        """A value Optuna stored for this parameter, as gin text."""
        return value if self.kind == "choice" else repr(value)

    def binding(self, text: str) -> str:
        return f"{self.key} = {text}"

    def extremes(self) -> list[str]:
        """The values that checking the configuration tries: every choice, or both ends."""
        return list(self.choices) if self.kind == "choice" else [repr(self.low), repr(self.high)]

    @property
    def numeric(self) -> bool:
        return self.kind != "choice" or all(_is_number(value) for value in self.values)

    @property
    def log_scale(self) -> bool:
        if self.kind != "choice":
            return self.kind == "loguniform"
        numbers = [float(value) for value in self.values] if self.numeric else []
        return bool(numbers) and min(numbers) > 0 and max(numbers) >= 100 * min(numbers)

    def position(self, text: str) -> float:
        """Where a value goes on a plot's axis: the number itself, or the choice's index."""
        if self.kind != "choice":
            return float(text)
        index = self.choices.index(text)
        return float(self.values[index]) if self.numeric else float(index)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def parse_parameter(line: str, where: str = "--sweep") -> Parameter:
    """Reads one sweep line, ``key = [v1, v2, ...]`` or ``key = loguniform(a, b)``, with gin's parser."""
    match = _DISTRIBUTION.match(line)
    kind = match["kind"] if match else "choice"
    # A distribution's arguments are read as a gin list.
    statement = reading.parse_binding(f"{match['key']} [{match['args']}]" if match else line,
                                       f"sweep line `{line.strip()}`", where, _HINT)
    name = f"{statement.selector}.{statement.param}" if statement.param else statement.selector
    key = f"{statement.scope}/{name}" if statement.scope else name
    values = statement.value

    def error(message: str) -> ConfigError:
        return ConfigError(f"sweep line `{line.strip()}`: {message}", location=where, hint=_HINT)

    if not isinstance(values, list):
        raise error("gives one value; give a list of values or a distribution.")
    if kind == "choice":
        choices = tuple(repr(value) for value in values)
        if not choices:
            raise error("has no values.")
        repeated = sorted({choice for choice in choices if choices.count(choice) > 1})
        if repeated:
            raise error(f"lists {', '.join(repeated)} more than once.")
        return Parameter(key, kind, choices, where=where, values=tuple(values))
    if len(values) != 2 or not all(_is_number(value) for value in values):
        raise error(f"{kind}(low, high) takes two numbers.")
    low, high = values
    if kind == "int" and not all(isinstance(value, int) for value in values):
        raise error("int(low, high) takes two integers.")
    if not low < high:
        raise error(f"{kind}(low, high) needs low < high.")
    if kind == "loguniform" and low <= 0:
        raise error("loguniform(low, high) needs 0 < low.")
    return Parameter(key, kind, low=low, high=high, where=where)


def load_search_space(lines: Sequence[str] = (), sweep_file: str | os.PathLike | None = None) -> list[Parameter]:
    """The parameters of ``--sweep`` lines and of a sweep file (one line each; ``#`` comments)."""
    space = [parse_parameter(line) for line in lines]
    if sweep_file is not None:
        try:
            text = Path(sweep_file).read_text()
        except OSError as exc:
            raise ConfigError(f"cannot read the sweep file: {exc}.", hint="Check --sweep_file.") from None
        for number, line in enumerate(text.splitlines(), 1):
            if line.strip() and not line.strip().startswith("#"):
                space.append(parse_parameter(line, f"{sweep_file}:{number}"))
    keys = [parameter.key for parameter in space]
    for parameter in space:
        if keys.count(parameter.key) > 1:
            raise ConfigError(f"'{parameter.key}' is swept more than once.", location=parameter.where,
                              hint="Give each binding one sweep line.")
    if not space:
        raise ConfigError("nothing to sweep.",
                          hint="Pass --sweep='configurable.parameter=[value, ...]' (repeatable) or --sweep_file.")
    return space
