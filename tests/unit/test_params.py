"""Run configuration: YAML, overrides, unknown keys named, settings from the environment."""

from __future__ import annotations

from pathlib import Path

import pytest

from evenflow.config.run import RunParams, builtin_example
from evenflow.config.settings import EvenflowSettings
from evenflow.errors import ConfigError


def test_builtin_example_is_adult_with_its_own_split() -> None:
    params = builtin_example()
    assert params.dataset.name == "adult"
    assert params.dataset.target == "income"
    assert params.dataset.positive_label == ">50K"
    assert params.dataset.sensitive == ("sex", "race")
    assert params.dataset.split_column == "split"
    assert params.dataset.path.is_file()


def test_yaml_with_unknown_key_names_the_key(tmp_path: Path) -> None:
    config = tmp_path / "run.yaml"
    config.write_text(
        "dataset: {name: d, path: d.csv, target: y, positive_label: '1', sensitive: [s]}\n"
        "model: {max_depht: 3}\n"
    )
    with pytest.raises(ConfigError, match=r"unknown key 'model\.max_depht'"):
        RunParams.from_yaml(config)


def test_yaml_paths_resolve_against_the_yaml_folder(tmp_path: Path) -> None:
    config = tmp_path / "conf" / "run.yaml"
    config.parent.mkdir()
    config.write_text(
        "dataset: {name: d, path: ../d.csv, target: y, positive_label: '1', sensitive: s}\n"
    )
    params = RunParams.from_yaml(config)
    assert params.dataset.path == (tmp_path / "d.csv").resolve()
    assert params.dataset.sensitive == ("s",)


def test_overrides_apply_and_are_validated() -> None:
    params = builtin_example().with_overrides(
        {"model": {"max_depth": 3}, "shards": {"n_shards": 8}}
    )
    assert (params.model.max_depth, params.shards.n_shards) == (3, 8)
    with pytest.raises(ConfigError, match=r"'shards\.n_shards'"):
        builtin_example().with_overrides({"shards": {"n_shards": 0}})
    with pytest.raises(
        ConfigError, match=r"shards\.n_shards \(1\) is below cluster\.n_workers \(2\)"
    ):
        builtin_example().with_overrides({"shards": {"n_shards": 1}})


def test_params_hash_ignores_the_data_path_but_not_parameters(tmp_path: Path) -> None:
    base = builtin_example()
    moved = base.with_overrides({"dataset": {"path": str(tmp_path / "elsewhere.csv")}})
    deeper = base.with_overrides({"model": {"max_depth": 7}})
    assert moved.params_hash() == base.params_hash()
    assert deeper.params_hash() != base.params_hash()


def test_target_cannot_be_sensitive() -> None:
    with pytest.raises(ConfigError, match="cannot also be a sensitive column"):
        RunParams.from_mapping(
            {
                "dataset": {
                    "name": "d",
                    "path": "d.csv",
                    "target": "y",
                    "positive_label": "1",
                    "sensitive": "y",
                }
            }
        )


def test_settings_default_under_the_project_and_read_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EVENFLOW_PROJECT_ROOT", str(tmp_path))
    monkeypatch.setenv("EVENFLOW_DASK_ADDRESS", "tcp://scheduler:8786")
    settings = EvenflowSettings()
    assert settings.tracking_uri == f"sqlite:///{tmp_path.resolve()}/mlruns/mlflow.db"
    assert settings.data_root == tmp_path.resolve() / "data"
    assert settings.dask_address == "tcp://scheduler:8786"
    monkeypatch.setenv("EVENFLOW_TRACKING_URI", "http://mlflow:5000")
    assert EvenflowSettings().tracking_uri == "http://mlflow:5000"


def test_sections_added_since_are_left_out_of_the_record_at_their_defaults() -> None:
    """Older commits refuse unknown keys (``extra="forbid"``): ``reproduce`` must load the record."""
    params = builtin_example()
    recorded = params.recorded()
    assert "reasons" not in recorded
    assert "impact_ratio" not in recorded["fairness"]
    assert "min_impact_ratio" not in recorded["gates"]
    gated = params.model_copy(
        update={"gates": params.gates.model_copy(update={"min_impact_ratio": {"sex": 0.8}})}
    )
    assert gated.recorded()["gates"]["min_impact_ratio"] == {"sex": 0.8}
    assert gated.params_hash() != params.params_hash()
    assert RunParams.from_mapping(recorded).params_hash() == params.params_hash()
