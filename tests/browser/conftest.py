"""The review surfaces as a person sees them: real servers, one trained model, headless Chromium.

Once per session: a Prefect server (``prefect server start``, SQLite in a temporary folder, its UI
on) and an MLflow server on a scratch project's SQLite store are started as subprocesses on free
ports; ``evenflow run`` trains and registers one model on the Adult sample against both, exactly
as a user would. The browser is Debian's Chromium (``/usr/bin/chromium``, the ``chromium``
package, which ``.ci/run`` installs) driven by Playwright; no ``playwright install``. A machine
without it fails these tests with what to install: CI has it, so a skip would hide a regression.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.error import URLError
from urllib.parse import urlparse
from urllib.request import url2pathname, urlopen

import pytest
import yaml
from mlflow import MlflowClient
from playwright.sync_api import (
    Browser,
    BrowserContext,
    Page,
    Route,
    ViewportSize,
    sync_playwright,
)

from evenflow import layout
from tests.conftest import REPO_ROOT, sample_params
from tests.integration.prefect_processes import BIN, free_port, run_to_end

CHROMIUM = Path(os.environ.get("EVENFLOW_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]
VIEWPORT = ViewportSize(width=1280, height=900)
SERVER_START_TIMEOUT_S = 180
RUN_TIMEOUT_S = 420
LOCAL_HOSTS = {"127.0.0.1", "localhost"}
LOCAL_SCHEMES = {"file", "data", "blob", "about", "chrome", "chrome-extension"}


@dataclass(frozen=True)
class Server:
    """A started server process: where it answers and where its output goes."""

    url: str
    process: subprocess.Popen[bytes]
    log: Path


@dataclass(frozen=True)
class TrainedModel:
    """The model version the session registered, and where its evidence lives."""

    name: str
    version: str
    run_id: str
    flow_run_id: str
    artifact_dir: Path
    """The run's artifact folder on disk (the SQLite store's ``file://`` artifact root)."""
    console: str
    """What ``evenflow run`` printed (stdout and stderr)."""


@dataclass
class OfflineGuard:
    """Every request a page tried outside this machine, each aborted."""

    aborted: list[str] = field(default_factory=list)

    def route(self, route: Route) -> None:
        """Let local requests through; abort and record any other."""
        url = route.request.url
        parts = urlparse(url)
        if parts.scheme in LOCAL_SCHEMES or parts.hostname in LOCAL_HOSTS:
            route.continue_()
            return
        self.aborted.append(url)
        route.abort("internetdisconnected")


def _wait_until_healthy(server: Server, health_url: str, what: str) -> None:
    deadline = time.monotonic() + SERVER_START_TIMEOUT_S
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            break
        try:
            with urlopen(health_url, timeout=2):
                return
        except (URLError, OSError):
            time.sleep(0.5)
    tail = server.log.read_text(errors="replace")[-3000:]
    pytest.fail(f"{what} did not answer at {health_url} within {SERVER_START_TIMEOUT_S}s:\n{tail}")


def _start(command: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env)


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def _base_env(home: Path) -> dict[str, str]:
    """This environment with the venv's commands first and Prefect's home in the test folder."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "EVENFLOW_"))}
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    env["PREFECT_HOME"] = str(home)
    env["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
    return env


@pytest.fixture(scope="package")
def browser_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The session's folder: project, server state, logs and screenshots."""
    return tmp_path_factory.mktemp("browser")


@pytest.fixture(scope="package")
def project_root(browser_root: Path) -> Path:
    """A scratch project whose code is this checkout."""
    root = browser_root / "project"
    (root / "mlruns" / "artifacts").mkdir(parents=True)
    return root


def _launch_prefect(root: Path) -> Server:
    """``prefect server start`` with its UI, on a free port and a SQLite database of its own."""
    home = root / "prefect-home"
    url = f"http://127.0.0.1:{free_port()}"
    env = _base_env(home)
    env |= {
        "PREFECT_API_DATABASE_CONNECTION_URL": f"sqlite+aiosqlite:///{home / 'prefect.db'}",
        "PREFECT_UI_API_URL": f"{url}/api",
        "PREFECT_SERVER_UI_SHOW_PROMOTIONAL_CONTENT": "false",
    }
    command = [str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1"]
    command += ["--port", url.rsplit(":", 1)[1], "--no-scheduler", "--no-late-runs"]
    log = root / "prefect-server.log"
    return Server(url, _start(command, env, log), log)


def _launch_mlflow(root: Path, project: Path) -> Server:
    """``mlflow server`` on the project's own store: the UI a reviewer opens after a local run."""
    url = f"http://127.0.0.1:{free_port()}"
    command = [
        str(BIN / "mlflow"),
        "server",
        "--host",
        "127.0.0.1",
        "--port",
        url.rsplit(":", 1)[1],
    ]
    command += ["--backend-store-uri", f"sqlite:///{project / 'mlruns' / 'mlflow.db'}"]
    command += ["--default-artifact-root", (project / "mlruns" / "artifacts").as_uri()]
    command += ["--workers", "1"]
    log = root / "mlflow-server.log"
    return Server(url, _start(command, _base_env(root / "mlflow-home"), log), log)


@pytest.fixture(scope="package")
def servers(browser_root: Path, project_root: Path) -> Iterator[tuple[Server, Server]]:
    """The Prefect and MLflow servers, started side by side (each takes seconds to come up)."""
    started: list[Server] = []
    try:
        started.append(_launch_prefect(browser_root))
        started.append(_launch_mlflow(browser_root, project_root))
        prefect, mlflow = started
        _wait_until_healthy(prefect, f"{prefect.url}/api/health", "the Prefect server")
        _wait_until_healthy(mlflow, f"{mlflow.url}/health", "the MLflow server")
        yield prefect, mlflow
    finally:
        for server in started:
            _stop(server.process)


@pytest.fixture(scope="package")
def prefect_server(servers: tuple[Server, Server]) -> Server:
    """The session's Prefect server (API and UI)."""
    return servers[0]


@pytest.fixture(scope="package")
def mlflow_server(servers: tuple[Server, Server]) -> Server:
    """The session's MLflow server, on the store ``evenflow run`` writes."""
    return servers[1]


@pytest.fixture(scope="package")
def trained_model(
    browser_root: Path,
    project_root: Path,
    adult_sample_path: Path,
    prefect_server: Server,
    mlflow_server: Server,
) -> TrainedModel:
    """``evenflow run --config run.yaml`` on the Adult sample, against the Prefect server."""
    config = browser_root / "run.yaml"
    params = sample_params(adult_sample_path)
    config.write_text(yaml.safe_dump(params.model_dump(mode="json")), encoding="utf-8")
    env = _base_env(browser_root / "prefect-client-home")
    env |= {
        "PREFECT_API_URL": f"{prefect_server.url}/api",
        "EVENFLOW_PROJECT_ROOT": str(project_root),
        "EVENFLOW_CODE_ROOT": str(REPO_ROOT),
        "EVENFLOW_DVC_REMOTE": str(browser_root / "dvc-remote"),
    }
    command = [str(BIN / "evenflow"), "run", "--config", str(config)]
    console = run_to_end(command, env, project_root, RUN_TIMEOUT_S)
    store = f"sqlite:///{project_root / 'mlruns' / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=store, registry_uri=store)
    name = params.dataset.name
    version = client.get_model_version_by_alias(name, "candidate")
    assert version.run_id, f"{name} version {version.version} names no run"
    run = client.get_run(version.run_id)
    return TrainedModel(
        name=name,
        version=str(version.version),
        run_id=version.run_id,
        flow_run_id=run.data.tags[layout.FLOW_RUN_ID_TAG],
        artifact_dir=Path(url2pathname(urlparse(run.info.artifact_uri).path)),
        console=console,
    )


@pytest.fixture(scope="package")
def browser() -> Iterator[Browser]:
    """Headless Debian Chromium; its absence fails the test with what to install."""
    if not CHROMIUM.exists():
        pytest.fail(
            f"no Chromium at {CHROMIUM}: the browser tests need Debian's chromium package "
            "(`make chromium`, or `apt-get install -y --no-install-recommends chromium`; CI does) or "
            "EVENFLOW_CHROMIUM pointing at a Chromium binary"
        )
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture
def offline() -> OfflineGuard:
    """The requests the test's page tried to send off this machine."""
    return OfflineGuard()


@pytest.fixture
def context(browser: Browser, offline: OfflineGuard) -> Iterator[BrowserContext]:
    """A fresh browser profile (1280x900) that reaches only this machine and local files."""
    ctx = browser.new_context(viewport=VIEWPORT)
    ctx.set_default_timeout(30_000)
    ctx.route("**/*", offline.route)
    yield ctx
    ctx.close()


@pytest.fixture
def page(context: BrowserContext) -> Page:
    """A page of the test's browser profile."""
    return context.new_page()


@pytest.fixture
def screenshot(tmp_path: Path) -> Callable[[Page, str], Path]:
    """Save the page's viewport as ``<name>.png`` in the test's folder (and EVENFLOW_SCREENSHOTS)."""

    def save(page: Page, name: str) -> Path:
        path = tmp_path / "screenshots" / f"{name}.png"
        page.screenshot(path=str(path))  # the 1280x900 viewport as scrolled
        extra = os.environ.get("EVENFLOW_SCREENSHOTS")
        if extra:
            Path(extra).mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, Path(extra) / path.name)
        return path

    return save
