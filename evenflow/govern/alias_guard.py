"""The champion-alias guard: does ``champion`` point where the promotion ledger says it should?

Anyone with registry access can move an alias in the MLflow UI, bypassing the ledger and the
evidence it binds. The ledger says which version it made champion (its latest promote or
rollback); :func:`audit_alias` compares that with the alias and says whether they agree. It is
pure: :mod:`evenflow.usecases.champion` reads the alias and the ledger and acts on the answer
(scoring and monitoring refuse, review and promote report, ``evenflow audit-aliases`` lists).

Why on every command and not on an event: MLflow 3.x delivers registry webhooks
(``model_version_alias.created`` / ``model_version_alias.deleted``) only from a tracking
*server* (``mlflow server``), never from the embedded SQLite store evenflow uses by default. With
a tracking server, an operator can subscribe a receiver that runs ``evenflow audit-aliases`` on
every alias change::

    MlflowClient("http://host:5000").create_webhook(
        name="evenflow-alias-guard",
        url="https://receiver.example/alias-changed",
        events=["model_version_alias.created", "model_version_alias.deleted"],
        secret="...",  # the receiver checks the HMAC signature
    )

The guard below still runs on every review, promote, score and monitor, so a missed delivery
never lets an unrecorded champion score rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from pydantic import Field

from evenflow import layout
from evenflow.errors import EvenflowError
from evenflow.govern.ledger import LedgerEntry
from evenflow.records import Record

AliasState = Literal["ok", "no champion", "set outside the ledger", "removed outside the ledger"]


class UnrecordedChampion(EvenflowError):
    """The ``champion`` alias points at a version the ledger did not make champion."""


class AliasAudit(Record):
    """One model's ``champion`` alias beside the version its ledger last made champion."""

    model: str
    alias_version: str | None = Field(description="Where the champion alias points; None: unset.")
    ledger_version: str | None = Field(
        description="The version the ledger's latest promote or rollback made champion."
    )
    ledger_seq: int | None = Field(description="That ledger entry's sequence number.")

    @property
    def state(self) -> AliasState:
        """Whether the alias and the ledger agree, and if not, how they differ."""
        if self.alias_version == self.ledger_version:
            return "ok" if self.alias_version is not None else "no champion"
        if self.alias_version is None:
            return "removed outside the ledger"
        return "set outside the ledger"

    @property
    def resolved(self) -> bool:
        """True when nothing needs a person: the alias is where the ledger put it (or both unset)."""
        return self.state in ("ok", "no champion")

    def describe(self) -> str:
        """One line: the state, with both versions when they differ."""
        ledger = (
            "the ledger records no champion"
            if self.ledger_version is None
            else f"the ledger says v{self.ledger_version} (entry {self.ledger_seq})"
        )
        if self.state == "ok":
            return (
                f"{self.model}: ok, champion v{self.alias_version} (ledger entry {self.ledger_seq})"
            )
        if self.state == "no champion":
            return f"{self.model}: ok, no champion"
        if self.state == "removed outside the ledger":
            return f"{self.model}: champion alias removed outside the ledger; {ledger}"
        return (
            f"{self.model}: champion alias set outside the ledger: it points at "
            f"v{self.alias_version}, {ledger}"
        )

    def resolution(self) -> tuple[str, ...]:
        """The commands that put the alias and the ledger back in agreement, one per way."""
        steps = []
        if self.alias_version is not None:
            steps.append(
                f"to keep v{self.alias_version}, review it and record it through the ledger: "
                f"evenflow review {self.model} {self.alias_version} && evenflow promote "
                f"{self.model} {self.alias_version} --reviewer NAME --note TEXT"
            )
        if self.ledger_version is not None:
            steps.append(
                f"to restore the ledger's champion v{self.ledger_version}: evenflow promote "
                f"{self.model} {self.ledger_version} --reviewer NAME --note TEXT"
            )
        return tuple(steps)


def ledger_champion(entries: Sequence[LedgerEntry]) -> LedgerEntry | None:
    """The ledger's latest promote or rollback: the decision that last set ``champion``."""
    for entry in reversed(entries):
        if entry.action in ("promote", "rollback"):
            return entry
    return None


def audit_alias(
    model: str, alias_version: str | None, entries: Sequence[LedgerEntry]
) -> AliasAudit:
    """Compare where ``champion`` points with what the model's ledger last made champion."""
    last = ledger_champion(entries)
    return AliasAudit(
        model=model,
        alias_version=alias_version,
        ledger_version=None if last is None else last.version,
        ledger_seq=None if last is None else last.seq,
    )


def refuse_unrecorded(audit: AliasAudit, alias: str = layout.CHAMPION) -> None:
    """Stop a command that would use a champion the ledger did not set.

    Only the ``champion`` alias is guarded: other aliases (``candidate``) are not ledger decisions.

    Raises:
        UnrecordedChampion: The alias is ``champion`` and it disagrees with the ledger.
    """
    if alias != layout.CHAMPION or audit.resolved:
        return
    raise UnrecordedChampion(
        "\n".join(
            (f"{audit.describe()}; it is refused until a person resolves it", *audit.resolution())
        )
    )
