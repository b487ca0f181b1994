"""What a parse of a config returns: its statements, files and bindings, and where each thing is written.

:func:`ginlight.gin.parsing.parse` returns a :class:`ParsedConfig`, and the layers above hand it down to
whatever reports a mistake at its line (:mod:`ginlight.gin.failures`, :mod:`ginlight.gin.printing`,
:mod:`ginlight.gin.check`), names the run or writes its ``config.gin``. An error is located in the parse
it came from, never in whichever config some other code parsed last.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

from ginlight.gin import reading


@dataclass(frozen=True)
class ParsedConfig:
    """One parse of a config.

    Args:
        files: the gin files given, as resolved (:func:`ginlight.gin.reading.resolve`), in order.
        bindings: the ``--gin_bindings``, in order.
        statements: every statement read, includes followed, each with its file and line.
        registered_as: the selectors written by import path that gin registered under another name
            (``ginlight.experiment.Experiment`` is gin's ``ginlight.Experiment``), for locating their bindings.
        merged_input: the input as composed, the run's ``config.gin``
            (:func:`ginlight.gin.composed.merged_input`).
    """

    files: tuple[Path, ...]
    bindings: tuple[str, ...]
    statements: tuple[reading.Statement, ...]
    registered_as: Mapping[str, str]
    merged_input: str

    def binding_location(self, name: str, parameter: str | None = None) -> str | None:
        """Where ``name.parameter`` (any parameter when None) is bound: ``file:line``, or
        ``--gin_bindings``. The last binding wins in gin, so the last one is reported.
        """
        found = None
        for statement in self.statements:
            if (statement.kind == "binding" and statement.param is not None and self._names(statement.name, name)
                    and parameter in (None, statement.param)):
                found = statement.location
        return found

    def binding_statement(self, name: str, param: str) -> reading.Statement | None:
        """The statement that binds ``name.param`` last (gin's last binding wins)."""
        found = None
        for statement in self.statements:
            if statement.kind == "binding" and statement.param == param and self._names(statement.name, name):
                found = statement
        return found

    def reference_location(self, name: str) -> str | None:
        """Where ``@name()`` is first written: ``file:line``, or ``--gin_bindings``."""
        for statement in self.statements:
            if any(isinstance(ref, reading.Reference) and ref.evaluate and self._names(ref.name, name)
                   for ref in reading.references_in(statement.value)):
                return statement.location
        return None

    def macro_location(self, name: str) -> str | None:
        """Where ``%name`` is first used: ``file:line``, or ``--gin_bindings``."""
        for statement in self.statements:
            if reading.Macro(name) in reading.references_in(statement.value):
                return statement.location
        return None

    def _names(self, written: str, name: str) -> bool:
        """Whether the selector ``written`` (short or long form, maybe scoped) names the configurable ``name``."""
        scope, _, written = written.rpartition("/")
        written = self.registered_as.get(written, written)
        name_scope, _, name = name.rpartition("/")
        return (not name_scope or scope == name_scope) and (
            name == written or name.endswith("." + written) or written.endswith("." + name))
