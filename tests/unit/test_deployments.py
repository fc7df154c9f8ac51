"""infra/prefect.yaml loads: entrypoints import, parameters fit each flow, cron strings are valid."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml
from prefect._vendor.croniter import croniter
from typer.testing import CliRunner

from evenflow.cli.main import app
from evenflow.config.run import BUILTIN_EXAMPLE, RunParams, builtin_example
from evenflow.errors import ConfigError
from flows import serve as deployments
from tests.conftest import REPO_ROOT


@pytest.fixture(scope="module")
def served() -> dict[str, deployments.ServedDeployment]:
    return {d.spec.name: d for d in deployments.load_deployments(deployments.DEFAULT_FILE)}


def _cadence(cron: str) -> timedelta:
    dates = croniter(cron, datetime(2026, 1, 1, tzinfo=UTC))
    first, second = dates.get_next(datetime), dates.get_next(datetime)
    return second - first


def test_infra_deployments_load_with_their_schedules(
    served: dict[str, deployments.ServedDeployment],
) -> None:
    assert deployments.DEFAULT_FILE == REPO_ROOT / "infra" / "prefect.yaml"
    assert set(served) == {"train-weekly", "monitor-daily", "score-on-demand"}
    flows = {name: d.flow.name for name, d in served.items()}
    assert flows == {
        "train-weekly": "train-and-register",
        "monitor-daily": "monitor",
        "score-on-demand": "score",
    }
    runners = {name: d.to_runner() for name, d in served.items()}
    assert runners["score-on-demand"].schedules == []
    assert runners["score-on-demand"].entrypoint == "flows.score.score_batch"
    for name, cadence in (("train-weekly", timedelta(days=7)), ("monitor-daily", timedelta(1))):
        [schedule] = runners[name].schedules
        assert schedule.active
        assert _cadence(schedule.schedule.cron) == cadence, name
        assert schedule.schedule.timezone == "UTC"


def test_training_deployment_trains_the_builtin_example_as_its_yaml_says(
    served: dict[str, deployments.ServedDeployment],
) -> None:
    given = RunParams.model_validate(served["train-weekly"].spec.parameters["params"])

    assert (REPO_ROOT / given.dataset.path).resolve() == BUILTIN_EXAMPLE.parent / "adult.csv.gz"
    example = builtin_example()
    assert given.model_copy(update={"dataset": example.dataset}) == example
    assert given.dataset.model_copy(update={"path": example.dataset.path}) == example.dataset
    for name in ("monitor-daily", "score-on-demand"):
        data = served[name].spec.parameters["params"]["data"]
        assert (REPO_ROOT / data).resolve() == BUILTIN_EXAMPLE.parent / "adult.csv.gz"


def _write(tmp_path: Path, entry: dict[str, object]) -> Path:
    path = tmp_path / "prefect.yaml"
    document = {"name": "t", "prefect-version": "3.8.8", "deployments": [entry]}
    path.write_text(yaml.safe_dump(document), encoding="utf-8")
    return path


SCORE = {"name": "s", "entrypoint": "flows/score.py:score_batch"}


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        (
            {**SCORE, "schedules": [{"cron": "0 3 * * 8"}], "parameters": {}},
            r"deployment 's'\.schedules\.0\.cron: .*Invalid cron string",
        ),
        ({**SCORE, "shedules": []}, r"deployment 's'\.shedules: unknown key"),
        (
            {**SCORE, "entrypoint": "flows/nope.py:score_batch"},
            r"entrypoint 'flows/nope\.py:score_batch': no such file",
        ),
        (
            {**SCORE, "entrypoint": "flows/score.py:ScoreParams"},
            r"flows\.score\.ScoreParams is not a Prefect flow",
        ),
        ({**SCORE, "parameters": {"param": {}}}, r"unknown parameter\(s\) \['param'\]"),
        ({**SCORE, "parameters": {}}, r"missing parameter\(s\) \['params'\]"),
        (
            {**SCORE, "parameters": {"params": {"data": "a.csv", "out": "a.xlsx"}}},
            r"deployment 's' \(flows/score\.py:score_batch\): parameters do not fit the flow",
        ),
    ],
)
def test_a_bad_deployment_is_refused_naming_what_is_wrong(
    tmp_path: Path, entry: dict[str, object], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        deployments.load_deployments(_write(tmp_path, entry))


def test_serve_refuses_unknown_names_before_serving_anything(tmp_path: Path) -> None:
    path = _write(tmp_path, {**SCORE, "parameters": {"params": {"data": "a.csv", "out": "o.csv"}}})

    refused = CliRunner().invoke(app, ["serve", "--file", str(path), "--only", "s,train"])

    assert refused.exit_code == 2
    assert "no deployment named ['train']; the file has ['s']" in refused.output
