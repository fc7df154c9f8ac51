"""``evenflow run`` for real: the console holds the stage lines, real warnings and commands that work.

The run is a subprocess in a git-initialised scratch project (DVC's "git add data.dvc" hint appears
only under git), started from the project root as a user would. The closing commands are then run
as pasted into a fresh shell: a bare PATH, none of the test's EVENFLOW_* settings.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.flows.conftest import run_config

pytestmark = pytest.mark.slow

BIN = Path(sys.executable).parent
STAGES = ("validate", "shard", "train", "evaluate", "explain", "gate", "register")
#: Lines the console never shows without --verbose: Prefect's task states, DVC's git hints and
#: banner, MLflow's own prints and pickling warning, Dask's shutdown of a healthy cluster.
NOISE = (
    "Finished in state",
    "Beginning flow run",
    "temporary server",
    "git add",
    "Initialized DVC",
    "Successfully registered model",
    "Created version",
    "cloudpickle",
    "killing",
    "Closing worker",
)
#: 14 stage lines, 5 cache lines (the cached stages), 1 "registered" line and 4 of "next:" make 24;
#: up to 8 more are warnings (the starter contract's, and a library's, each shown once). Before
#: the console was quieted the same run printed 61 lines, 75 under git with Dask warnings.
MAX_LINES = 32
COMMAND_LINE = re.compile(r"^  (?P<command>\S.*?)\s+# ")


def test_a_run_shows_stages_warnings_and_closing_commands_that_work_when_pasted(
    project: Path, adult_sample_path: Path, tmp_path: Path
) -> None:
    subprocess.run(["git", "init", "-q", str(project)], check=True)
    config = run_config(tmp_path, adult_sample_path)
    run = subprocess.run(
        [str(BIN / "evenflow"), "run", "--config", str(config)],
        cwd=project,
        env=os.environ.copy(),
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    output = run.stdout + run.stderr
    lines = output.splitlines()
    assert run.returncode == 0, output

    for stage in STAGES:
        assert any(f"▶ {stage}: " in line for line in lines), f"no ▶ {stage} line:\n{output}"
        assert any(f"✔ {stage}: " in line for line in lines), f"no ✔ {stage} line:\n{output}"
    for noise in NOISE:
        assert noise.lower() not in output.lower(), f"{noise!r} on the console:\n{output}"
    assert len(lines) <= MAX_LINES, f"{len(lines)} console lines:\n{output}"

    printed = run.stdout.splitlines()  # the closing lines; the log lines go to stderr
    closing = printed[printed.index("next:") + 1 :]
    commands = [match["command"] for line in closing if (match := COMMAND_LINE.match(line))]
    assert len(commands) == len(closing) == 3, output
    fresh_shell = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "LANG": "C.UTF-8"}
    for command in commands:
        shown = _paste(f"{command} --help", project, fresh_shell)
        assert shown.returncode == 0 and "Usage:" in shown.stdout, (command, shown.stderr)
    [review] = [command for command in commands if " review " in command]
    reviewed = _paste(review, project, fresh_shell)
    assert reviewed.returncode == 0, reviewed.stderr
    assert "Evidence sha256:" in reviewed.stdout, "the pasted command found another store"


def _paste(command: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Run a line as a user pasting it into bash at ``cwd``."""
    return subprocess.run(
        ["bash", "-c", command],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
