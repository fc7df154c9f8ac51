"""The review flow, driven as a reviewer in the Prefect UI would: paused run → typed decision.

The flow runs in a thread against the session's Prefect test server; the test waits for it to be
Paused and resumes it through Prefect's API with a typed input. Versions are registered cheaply
(artifacts of synthetic predictions, as in tests/unit/test_promotion.py), on a real SQLite store.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import pytest
from mlflow.utils.mlflow_tags import MLFLOW_USER
from prefect import get_client
from prefect.client.schemas.filters import (
    ArtifactFilter,
    ArtifactFilterKey,
    FlowRunFilter,
    FlowRunFilterName,
)
from prefect.client.schemas.objects import FlowRun
from prefect.flow_runs import resume_flow_run
from prefect.states import State

from evenflow import layout
from evenflow.config.settings import EvenflowSettings
from evenflow.errors import PromotionRefused
from evenflow.registry import store as registry
from evenflow.usecases import champion
from flows.review import review_candidate
from tests.unit.conftest import Made, make_version

TRAINER = "tess"
WAIT_S = 120


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EvenflowSettings]:
    """One project for the module; the flow reads it from the environment as deployed runs do."""
    root = tmp_path_factory.mktemp("review")
    with pytest.MonkeyPatch.context() as env:
        env.setenv("EVENFLOW_PROJECT_ROOT", str(root))
        env.delenv("EVENFLOW_ALLOW_SELF_REVIEW", raising=False)
        yield EvenflowSettings()


def _version(settings: EvenflowSettings, model: str, folder: Path) -> Made:
    """A candidate whose training run ``TRAINER`` launched."""
    folder.mkdir()
    made = make_version(settings, model, folder)
    registry.client_for(settings).set_tag(made.run_id, MLFLOW_USER, TRAINER)
    return made


class _Run:
    """The review flow running in a thread, as a worker would run it."""

    def __init__(self, model: str) -> None:
        self.name = f"review-{uuid4().hex[:8]}"
        self.state: State[Any] | None = None
        self._thread = threading.Thread(target=self._go, args=(model,), daemon=True)
        self._thread.start()

    def _go(self, model: str) -> None:
        flow = review_candidate.with_options(flow_run_name=self.name)
        self.state = flow(model, wait_s=WAIT_S, poll_s=1, return_state=True)

    def paused(self) -> FlowRun:
        """The flow run once it is Paused, waiting for its decision."""
        deadline = time.monotonic() + WAIT_S
        with get_client(sync_client=True) as client:
            while time.monotonic() < deadline:
                runs = client.read_flow_runs(
                    flow_run_filter=FlowRunFilter(name=FlowRunFilterName(any_=[self.name]))
                )
                if runs and runs[0].state is not None and runs[0].state.is_paused():
                    return runs[0]
                assert self._thread.is_alive(), f"the flow ended before pausing: {self.state}"
                time.sleep(0.5)
        raise AssertionError(f"flow run {self.name} did not pause")

    def finished(self) -> State[Any]:
        self._thread.join(timeout=WAIT_S)
        assert self.state is not None, "the flow did not finish after its decision"
        return self.state


def _decide(run_id: UUID, **decision: str) -> None:
    resume_flow_run(run_id, run_input=decision)


def test_an_approval_typed_into_the_paused_run_makes_champion(
    settings: EvenflowSettings, tmp_path: Path
) -> None:
    made = _version(settings, "review-approve", tmp_path / "v1")
    run = _Run("review-approve")
    paused = run.paused()

    with get_client(sync_client=True) as client:
        [artifact] = client.read_artifacts(  # by key: the session's server holds many
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=["review-approve-review"]))
        )
    review_text = artifact.data
    assert f"# Review review-approve version {made.version}" in str(review_text)
    with pytest.raises(RuntimeError, match="Cannot resume"):  # the input is typed: note required
        _decide(paused.id, decision="approve", reviewer="ada")

    _decide(paused.id, decision="approve", reviewer="ada", note="fair on every group")
    state = run.finished()

    assert state.is_completed(), state.message
    client = registry.client_for(settings)
    found = client.get_model_version_by_alias("review-approve", layout.CHAMPION)
    assert str(found.version) == made.version
    [entry] = champion.history(settings, "review-approve")
    assert (entry.action, entry.version, entry.reviewer, entry.note) == (
        "promote",
        made.version,
        "ada",
        "fair on every group",
    )
    assert state.result() == entry


def test_the_launcher_cannot_approve_their_own_run(
    settings: EvenflowSettings, tmp_path: Path
) -> None:
    _version(settings, "review-self", tmp_path / "v1")
    run = _Run("review-self")

    _decide(run.paused().id, decision="approve", reviewer=TRAINER, note="looks good to me")
    state = run.finished()

    assert state.is_failed()
    error = state.result(raise_on_failure=False)
    assert isinstance(error, PromotionRefused)
    assert f"'{TRAINER}' launched its training run" in str(error)
    assert "EVENFLOW_ALLOW_SELF_REVIEW=1" in str(error)
    assert registry.find_alias(registry.client_for(settings), "review-self", "champion") is None
    assert champion.history(settings, "review-self") == []
