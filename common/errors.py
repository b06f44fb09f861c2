"""The project's error types. `run.py` prints any `UserError` as one line (`error: …`) with its hint and
exits with status 2; anything else is a bug and keeps its traceback."""
from __future__ import annotations


class UserError(Exception):
    """Something the user can fix: a bad argument, a bad file, a refused action.

    The message says what was found and what was expected; `hint` (optional) says how to fix it.
    """

    def __init__(self, message: str, hint: str | None = None):
        super().__init__(message)
        self.hint = hint


class ConfigError(UserError, ValueError):
    """An option or argument that can never work (negative epochs, a grid that does not factor, …)."""


class FormatError(UserError, ValueError):
    """A data file that is missing, truncated, corrupt, holds non-finite values or has the wrong layout."""


class DeviceError(UserError, RuntimeError):
    """A device that was asked for and is not there."""


class CheckpointError(UserError, ValueError):
    """A checkpoint that cannot be loaded safely or does not match the run it is loaded into."""


class RunExistsError(UserError, FileExistsError):
    """Finished results that would be overwritten without --overwrite."""


class NonFiniteError(UserError, FloatingPointError):
    """Training produced a non-finite loss that loss scaling does not explain."""
