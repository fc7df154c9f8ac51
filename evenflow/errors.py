"""Errors a user can act on: each one says which file, column or rule is at fault."""

from __future__ import annotations


class EvenflowError(Exception):
    """Base class for errors that the CLI shows as one clear line, without a traceback."""


class ConfigError(EvenflowError):
    """A run configuration or setting is invalid (unknown key, bad value, missing file)."""


class DataError(EvenflowError):
    """An input file cannot be read or does not match its dataset spec."""


class ValidationFailed(EvenflowError):
    """A batch broke its data contract; the flow stops before sharding and training."""

    def __init__(self, summary: str, failures: list[str]) -> None:
        super().__init__("\n".join([summary, *failures]))
        self.summary = summary
        self.failures = failures


class GateFailed(EvenflowError):
    """A model broke its gate policy: it is registered, without the candidate alias."""

    def __init__(self, summary: str, failures: list[str]) -> None:
        super().__init__("\n".join([summary, *failures]))
        self.summary = summary
        self.failures = failures


class PromotionRefused(EvenflowError):
    """A promote, reject or rollback was refused; the message says why and what to do."""


class VersioningError(EvenflowError):
    """DVC could not store or restore a data version."""
