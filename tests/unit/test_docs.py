"""The documentation: a short README whose links work, and references that cover the code.

The site itself is built by ``make docs`` (``mkdocs build --strict``); these checks are the fast
part: the generated references name every field and command, without building the site.
"""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
import tomllib
from pathlib import Path
from types import ModuleType

import pytest
from pydantic import BaseModel

from evenflow.config.monitor import MonitorParams
from evenflow.config.run import RunParams
from evenflow.config.settings import EvenflowSettings

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
README_MAX_LINES = 150
MARKDOWN_LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


@pytest.fixture(scope="module")
def hook() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "docs_reference", DOCS / "_hooks" / "reference.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_readme_is_short() -> None:
    lines = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
    assert len(lines) <= README_MAX_LINES, f"README.md has {len(lines)} lines"


@pytest.mark.parametrize(
    "page", ["README.md", *sorted(str(p.relative_to(ROOT)) for p in DOCS.rglob("*.md"))]
)
def test_relative_links_point_to_files(page: str) -> None:
    source = ROOT / page
    broken = []
    for target in MARKDOWN_LINK.findall(source.read_text(encoding="utf-8")):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target) or target.startswith("#"):
            continue  # a URL or an anchor on the same page
        path = (source.parent / target.split("#", 1)[0]).resolve()
        if not path.exists():
            broken.append(target)
    assert not broken, f"{page} links to missing files: {broken}"


def test_every_page_is_in_the_nav() -> None:
    nav = (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    pages = [p.relative_to(DOCS).as_posix() for p in DOCS.rglob("*.md") if "_hooks" not in p.parts]
    assert pages
    assert [p for p in pages if f": {p}" not in nav] == []


def _dotted_fields(model: type[BaseModel], prefix: str = "") -> list[tuple[str, object]]:
    fields = []
    for name, field in model.model_fields.items():
        fields.append((f"{prefix}{name}", field))
        if isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel):
            fields.extend(_dotted_fields(field.annotation, f"{prefix}{name}."))
    return fields


@pytest.mark.parametrize(
    ("page", "model"),
    [("run-params.md", RunParams), ("monitor-params.md", MonitorParams)],
)
def test_parameter_reference_shows_every_field_with_its_bounds(
    hook: ModuleType, page: str, model: type[BaseModel]
) -> None:
    rendered = hook.expand((DOCS / "reference" / page).read_text(encoding="utf-8"))
    assert "<!-- params:" not in rendered
    rows = {
        line.split("|")[1].strip(): line for line in rendered.splitlines() if line.startswith("| `")
    }
    fields = _dotted_fields(model)
    assert len(fields) > len(model.model_fields)  # nested models are expanded
    for key, field in fields:
        assert f"`{key}`" in rows, f"{key} is missing from reference/{page}"
        for bound in ("ge", "gt", "le", "lt"):
            value = next((getattr(m, bound) for m in field.metadata if hasattr(m, bound)), None)
            if value is not None:
                assert str(value) in rows[f"`{key}`"], f"{key}: bound {bound}={value} not shown"


def test_settings_reference_names_every_variable(hook: ModuleType) -> None:
    rendered = hook.expand((DOCS / "reference" / "settings.md").read_text(encoding="utf-8"))
    for name in EvenflowSettings.model_fields:
        assert f"`EVENFLOW_{name.upper()}`" in rendered


def test_cli_reference_documents_the_installed_app_and_every_command(hook: ModuleType) -> None:
    (directive,) = hook.typer_directives(
        (DOCS / "reference" / "cli.md").read_text(encoding="utf-8")
    )
    script = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"][
        "scripts"
    ]
    assert script[directive["name"]] == f"{directive['module']}:app"
    # What mkdocs-typer2 renders: typer's own docs of the app.
    typer_bin = Path(sys.executable).parent / "typer"
    docs = subprocess.run(
        [str(typer_bin), directive["module"], "utils", "docs", "--name", directive["name"]],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
        timeout=120,
    ).stdout
    commands = hook.command_paths(directive["module"])
    assert {"run", "validate", "promote", "monitor", "score", "stack up"} <= set(commands)
    missing = [c for c in commands if f"## `{directive['name']} {c}`" not in docs]
    assert not missing, f"typer's docs lack {missing}"
