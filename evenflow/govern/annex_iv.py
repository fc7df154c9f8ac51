"""Which files of an audit bundle answer which item of the EU AI Act's technical documentation.

Annex IV lists what the technical documentation of a high-risk AI system must hold; Articles 10
(data governance), 12 (record-keeping), 13 (transparency), 14 (human oversight) and 15 (accuracy,
robustness) say what evidence the provider keeps. A bundle answers some items from what evenflow
recorded, part of others, and none of the rest (the intended purpose in the provider's words, the
risk-management system, the declaration of conformity): the table says which, plainly, so an
auditor never takes an item for answered because a file with a plausible name exists.

Pure: it maps bundle paths (``fnmatch`` patterns over the paths a bundle holds) to items and
knows nothing of MLflow or zip files.
"""

from __future__ import annotations

from collections.abc import Iterable
from fnmatch import fnmatchcase
from typing import Literal

from pydantic import Field

from evenflow.records import Record

Status = Literal["answered", "partly answered", "not answered by the bundle"]

ANSWERED: Status = "answered"
PARTLY: Status = "partly answered"
UNANSWERED: Status = "not answered by the bundle"

# Bundle paths, as the audit use case writes them (run artifacts keep their artifact path).
CARD = ("model_card/model_card.md", "model_card/model_card.html")
LINEAGE = ("registry/lineage.json", "lineage/*")
REVIEW = ("registry/review.json",)
LEDGER = ("registry/ledger/*.json",)
ENVIRONMENT = ("model/requirements.txt", "model/conda.yaml", "model/python_env.yaml")
PARAMS = ("params/run_params.json",)
TRAINING = ("training/*.json",)
DATA = ("data/manifest.json", "data/split_report.json")
CONTRACT = ("contract/expectations.json", "validation/validation_result.json")
METRICS = (
    "reports/metrics.json",
    "reports/classification.*",
    "reports/baselines.json",
    "reports/baseline_groups.json",
)
FAIRNESS = ("reports/groups.json", "reports/fairness/*")
DRIFT = ("reports/drift_summary.json", "reports/data_drift.*")
EXPLANATIONS = ("explanations/*",)
MITIGATIONS = ("mitigations/*",)
GATE = ("gate/decision.json",)
THRESHOLD = ("reports/threshold_policy.json",)


class AnnexItem(Record):
    """One item of Annex IV or one Article's evidence: what answers it and what the team adds."""

    item: str = Field(description="Where the Act asks for it, e.g. 'Annex IV 2(d)' or 'Art. 14'.")
    title: str = Field(description="What the Act asks for, in short.")
    patterns: tuple[str, ...] = Field(description="Bundle paths (fnmatch) that answer it.")
    team_must_supply: str | None = Field(
        default=None, description="What only the provider can write; None when the files suffice."
    )


class AnnexRow(Record):
    """An item as one bundle answers it: the files it holds for it and what is still missing."""

    item: str
    title: str
    status: Status
    files: tuple[str, ...] = Field(description="Bundle paths that answer the item, sorted.")
    team_must_supply: str | None = Field(
        description="What the bundle cannot answer and the team must supply; None if answered."
    )


def _item(
    item: str, title: str, *patterns: tuple[str, ...], supply: str | None = None
) -> AnnexItem:
    flat = tuple(p for group in patterns for p in group)
    return AnnexItem(item=item, title=title, patterns=flat, team_must_supply=supply)


ITEMS: tuple[AnnexItem, ...] = (
    _item(
        "Annex IV 1(a)",
        "Intended purpose, provider, version of the system",
        CARD,
        LINEAGE,
        supply="the intended purpose in the provider's own words, the provider's name and who "
        "is affected (the card's 'Intended use' is only what the run configuration said)",
    ),
    _item(
        "Annex IV 1(b)",
        "Interaction with hardware or software, other AI systems",
        supply="the systems the model's scores feed and is fed by",
    ),
    _item("Annex IV 1(c)", "Versions of the relevant software", ENVIRONMENT, LINEAGE),
    _item(
        "Annex IV 1(d)-(g)",
        "Forms placed on the market, hardware, user interface",
        supply="how the system is deployed and what its users see",
    ),
    _item(
        "Annex IV 1(h)",
        "Instructions for use for the deployer",
        CARD,
        supply="instructions for use (Art. 13(3)); the card is evidence for them, not them",
    ),
    _item(
        "Annex IV 2(a)",
        "Methods and steps of development",
        PARAMS,
        TRAINING,
        LINEAGE,
    ),
    _item(
        "Annex IV 2(b)",
        "Design choices, assumptions, what the system optimises, trade-offs",
        PARAMS,
        THRESHOLD,
        MITIGATIONS,
        supply="the rationale for the design choices and the trade-off chosen",
    ),
    _item("Annex IV 2(c)", "System architecture and computational resources", TRAINING, LINEAGE),
    _item(
        "Annex IV 2(d)",
        "Data requirements: data sets, provenance, selection, cleaning (Art. 10)",
        DATA,
        CONTRACT,
        supply="where the data came from, how it was collected and labelled",
    ),
    _item("Annex IV 2(e)", "Assessment of the human oversight measures (Art. 14)", REVIEW, LEDGER),
    _item(
        "Annex IV 2(f)",
        "Pre-determined changes to the system and its performance",
        supply="the retraining and change plan (gates in params/run_params.json are its checks)",
    ),
    _item(
        "Annex IV 2(g)",
        "Validation and testing: metrics, discriminatory impacts, dated test logs",
        METRICS,
        FAIRNESS,
        DRIFT,
        GATE,
    ),
    _item(
        "Annex IV 2(h)",
        "Cybersecurity measures",
        supply="the security measures of the deployment",
    ),
    _item(
        "Annex IV 3",
        "Capabilities and limitations, accuracy for groups, foreseeable risks",
        CARD,
        FAIRNESS,
        EXPLANATIONS,
        supply="the foreseeable unintended outcomes and risks to fundamental rights",
    ),
    _item(
        "Annex IV 4",
        "Appropriateness of the performance metrics",
        METRICS,
        GATE,
        supply="why these metrics and thresholds fit the decision",
    ),
    _item(
        "Annex IV 5",
        "Risk-management system (Art. 9)",
        supply="the risk-management system",
    ),
    _item(
        "Annex IV 6",
        "Relevant changes through the lifecycle",
        LEDGER,
        LINEAGE,
        supply="changes made outside evenflow's runs and ledger",
    ),
    _item("Annex IV 7", "Harmonised standards applied", supply="the standards applied"),
    _item(
        "Annex IV 8",
        "EU declaration of conformity (Art. 47)",
        supply="a copy of the declaration of conformity",
    ),
    _item(
        "Annex IV 9",
        "Post-market monitoring plan (Art. 72)",
        supply="the monitoring plan (`evenflow monitor` runs are its evidence, not the plan)",
    ),
    _item("Art. 10", "Data and data governance", DATA, CONTRACT, FAIRNESS),
    _item(
        "Art. 12",
        "Record-keeping: logs that trace the system",
        LEDGER,
        LINEAGE,
        REVIEW,
        supply="the logs of the system in operation (scoring runs are outside this bundle)",
    ),
    _item("Art. 13", "Transparency and information to deployers", CARD, EXPLANATIONS),
    _item("Art. 14", "Human oversight", REVIEW, LEDGER, GATE),
    _item(
        "Art. 15",
        "Accuracy, robustness and cybersecurity",
        METRICS,
        DRIFT,
        FAIRNESS,
        supply="the cybersecurity measures",
    ),
)


def answering_files(patterns: Iterable[str], files: Iterable[str]) -> tuple[str, ...]:
    """The bundle paths that match any of ``patterns``, sorted."""
    wanted = tuple(patterns)
    return tuple(sorted(f for f in files if any(fnmatchcase(f, p) for p in wanted)))


def annex_iv_table(
    files: Iterable[str], items: Iterable[AnnexItem] = ITEMS
) -> tuple[AnnexRow, ...]:
    """Each item with the bundle files that answer it and what the team must still supply.

    An item whose files are all absent from this bundle (a version without explanations, say)
    is not answered, and says which files it would have needed.
    """
    present = tuple(files)
    return tuple(_row(item, present) for item in items)


def _row(item: AnnexItem, present: tuple[str, ...]) -> AnnexRow:
    found = answering_files(item.patterns, present)
    if not found:
        missing = f"this version has none of {', '.join(item.patterns)}" if item.patterns else None
        supply = "; ".join(s for s in (item.team_must_supply, missing) if s)
        return AnnexRow(
            item=item.item, title=item.title, status=UNANSWERED, files=(), team_must_supply=supply
        )
    status = PARTLY if item.team_must_supply else ANSWERED
    return AnnexRow(
        item=item.item,
        title=item.title,
        status=status,
        files=found,
        team_must_supply=item.team_must_supply,
    )
