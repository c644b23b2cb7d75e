"""The errors genface raises for a user to read, in one place.

Every class derives from :class:`GenfaceError` (and from the built-in exception a caller
would already catch: ``OSError`` for files, ``ValueError`` for values, ``RuntimeError`` for
runs), so ``except GenfaceError`` catches every failure that genface explains itself. The
command-line tools print such an error's message alone, without a traceback (set
``HYDRA_FULL_ERROR=1`` to see it; it is also written to the run's log file).

Each message names the file, folder, key or step at fault and, where there is one, the fix.

This module imports nothing heavy (no torch), so the CLIs can use it before anything else.
"""

from __future__ import annotations

from pathlib import Path


class GenfaceError(Exception):
    """Base of every error whose message genface writes for a user (printed without traceback)."""


# -- input data --------------------------------------------------------------------------------


class BadImageError(GenfaceError, OSError):
    """An image file that cannot be decoded (empty, truncated, not an image, too large).

    Attributes:
        path: the offending file.
        reason: why it cannot be decoded.
    """

    def __init__(self, path: str | Path, reason: str):
        self.path = Path(path)
        self.reason = reason
        super().__init__(f"cannot decode image file '{self.path}': {reason}")

    def __reduce__(self):  # OSError's default pickling would pass (errno, strerror) to __init__
        return (type(self), (self.path, self.reason))


class DataFolderError(GenfaceError, ValueError):
    """A folder of images that cannot be used (empty, every file unreadable, ...)."""


# -- configuration -----------------------------------------------------------------------------


class ConfigError(GenfaceError, ValueError):
    """A config value or key is wrong; the message says which and what is valid."""


# -- runs and checkpoints ----------------------------------------------------------------------


class CheckpointError(GenfaceError, RuntimeError):
    """A checkpoint file is missing, truncated, corrupt, unsafe or of another model."""


class CheckpointMismatchError(CheckpointError):
    """A checkpoint written by another model family (or another config) than this run's."""


class OutputDirError(GenfaceError, PermissionError):
    """The run's output folder cannot be created or written."""


class DiskFullError(GenfaceError, OSError):
    """A checkpoint (or export) could not be written for lack of space; earlier files are intact."""


class NonFiniteLossError(GenfaceError, RuntimeError):
    """A loss, parameter or buffer became NaN or Inf (or a loss exploded past the threshold)."""


class TooManySkippedStepsError(NonFiniteLossError):
    """``nan_policy=skip`` dropped more than ``max_skipped_fraction`` of a run's steps."""


# -- pretrained folders ------------------------------------------------------------------------


class PretrainedError(GenfaceError, ValueError):
    """A ``save_pretrained`` folder that cannot be loaded, or weights that must not be saved."""


__all__ = [
    "BadImageError",
    "CheckpointError",
    "CheckpointMismatchError",
    "ConfigError",
    "DataFolderError",
    "DiskFullError",
    "GenfaceError",
    "NonFiniteLossError",
    "OutputDirError",
    "PretrainedError",
    "TooManySkippedStepsError",
]
