"""MLflow: one run per flow run, the model logged with signature, registered with lineage.

Every call names its run id explicitly (no reliance on a thread's active run), so stages can run
in separate Prefect tasks. The champion alias is never set here: that is a person's decision.
"""

from __future__ import annotations

import json
import logging
import math
import os
import shutil
import tempfile
import time
import warnings
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from importlib.metadata import version as installed_version
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd
from mlflow import MlflowClient
from mlflow.data.dataset import Dataset
from mlflow.entities import DatasetInput, InputTag, Metric, Run, RunStatus
from mlflow.entities.model_registry import ModelVersion, RegisteredModel
from mlflow.exceptions import MlflowException
from mlflow.models import infer_signature
from mlflow.utils.mlflow_tags import MLFLOW_USER

import evenflow
from evenflow.config.settings import EvenflowSettings
from evenflow.errors import EvenflowError, ModelNotFound
from evenflow.layout import (
    BOOSTER_ARTIFACT,
    CANDIDATE,
    CHAMPION,
    EXPERIMENT_KIND,
    EXPERIMENT_KIND_TAG,
    GROUPS,
    MODEL_ARTIFACT,
    NOTE_TAG,
    SCHEMA_ARTIFACT,
)
from evenflow.records import ModelVersionRef, ShardManifest, TrainingResult
from evenflow.serving import EvenflowModel, write_model_code, write_schema

logger = logging.getLogger(__name__)

DESCRIPTION_LIMIT = 5000
"""Characters a model version's description holds (``model_versions.description`` is VARCHAR(5000))."""
_PIP_REQUIREMENTS = ("mlflow", "xgboost", "pandas", "numpy", "pydantic", "pyarrow")
_METRICS_PER_BATCH = 1000  # MLflow's limit of metrics in one log_batch call


def client_for(settings: EvenflowSettings) -> MlflowClient:
    """Point MLflow at the configured tracking store (SQLite under mlruns/ by default)."""
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    # One progress bar per small file (logging a model downloads a few) is noise in a terminal.
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    if settings.tracking_uri.startswith("sqlite:///"):
        Path(settings.tracking_uri.removeprefix("sqlite:///")).parent.mkdir(
            parents=True, exist_ok=True
        )
    mlflow.set_tracking_uri(settings.tracking_uri)
    mlflow.set_registry_uri(settings.tracking_uri)
    return MlflowClient(tracking_uri=settings.tracking_uri, registry_uri=settings.tracking_uri)


def version_for_alias(client: MlflowClient, name: str, alias: str) -> ModelVersion:
    """The version behind ``name@alias``: one look-up and one error for every command.

    Raises:
        ModelNotFound: the model does not exist or no version carries the alias.
    """
    found = find_alias(client, name, alias)
    if found is None:
        raise ModelNotFound(
            f"model {name!r} has no version with alias {alias!r}; promote one first: "
            f"evenflow promote {name} VERSION --reviewer NAME --note TEXT"
        )
    return found


# What MLflow answers for an unknown model (RESOURCE_DOES_NOT_EXIST) and an unknown alias of a
# known model (INVALID_PARAMETER_VALUE), on SQL and REST stores alike.
_NOT_FOUND_CODES = frozenset({"RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"})


def find_alias(client: MlflowClient, name: str, alias: str) -> ModelVersion | None:
    """The version behind ``name@alias``, or None when there is none (a champion is optional).

    Only "no such model" and "no such alias" mean none: any other failure (a tracking server that
    does not answer, a broken store) is raised, never read as "no champion".
    """
    try:
        return client.get_model_version_by_alias(name, alias)
    except MlflowException as error:
        if error.error_code in _NOT_FOUND_CODES:
            return None
        raise


def registered_model(client: MlflowClient, name: str) -> RegisteredModel:
    """The registered model ``name`` with its tags.

    Raises:
        EvenflowError: there is no such model.
    """
    try:
        return client.get_registered_model(name)
    except MlflowException as error:
        raise EvenflowError(f"no registered model named {name!r}") from error


def model_version(client: MlflowClient, name: str, version: str) -> ModelVersion:
    """Version ``version`` of ``name``.

    Raises:
        EvenflowError: the model has no such version.
    """
    try:
        return client.get_model_version(name, version)
    except MlflowException as error:
        raise EvenflowError(f"{name} has no version {version!r}") from error


def tag_version(client: MlflowClient, name: str, version: str, tags: Mapping[str, str]) -> None:
    """Set tags on a model version."""
    for key, value in tags.items():
        client.set_model_version_tag(name, version, key, value)


def download_json(client: MlflowClient, run_id: str, artifact_path: str, scratch: Path) -> Any:
    """A JSON artifact of a run, parsed (downloaded into ``scratch``)."""
    local = client.download_artifacts(run_id, artifact_path, str(scratch))
    return json.loads(Path(local).read_text(encoding="utf-8"))


def download_artifacts(
    client: MlflowClient, run_id: str, paths: Iterable[str], scratch: Path
) -> dict[str, Path]:
    """Artifacts of a run downloaded into ``scratch``: artifact path -> local file."""
    return {p: Path(client.download_artifacts(run_id, p, str(scratch))) for p in paths}


def start_run(
    settings: EvenflowSettings, experiment: str, run_name: str, tags: Mapping[str, str]
) -> str:
    """Create the run of a flow run in the dataset's experiment and return its id.

    The experiment carries MLflow's experiment-kind tag for model development, new or old, so
    the MLflow 3 UI opens it on its runs rather than on the GenAI overview.
    """
    client = client_for(settings)
    found = client.get_experiment_by_name(experiment)
    if found is None:
        experiment_id = client.create_experiment(
            experiment,
            artifact_location=artifact_location(settings.artifact_root, experiment),
            tags={EXPERIMENT_KIND_TAG: EXPERIMENT_KIND},
        )
    else:
        experiment_id = found.experiment_id
        if found.tags.get(EXPERIMENT_KIND_TAG) != EXPERIMENT_KIND:
            client.set_experiment_tag(experiment_id, EXPERIMENT_KIND_TAG, EXPERIMENT_KIND)
    # Who launched it: separation of duties compares the reviewer with this name.
    run = client.create_run(
        experiment_id, run_name=run_name, tags={MLFLOW_USER: settings.user, **tags}
    )
    return str(run.info.run_id)


def artifact_location(artifact_root: str, experiment: str) -> str | None:
    """Where a new experiment keeps its artifacts: under the root, or the server's choice.

    ``file:///p/mlruns/artifacts`` gives ``file:///p/mlruns/artifacts/adult``;
    ``mlflow-artifacts:/`` (proxied by the tracking server) gives ``mlflow-artifacts:/adult``;
    an empty root (a tracking server with no root set) leaves it to the server.
    """
    if not artifact_root:
        return None
    return f"{artifact_root.rstrip('/')}/{experiment}"


def flatten(mapping: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """Flatten nested parameters to dotted keys with JSON values, as MLflow params want."""
    flat: dict[str, str] = {}
    for key, value in mapping.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten(value, f"{name}."))
        else:
            flat[name] = value if isinstance(value, str) else json.dumps(value, default=str)
    return flat


def log_params(settings: EvenflowSettings, run_id: str, params: Mapping[str, Any]) -> None:
    """Log (nested) parameters under dotted names."""
    client = client_for(settings)
    for key, value in flatten(params).items():
        client.log_param(run_id, key, value)


def log_metrics(settings: EvenflowSettings, run_id: str, metrics: Mapping[str, float]) -> None:
    """Log finite metric values in batches; NaN (an undefined metric) is skipped, not faked."""
    client = client_for(settings)
    now = int(time.time() * 1000)
    logged = [
        Metric(key, float(value), now, 0) for key, value in metrics.items() if not math.isnan(value)
    ]
    for start in range(0, len(logged), _METRICS_PER_BATCH):
        client.log_batch(run_id, metrics=logged[start : start + _METRICS_PER_BATCH])


def set_tags(settings: EvenflowSettings, run_id: str, tags: Mapping[str, str]) -> None:
    """Tag the run."""
    client = client_for(settings)
    for key, value in tags.items():
        client.set_tag(run_id, key, value)


def log_dataset(
    settings: EvenflowSettings,
    run_id: str,
    dataset: Dataset,
    *,
    context: str,
    tags: Mapping[str, str],
) -> None:
    """Log a dataset as the run's input (the UI's "Datasets used"), metadata only."""
    input_tags = [InputTag(key="mlflow.data.context", value=context)]
    input_tags += [InputTag(key=k, value=v) for k, v in tags.items()]
    entity = DatasetInput(dataset=dataset._to_mlflow_entity(), tags=input_tags)
    client_for(settings).log_inputs(run_id, datasets=[entity])


def describe_run(settings: EvenflowSettings, run_id: str, markdown: str) -> None:
    """Set the run's description (``mlflow.note.content``), rendered as Markdown in the MLflow UI."""
    client_for(settings).set_tag(run_id, NOTE_TAG, markdown)


def experiment_id_of(settings: EvenflowSettings, run_id: str) -> str:
    """The experiment a run belongs to (links to a run's pages need it)."""
    return str(client_for(settings).get_run(run_id).info.experiment_id)


def log_artifact(
    settings: EvenflowSettings, run_id: str, local_path: Path, artifact_path: str | None = None
) -> None:
    """Log a file or a whole folder as run artifacts."""
    client = client_for(settings)
    if local_path.is_dir():
        client.log_artifacts(run_id, str(local_path), artifact_path)
    else:
        client.log_artifact(run_id, str(local_path), artifact_path)


def log_json(settings: EvenflowSettings, run_id: str, payload: Any, artifact_file: str) -> None:
    """Log a JSON document as a run artifact."""
    client_for(settings).log_dict(run_id, payload, artifact_file)


def finish_run(settings: EvenflowSettings, run_id: str, *, failed: bool) -> None:
    """Close the run as FINISHED or FAILED."""
    status = RunStatus.to_string(RunStatus.FAILED if failed else RunStatus.FINISHED)
    client_for(settings).set_terminated(run_id, status=status)


def register_model(
    settings: EvenflowSettings,
    run_id: str,
    *,
    model_name: str,
    training: TrainingResult,
    manifest: ShardManifest,
    input_example: pd.DataFrame,
    threshold: float,
    threshold_policy: Path | None,
    tags: Mapping[str, str],
    candidate: bool,
) -> ModelVersionRef:
    """Log the pyfunc model with signature and example, register and tag it.

    The model is logged as code (:data:`evenflow.serving.MODEL_CODE`): MLflow runs that file to
    build the model when it loads it, so nothing is pickled and loading needs no cloudpickle.
    Only a model that passed its gates gets the ``candidate`` alias; one that failed is still
    registered, so the evidence of the failure stays with the model it describes.
    """
    client = client_for(settings)
    with tempfile.TemporaryDirectory() as scratch:
        schema = write_schema(
            manifest.features,
            threshold,
            Path(scratch) / "schema.json",
            threshold_policy,
            trainer=training.trainer,
        )
        model = EvenflowModel()
        model.load_context(
            _Context({BOOSTER_ARTIFACT: str(training.model_path), SCHEMA_ARTIFACT: str(schema)})
        )
        output_example = model.predict(None, input_example)
        with mlflow.start_run(run_id=run_id), warnings.catch_warnings(), _no_pip_version_warning():
            # Integer columns are declared as the data has them; a float batch is refused, not guessed.
            warnings.filterwarnings("ignore", message="Hint: Inferred schema contains integer")
            info = mlflow.pyfunc.log_model(
                name=MODEL_ARTIFACT,
                python_model=str(write_model_code(Path(scratch))),
                artifacts={
                    BOOSTER_ARTIFACT: str(training.model_path),
                    SCHEMA_ARTIFACT: str(schema),
                },
                code_paths=[str(code_only_package(Path(scratch)))],
                signature=infer_signature(input_example, output_example),
                input_example=input_example,
                pip_requirements=_pinned_requirements(training.trainer),
                registered_model_name=model_name,
            )
    version = str(info.registered_model_version)
    tag_version(client, model_name, version, tags)
    if candidate:
        client.set_registered_model_alias(model_name, CANDIDATE, version)
    logger.info("registered %s version %s (candidate: %s)", model_name, version, candidate)
    aliases = (CANDIDATE,) if candidate else ()
    return ModelVersionRef(name=model_name, version=version, run_id=run_id, aliases=aliases)


def code_only_package(scratch: Path) -> Path:
    """A copy of the ``evenflow`` package holding its Python sources only.

    The logged model needs the code that serves it, never data: the package also ships the
    built-in example (48,842 rows of personal data) and must not travel with every model.
    """
    target = scratch / "code" / "evenflow"

    def not_code(folder: str, names: list[str]) -> set[str]:
        return {n for n in names if not n.endswith(".py") and not (Path(folder) / n).is_dir()} | {
            n for n in names if n == "__pycache__"
        }

    shutil.copytree(Path(evenflow.__file__).parent, target, ignore=not_code)
    return target


def versions_tagged(
    settings: EvenflowSettings, model_name: str, tags: Mapping[str, str]
) -> list[tuple[ModelVersionRef, dict[str, str]]]:
    """Versions of ``model_name`` carrying every one of ``tags``, newest first, with all their tags."""
    clauses = [f"name = {_quoted(model_name)}"]
    clauses += [f"tags.`{key}` = {_quoted(value)}" for key, value in tags.items()]
    client = client_for(settings)
    found = client.search_model_versions(" AND ".join(clauses))
    # Search results carry no aliases: read each (few) version for them.
    full = [client.get_model_version(model_name, str(v.version)) for v in found]
    refs = [
        (
            ModelVersionRef(
                name=model_name,
                version=str(v.version),
                run_id=str(v.run_id),
                aliases=tuple(v.aliases or ()),
            ),
            dict(v.tags),
        )
        for v in full
    ]
    return sorted(refs, key=lambda ref: int(ref[0].version), reverse=True)


def _quoted(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def champion_groups(settings: EvenflowSettings, model_name: str) -> list[dict[str, Any]] | None:
    """Per-group test metrics of the current champion, or None when there is no champion."""
    client = client_for(settings)
    champion = find_alias(client, model_name, CHAMPION)
    if champion is None:
        return None
    with tempfile.TemporaryDirectory() as scratch:
        groups: list[dict[str, Any]] = download_json(
            client, str(champion.run_id), GROUPS, Path(scratch)
        )
    return groups


def champion_run(settings: EvenflowSettings, model_name: str) -> tuple[str, Run] | None:
    """The champion's version and its training run, or None when there is no champion."""
    client = client_for(settings)
    champion = find_alias(client, model_name, CHAMPION)
    if champion is None:
        return None
    return str(champion.version), client.get_run(str(champion.run_id))


class _WithoutPipVersion(logging.Filter):
    """Drops MLflow's "Failed to resolve installed pip version" (a uv environment has no pip)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("Failed to resolve installed pip version")


@contextmanager
def _no_pip_version_warning() -> Iterator[None]:
    """Keep that one line off the console while a model is logged.

    conda.yaml then lists pip unpinned, which is right where pip is not installed; the pinned
    requirements are what serve the model.
    """
    logger = logging.getLogger("mlflow.utils.environment")
    quiet = _WithoutPipVersion()
    logger.addFilter(quiet)
    try:
        yield
    finally:
        logger.removeFilter(quiet)


class _Context:
    """The slice of MLflow's PythonModelContext that ``EvenflowModel.load_context`` reads."""

    def __init__(self, artifacts: dict[str, str]) -> None:
        self.artifacts = artifacts


def _pinned_requirements(trainer: str) -> list[str]:
    names = (*_PIP_REQUIREMENTS, "lightgbm") if trainer == "lightgbm" else _PIP_REQUIREMENTS
    return [f"{name}=={installed_version(name)}" for name in names]


def describe_version(settings: EvenflowSettings, model_name: str, version: str, text: str) -> None:
    """Set the version's description (shown in the MLflow UI)."""
    client_for(settings).update_model_version(model_name, version, description=text)
