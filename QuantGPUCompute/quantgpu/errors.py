"""One small exception hierarchy shared by every layer.

``InputError`` and its subclasses describe problems with what the user gave us
(a file, a parameter, a missing device); front ends show their message as is
(the CLI exits 2 with one line). Anything else is an internal error.
"""

from __future__ import annotations


class QuantGPUError(Exception):
    """Base class of all QuantGPU errors."""


class InputError(QuantGPUError):
    """Bad input: the message names the file or parameter and the problem."""

    def __init__(self, message: str, path: str | None = None):
        self.path = str(path) if path is not None else None
        super().__init__(f"{self.path}: {message}" if self.path else message)


class BackendUnavailableError(InputError):
    """The requested compute backend is not available on this machine."""


class OutputExistsError(InputError):
    """An output file exists and overwriting was not requested."""
