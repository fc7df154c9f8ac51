"""Errors a user can act on: each one says which file, column or rule is at fault."""

from __future__ import annotations


class EvenflowError(Exception):
    """Base class for errors that the CLI shows as one clear line, without a traceback."""


class ConfigError(EvenflowError):
    """A run configuration or setting is invalid (unknown key, bad value, missing file)."""


class ModelNotFound(ConfigError):
    """No registered version answers to ``name@alias`` (or ``name`` has no such version)."""


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


class InfrastructureError(EvenflowError):
    """A part of the platform (the local Prefect API, the Dask cluster) failed, not the input.

    The message says what failed and what to do; the command may simply be retried.
    """


class StackError(EvenflowError):
    """The local server stack cannot start, stop or be reached (see ``evenflow.ops.stack``)."""


class PortBusy(StackError):
    """A port the stack needs is already in use by another process."""


class PostgresUnreachable(StackError):
    """The PostgreSQL server that backs the stack cannot be reached or refused a command."""


class ServiceUnhealthy(StackError):
    """A stack service exited or did not become healthy in time; the message ends with its log."""


class ShardChanged(DataError):
    """A shard's bytes differ from the md5 its manifest recorded: it changed after it was versioned.

    A data error, never retried: reading the shard again gives the same wrong bytes. It crosses
    from a Dask worker to the driver by pickle, hence :meth:`__reduce__`.
    """

    def __init__(self, shard: str, expected: str, actual: str, folder: str) -> None:
        super().__init__(
            f"shard {shard}: md5 {actual} read, manifest says {expected}: the shard changed after "
            f"it was versioned; delete its folder {folder} and run again (sharding writes it "
            "again from the batch, byte for byte)"
        )
        self.shard, self.expected, self.actual, self.folder = shard, expected, actual, folder

    def __reduce__(self) -> tuple[type[ShardChanged], tuple[str, str, str, str]]:
        return type(self), (self.shard, self.expected, self.actual, self.folder)
