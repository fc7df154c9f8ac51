"""The store facade's alias look-up: one answer for "none", never for "the store did not answer"."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from evenflow.errors import ModelNotFound
from evenflow.registry import store


def _sqlite_client(tmp_path: Path) -> MlflowClient:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def test_an_unknown_model_or_alias_is_none_and_the_strict_look_up_names_it(tmp_path: Path) -> None:
    client = _sqlite_client(tmp_path)
    client.create_registered_model("adult")

    assert store.find_alias(client, "nope", "champion") is None
    assert store.find_alias(client, "adult", "champion") is None
    with pytest.raises(ModelNotFound, match="model 'adult' has no version with alias 'champion'"):
        store.version_for_alias(client, "adult", "champion")


def test_a_store_that_does_not_answer_is_an_error_not_no_champion(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "2")
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    client = MlflowClient(tracking_uri=url, registry_uri=url)

    with pytest.raises(MlflowException):
        store.find_alias(client, "adult", "champion")
