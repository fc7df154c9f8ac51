"""The review flow: show the evidence → pause for a person's typed decision → apply it via the ledger."""

from __future__ import annotations

from prefect import flow, pause_flow_run

from evenflow.config.settings import EvenflowSettings
from evenflow.govern.ledger import LedgerEntry
from tasks.review import ReviewDecision, apply_decision, review_version

#: How long a review may wait for its decision before the flow run fails: one week.
DEFAULT_WAIT_S = 7 * 24 * 3600


@flow(name="review-candidate")
def review_candidate(
    model: str,
    version: str | None = None,
    wait_s: int = DEFAULT_WAIT_S,
    poll_s: int = 10,
) -> LedgerEntry:
    """Ask a person in the Prefect UI whether a version (default: the candidate) becomes champion.

    The run reviews the version beside the champion (recorded on the version, as ``evenflow
    review`` does), publishes the review as a Markdown artifact, then pauses: the reviewer reads
    it in the **Resume** form and types approve or reject, their name and a note. The decision
    goes through the same promotion rules and ledger as ``evenflow promote``/``reject``; the
    person who launched the training run may not approve it unless the review policy allows.
    ``wait_s`` is how long the run waits for a decision before failing; ``poll_s`` how often the
    paused run looks for one.
    """
    settings = EvenflowSettings()
    # Evidence: review beside the champion, bind the review to the version, publish it
    request = review_version(settings, model, version)
    # Decision: wait for a person to approve or reject, with their name and a note
    decision = pause_flow_run(
        wait_for_input=ReviewDecision.with_initial_data(description=request.description),
        timeout=wait_s,
        poll_interval=poll_s,
    )
    # Ledger: the same rules and record as the command line
    return apply_decision(settings, request, decision)
