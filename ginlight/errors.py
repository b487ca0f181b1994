"""Errors that ginlight reports to a user as one paragraph, without a traceback."""

from __future__ import annotations


class ConfigError(Exception):
    """The configuration is wrong; the command exits with status 2.

    Args:
        message: what is wrong, in a sentence.
        location: where, as ``file:line`` when the cause is in a gin file.
        hint: what to do about it.
    """

    def __init__(self, message: str, location: str | None = None, hint: str | None = None):
        self.message = message
        self.location = location
        self.hint = hint
        super().__init__(str(self))

    def __str__(self) -> str:
        text = f"{self.location}: {self.message}" if self.location else self.message
        return f"{text}\n{self.hint}" if self.hint else text


class RunError(Exception):
    """The run failed after it started; the command exits with status 1."""
