"""One hierarchy for every error nbm raises on purpose.

The CLI maps these to exit codes and the API to HTTP statuses, each in one place; anything that is not an
``NbmError`` is a bug and surfaces as an internal error (exit 1 / HTTP 500).
"""

from __future__ import annotations


class NbmError(Exception):
    """Base class of the errors nbm raises deliberately; ``str(err)`` is the message for the user."""


class ConfigError(NbmError):
    """The configuration file or environment is invalid (unknown key, wrong type, broken reference)."""


class DataError(NbmError):
    """Input data cannot be used as a whole: a missing or unreadable file, a missing required column.

    ``path`` names the offending file (or directory) so that every message says where to look.
    """

    def __init__(self, message: str, *, path: str | None = None) -> None:
        self.path = path
        super().__init__(f"{path}: {message}" if path else message)


class TooManyRejectsError(DataError):
    """More rows were rejected than the configured share allows: the data is likely broken upstream."""


class ModelMismatchError(NbmError):
    """The features this code builds are not the ones the model was trained on."""
