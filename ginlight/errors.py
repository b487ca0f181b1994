"""Errors that ginlight reports to a user as one paragraph, without a traceback."""

from __future__ import annotations

import os
import traceback


class ConfigError(Exception):
    """The configuration is wrong; the command exits with status 2.

    Args:
        message: what is wrong, in a sentence.
        location: where, as ``file:line`` when the cause is in a gin file.
        hint: what to do about it.
        binding: the parameter at fault, ``Configurable.param``, for code that knows
            which one but not where the config binds it: ginlight fills in ``location``
            from it (:func:`ginlight.gin.failures.located`).
    """

    def __init__(self, message: str, location: str | None = None, hint: str | None = None,
                 binding: str | None = None):
        self.message = message
        self.location = location
        self.hint = hint
        self.binding = binding
        super().__init__(message)

    def __str__(self) -> str:
        text = f"{self.location}: {self.message}" if self.location else self.message
        return f"{text}\n{self.hint}" if self.hint else text


class RunError(Exception):
    """The run failed after it started; the command exits with status 1."""


def user_frame(exc: BaseException) -> str:
    """Where in the user's code ``exc`` was raised, as an indented line; "" when not in user code.

    The innermost traceback frame outside installed packages and ginlight is the
    line a user can act on.
    """
    library = (os.sep + "site-packages" + os.sep, os.sep + "ginlight" + os.sep, "<frozen")
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if not any(part in f.filename for part in library)]
    if not frames:
        return ""
    frame = frames[-1]
    return f"\n  raised at {frame.filename}:{frame.lineno}, in {frame.name}: {frame.line}"
