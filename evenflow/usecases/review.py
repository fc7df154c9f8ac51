"""Recording a review: the evidence digest on the version, the rendered review as its description.

Reading the review is :func:`evenflow.govern.review.review`; rendering it is
:mod:`evenflow.reports.review`; this story puts both on the registered version.
"""

from __future__ import annotations

import logging
from datetime import datetime

from evenflow.config.settings import EvenflowSettings
from evenflow.errors import EvenflowError
from evenflow.govern.review import ReviewSummary, review_tags
from evenflow.registry import store
from evenflow.reports.review import review_description

logger = logging.getLogger(__name__)


def record_review(
    settings: EvenflowSettings,
    model: str,
    version: str,
    summary: ReviewSummary,
    *,
    now: datetime | None = None,
) -> None:
    """Bind the review to the version: evidence digest, per-file hashes, time, description.

    The description carries the review as Markdown tables with links to the evidence, so a
    reviewer using only the MLflow UI sees the same figures as the terminal.
    """
    if summary.model != model or summary.version.version != version:
        raise EvenflowError(
            f"the summary describes {summary.model} v{summary.version.version}, "
            f"not {model} v{version}"
        )
    client = store.client_for(settings)
    store.tag_version(client, model, version, review_tags(summary, now))
    experiment_id = str(client.get_run(summary.model_card.run_id).info.experiment_id)
    description = review_description(summary, experiment_id=experiment_id)
    client.update_model_version(model, version, description=description)
    logger.info("recorded review of %s v%s (evidence %s)", model, version, summary.evidence.sha256)
