"""The check before a run: seconds, before any server starts or anything is written.

A missing file or a misnamed column fails here, naming the file, the role and the columns, instead
of half a minute later inside a flow run. Kept apart from the training story so that importing it
stays cheap: it reads only the file's header (CSV) or schema (Parquet).
"""

from __future__ import annotations

from evenflow.config.run import RunParams
from evenflow.contracts.preflight import check_dataset, personal_suspects


def check_run(params: RunParams) -> tuple[str, ...]:
    """The run's data file exists and has every column the run names; return its columns.

    Raises:
        DataError: naming the file, the role and the missing columns.
    """
    return check_dataset(params.dataset)


def unmarked_personal(params: RunParams, columns: tuple[str, ...]) -> list[str]:
    """Columns named like personal data (ssn, email, phone, name, address...) left unmarked."""
    return personal_suspects(params.dataset, columns)
