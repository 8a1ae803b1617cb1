"""Every exception liveq raises on purpose, in one place below everything else.

Each is a `LiveqError`: a mistake in what the user gave (a config, a log, a checkpoint,
an action, a command line) that the command line turns into one line
`liveq: error: ...` and exit status 2. Anything else that escapes is a bug.
"""

from __future__ import annotations


class LiveqError(Exception):
    """Base of every error liveq reports to the user as a one-line message."""


class ConfigError(LiveqError, ValueError):
    """A config file or dict that cannot be turned into a config object."""


class CheckpointError(LiveqError, RuntimeError):
    """A checkpoint that is missing, unreadable, not a liveq checkpoint or not this run's."""


class InvalidActionError(LiveqError, ValueError):
    """An action that names no recommendable candidate, or a step the env cannot take."""


class LogError(LiveqError, ValueError):
    """A log that cannot be read as asked: missing file or column, malformed rows."""


class UsageError(LiveqError):
    """A mistake in what the user asked for on the command line or through the API."""


class NonFiniteError(LiveqError, ArithmeticError):
    """A loss, weight or result that became NaN or infinite."""


class RequestError(LiveqError):
    """A request the recommendation service refuses; `status` is the HTTP status (4xx)."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
