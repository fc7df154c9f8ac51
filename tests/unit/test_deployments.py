"""infra/prefect.yaml loads: entrypoints import, parameters fit each flow, cron strings are valid,
and `prefect deploy` finds the work pool and the project root for every deployment."""

from __future__ import annotations

import functools
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import anyio
import pytest
import yaml
from prefect._vendor.croniter import croniter
from prefect.cli.deploy._models import PrefectYamlModel
from prefect.deployments.steps.utility import run_shell_script
from prefect.utilities.templating import apply_values
from typer.testing import CliRunner

from evenflow.cli.main import app
from evenflow.config.run import BUILTIN_EXAMPLE, RunParams, builtin_example
from evenflow.errors import ConfigError
from evenflow.ops.deployments import WorkPoolSpec, read_project
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
    assert set(served) == {"train-weekly", "monitor-daily", "score-on-demand", "review-on-demand"}
    flows = {name: d.flow.name for name, d in served.items()}
    assert flows == {
        "train-weekly": "train-and-register",
        "monitor-daily": "monitor",
        "score-on-demand": "score",
        "review-on-demand": "review-candidate",
    }
    runners = {name: d.to_runner() for name, d in served.items()}
    assert runners["score-on-demand"].schedules == []
    assert runners["score-on-demand"].entrypoint == "flows.score.score_batch"
    assert runners["review-on-demand"].schedules == []
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


POOL = WorkPoolSpec(name="evenflow-process", work_queue_name="default")
RUN_SHELL_SCRIPT = "prefect.deployments.steps.run_shell_script"
SET_WORKING_DIRECTORY = "prefect.deployments.steps.set_working_directory"


def test_prefect_deploy_puts_every_deployment_on_the_process_pool() -> None:
    raw = yaml.safe_load(deployments.DEFAULT_FILE.read_text(encoding="utf-8"))
    project = read_project(deployments.DEFAULT_FILE)

    # prefect deploy reads the file with this model (private) and skips it on any error.
    parsed = PrefectYamlModel.model_validate(raw)
    assert [d.work_pool.name if d.work_pool else None for d in parsed.deployments] == [
        POOL.name
    ] * len(project.deployments)
    assert {d.name: d.work_pool for d in project.deployments} == {
        d.name: POOL for d in project.deployments
    }


def test_a_worker_run_starts_in_the_folder_prefect_deploy_ran_in(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = read_project(deployments.DEFAULT_FILE)
    [build_step] = project.build
    step: dict[str, Any] = dict(build_step[RUN_SHELL_SCRIPT])
    step_id = step.pop("id")
    monkeypatch.chdir(tmp_path)

    # What prefect deploy does: run the build step, then fill the pull step with its output.
    output = anyio.run(functools.partial(run_shell_script, **step))
    pull = apply_values(project.pull, {step_id: output})

    assert pull == [{SET_WORKING_DIRECTORY: {"directory": str(tmp_path.resolve())}}]


@pytest.mark.parametrize("page", [deployments.DEFAULT_FILE, REPO_ROOT / "docs/how-to/schedules.md"])
def test_the_documented_worker_commands_name_the_pool_of_the_file(page: Path) -> None:
    text = page.read_text(encoding="utf-8")

    assert f"prefect work-pool create {POOL.name} --type process" in text
    assert "prefect deploy --prefect-file infra/prefect.yaml --all" in text
    assert f"prefect worker start --pool {POOL.name}" in text


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
        ({**SCORE, "work_pool": {"nmae": "p"}}, r"deployment 's'\.work_pool\.name: Field required"),
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
