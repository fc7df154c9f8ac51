"""The champion-alias guard and separation of duties, on a real MLflow registry (SQLite).

A ``champion`` alias set with ``MlflowClient`` (as the MLflow UI would) is refused by scoring's
resolve step and reported by ``audit-aliases`` until a promote through the ledger records it.
Versions are made cheaply by tests/unit/conftest.py's ``make`` (synthetic predictions, no model).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from mlflow.utils.mlflow_tags import MLFLOW_USER
from prefect.logging import disable_run_logger

from evenflow import layout
from evenflow.config.gates import SELF_REVIEW_ENV, ReviewPolicy
from evenflow.config.score import ScoreParams
from evenflow.config.settings import EvenflowSettings
from evenflow.errors import PromotionRefused
from evenflow.govern.alias_guard import UnrecordedChampion, audit_alias, refuse_unrecorded
from evenflow.govern.promotion import replaced_champion, self_review_refusal
from evenflow.registry import store as registry
from evenflow.usecases import champion
from evenflow.usecases.score import served_model_uri
from tasks.scoring import resolve_model
from tests.unit.conftest import NOW, TRAINER, ledger_entry, promote_reviewed, run_cli


@pytest.fixture
def trainer() -> str:
    """Every version here was trained by ``TRAINER`` (MLflow's user tag), not the reviewer."""
    return TRAINER


def _score_params(tmp_path: Path, model: str) -> ScoreParams:
    data = tmp_path / "rows.csv"
    data.write_text("age\n30\n", encoding="utf-8")
    return ScoreParams(data=data, out=tmp_path / "out.parquet", model=model)


# --- the decision (pure) --------------------------------------------------------------------


def test_audit_states() -> None:
    ledger = [ledger_entry(1, "promote", "1", None), ledger_entry(2, "promote", "2", "1")]
    assert audit_alias("m", "2", ledger).state == "ok"
    assert audit_alias("m", None, []).state == "no champion"
    outside = audit_alias("m", "3", ledger)
    assert (outside.state, outside.ledger_version, outside.ledger_seq) == (
        "set outside the ledger",
        "2",
        2,
    )
    assert not outside.resolved
    assert audit_alias("m", "1", []).state == "set outside the ledger"
    assert audit_alias("m", None, ledger).state == "removed outside the ledger"
    # A rollback sets the champion; a rejection does not.
    rolled = [*ledger, ledger_entry(3, "rollback", "1", "2"), ledger_entry(4, "reject", "2", "1")]
    assert audit_alias("m", "1", rolled).state == "ok"


def test_refusal_names_both_versions_and_the_way_out() -> None:
    outside = audit_alias("m", "3", [ledger_entry(1, "promote", "2", None)])
    with pytest.raises(UnrecordedChampion) as caught:
        refuse_unrecorded(outside)
    text = str(caught.value)
    assert "points at v3" in text and "the ledger says v2" in text
    assert "evenflow promote m 3 --reviewer NAME --note TEXT" in text
    assert "evenflow promote m 2 --reviewer NAME --note TEXT" in text
    refuse_unrecorded(outside, alias="candidate")  # only champion is a ledger decision


def test_self_review_refusal() -> None:
    refusal = self_review_refusal(" Tess ", "tess", allow_self_review=False, setting="X_ALLOW")
    assert refusal is not None
    assert "'Tess'" in refusal and "'tess'" in refusal and "X_ALLOW=1" in refusal
    assert self_review_refusal("ada", "tess", allow_self_review=False, setting="X") is None
    assert self_review_refusal("tess", "tess", allow_self_review=True, setting="X") is None
    assert self_review_refusal("tess", None, allow_self_review=False, setting="X") is None


def test_replaced_champion_never_points_at_itself() -> None:
    ledger = [ledger_entry(1, "promote", "1", None), ledger_entry(2, "promote", "2", "1")]
    assert replaced_champion(ledger, "2", "3") == "2"
    assert replaced_champion(ledger, "2", "2") == "1"  # re-recorded: it replaced v1 before


# --- on the registry ------------------------------------------------------------------------


def test_a_champion_set_outside_the_ledger_is_refused_and_reported(
    settings: EvenflowSettings, model: str, make: Any, tmp_path: Path
) -> None:
    first, second = make(seed=1), make(seed=2)
    promote_reviewed(settings, model, first.version, "first")
    client = registry.client_for(settings)
    client.set_registered_model_alias(model, layout.CHAMPION, second.version)  # as the UI would

    with disable_run_logger(), pytest.raises(UnrecordedChampion) as caught:
        resolve_model.fn(_score_params(tmp_path, model), settings)
    assert f"points at v{second.version}" in str(caught.value)
    assert f"evenflow promote {model} {second.version}" in str(caught.value)
    with pytest.raises(UnrecordedChampion):  # evenflow serve-model refuses it too
        served_model_uri(settings, f"{model}@champion")

    result = run_cli(settings, "audit-aliases", model)
    assert result.exit_code == 1, result.output
    assert (
        f"{model}: champion alias set outside the ledger: it points at v{second.version}, "
        f"the ledger says v{first.version} (entry 1)"
    ) in result.output
    assert "scoring and monitoring refuse them" in result.output

    champion.review(settings, model, second.version)
    promoted = run_cli(
        settings, "promote", model, second.version, "--reviewer", "ada", "--note", "recorded"
    )
    assert promoted.exit_code == 0, promoted.output
    assert (
        f"The champion alias pointed at v{second.version} outside the ledger; it now points at "
        f"v{second.version}, as ledger entry 2 records."
    ) in promoted.output
    entry = champion.history(settings, model)[-1]
    assert (entry.version, entry.previous_champion, entry.unrecorded_champion) == (
        second.version,
        first.version,
        second.version,
    )
    result = run_cli(settings, "audit-aliases", model)
    assert result.exit_code == 0, result.output
    assert f"{model}: ok, champion v{second.version} (ledger entry 2)" in result.output
    with disable_run_logger():
        assert resolve_model.fn(_score_params(tmp_path, model), settings).version == (
            second.version
        )
    rolled = champion.rollback(settings, model, "bob", "back", now=NOW)
    assert (rolled.version, champion.audit(settings, model).state) == (first.version, "ok")


def test_a_champion_without_any_ledger_entry_is_reported(
    settings: EvenflowSettings, model: str, make: Any
) -> None:
    made = make()
    registry.client_for(settings).set_registered_model_alias(model, layout.CHAMPION, made.version)
    audit = champion.audit(settings, model)
    assert (audit.state, audit.alias_version, audit.ledger_version) == (
        "set outside the ledger",
        made.version,
        None,
    )
    assert "the ledger records no champion" in audit.describe()
    # "Already the champion" does not stop recording it: the ledger never made it champion.
    entry = promote_reviewed(settings, model, made.version, "recorded")
    assert (entry.previous_champion, entry.unrecorded_champion) == (None, made.version)
    assert champion.audit(settings, model).state == "ok"


def test_audit_of_every_model_lists_each_by_name(
    settings: EvenflowSettings, model: str, make: Any
) -> None:
    made = make()
    promote_reviewed(settings, model, made.version, "ok")
    audits = champion.audit_aliases(settings)
    names = [audit.model for audit in audits]
    assert names == sorted(names)
    [ours] = [audit for audit in audits if audit.model == model]
    assert (ours.state, ours.alias_version, ours.ledger_seq) == ("ok", made.version, 1)


def test_the_launcher_may_not_approve_unless_policy_allows(
    settings: EvenflowSettings, model: str, make: Any
) -> None:
    made = make()
    champion.review(settings, model, made.version)

    with pytest.raises(PromotionRefused) as caught:
        champion.promote(settings, model, made.version, "Tess", "my own model")
    text = str(caught.value)
    assert "'Tess'" in text and f"'{TRAINER}'" in text and f"{SELF_REVIEW_ENV}=1" in text
    assert champion.history(settings, model) == []

    entry = champion.promote(
        settings,
        model,
        made.version,
        "Tess",
        "sole maintainer",
        policy=ReviewPolicy(allow_self_review=True),
    )
    assert entry.reviewer == "Tess"


def test_every_run_records_who_launched_it(settings: EvenflowSettings) -> None:
    launched_by = settings.model_copy(update={"user": "tess"})
    run_id = registry.start_run(launched_by, "launchers", "run", {})
    assert registry.client_for(settings).get_run(run_id).data.tags[MLFLOW_USER] == "tess"
