"""The errors a user can cause, and nothing else: the ``i2i`` command prints each of them as one
``error: ...`` line (no traceback), and the library raises them itself, so Python callers can
catch one base class. Every message names the file, flag or field at fault and says what to do.

This module imports nothing heavy: the command's error handler needs it before torch is loaded,
and an error path must not cost seconds of imports.
"""

from __future__ import annotations

from pathlib import Path


class UserError(Exception):
    """Caused by the user's input (options, files, checkpoints, machine); the message says
    what was wrong and how to fix it. Programming errors are never UserErrors."""


class ConfigError(UserError, ValueError):
    """A config value or command-line option is missing, misspelled or out of range; the
    message names the field or flag."""


class DeviceError(ConfigError):
    """The device asked for (``--device cuda``) is not on this machine."""


class DataError(UserError, ValueError):
    """A dataset as a whole cannot be used (missing folder, no images, unmatched pairs ...)."""


class BadImageError(UserError, ValueError):
    """An image file cannot be used; the message names the file, the problem and the way out."""

    def __init__(self, path: str | Path, problem: str) -> None:
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{path}: {problem}")


class CheckpointError(UserError, ValueError):
    """A path holds no usable checkpoint (missing, foreign, damaged or inconsistent); the
    message names the file and says what was expected."""


class RunExistsError(UserError, FileExistsError):
    """A new run was asked for in a folder that already holds one."""


class InputNotFound(UserError, FileNotFoundError):
    """A file or folder named on the command line does not exist."""


class TrainingDiverged(UserError, RuntimeError):
    """A loss became NaN or infinite; the last good checkpoint is kept untouched."""


class WeightsMissing(UserError, FileNotFoundError):
    """Pretrained weights (a feature extractor's, a published model's) are not on this
    machine and cannot be downloaded; the message says where to get them."""


class DownloadError(UserError, OSError):
    """A download failed (offline, refused, corrupt); the message names the URL and what to
    do instead."""


class StorageError(UserError, OSError):
    """Object storage cannot be reached as a URL asks (credentials, endpoint, bucket); the
    message names the URL and what to check."""
