"""The failures a user can fix, as opposed to bugs.

The command-line entry points turn an :class:`MgeError` (and the operating system's own expected
failures: a missing file, a read-only folder, a full disk) into one ``error:`` line and exit code 2;
anything else is a bug and keeps its traceback. Each class also derives from the built-in exception
a caller would expect (``ValueError`` for a bad value, ``RuntimeError`` for bad files), so code that
catches those keeps working.
"""

from __future__ import annotations


class MgeError(Exception):
    """An expected failure: the message says what is wrong and how to fix it."""


class ConfigError(MgeError, ValueError):
    """A setting is wrong; the message names the setting, the value and the fix."""


class DataError(MgeError, RuntimeError):
    """A dataset is missing, truncated or corrupt; the message names the path."""


class CheckpointError(MgeError, ValueError):
    """A seed or training checkpoint cannot be used (corrupt, refused pickle, missing metadata)."""


class PoolError(MgeError, ValueError):
    """A pool folder is refused: not a pool, corrupt, tampered with, or made with another config."""


class PoolLockedError(PoolError):
    """Another process is writing the pool folder."""
