"""The errors a user can cause and fix. The CLI prints these as one message and exits 2.

Each names what was wrong and how to fix it. Anything else raised inside geovision is a bug and
keeps its traceback. Subclasses also derive from the built-in exception that callers expected
before (ValueError, FileNotFoundError, ...), so `except ValueError` keeps working.
"""

from __future__ import annotations


class GeovisionError(Exception):
    """Base of every error a user can cause: bad input, missing data, exhausted budget."""


class ConfigError(GeovisionError, ValueError):
    """An experiment config, recipe, option or setting is invalid."""


class UnknownNameError(ConfigError, KeyError):
    """A dataset, model, workflow, provider or method name that is not registered."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class DataError(GeovisionError, ValueError):
    """A dataset's files are missing, corrupt or of the wrong shape (band count, dtype)."""


class MissingDataError(DataError, FileNotFoundError):
    """An input file or upstream artifact does not exist yet."""


class DownloadError(GeovisionError, OSError):
    """A download failed for good (after retries, or a non-retryable status)."""


class ChecksumError(DownloadError):
    """A downloaded or stored file's size or sha256 does not match what was published."""


class AuthError(DownloadError):
    """Credentials are missing or refused (401/403, or a login page served instead of data)."""


class WeightsError(GeovisionError, ValueError):
    """Weights that do not fit the model, or a weights file that is missing or corrupt."""


class MissingWeightsError(WeightsError, FileNotFoundError):
    """Weights a config names (a port's, or a file) that are not there (yet)."""


class QuotaError(GeovisionError):
    """A provider's daily download budget is used up."""


class RemoteError(GeovisionError, OSError):
    """An S3 or SSH operation failed: names the bucket/key or host and the cause."""
