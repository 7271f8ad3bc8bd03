"""The engine's error hierarchy: every failure a user can cause is an IviError.

Each subclass also derives from the builtin that fits (FileNotFoundError, ValueError, ...),
so callers that catch builtins keep working. Messages name the file and the fix; the command
line turns an IviError into one line on stderr and a non-zero exit.
"""
from __future__ import annotations

from collections.abc import Sequence


class IviError(Exception):
    """Base of every error the engine raises on purpose."""


class SequenceNotFoundError(IviError, FileNotFoundError):
    """No file on disk matches a frame pattern."""


class MissingFramesError(IviError, FileNotFoundError):
    """Some frames of the requested range are absent on disk.

    Attributes:
        missing: the absent frame numbers, ascending.
    """

    def __init__(self, message: str, missing: Sequence[int] = ()) -> None:
        super().__init__(message)
        self.missing = list(missing)


class ExrReadError(IviError, OSError):
    """A file could not be read as an image (not an EXR, truncated, unreadable)."""


class ExrWriteError(IviError, OSError):
    """An output file could not be written."""


class ChannelError(IviError, KeyError):
    """A requested channel is not in the file."""

    def __str__(self) -> str:  # KeyError quotes its message; we want it plain
        return str(self.args[0]) if self.args else ""


class ShapeError(IviError, ValueError):
    """Images that must agree in size (plate and mask) do not."""


class MatteError(IviError, ValueError):
    """A matte leaves nothing known to learn the fill from (it covers every pixel)."""


class DeviceMemoryError(IviError, MemoryError):
    """The GPU (or the machine) ran out of memory; the message names the sizes that would fit."""


class OutputExistsError(IviError, FileExistsError):
    """An output frame exists and overwriting was not asked for."""


class ConfigError(IviError, ValueError):
    """A configuration, preset or option value is not valid."""


class CheckpointError(IviError, ValueError):
    """A checkpoint is missing, unreadable or does not fit the configuration."""


class StopRequested(IviError):
    """The run was asked to stop (SIGTERM, a cancel button); a checkpoint was written to resume from."""
