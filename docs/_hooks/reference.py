"""MkDocs hook: the references generated from the code, and a check that they were.

Parameters. A page line ``<!-- params: evenflow.config.run:RunParams -->`` becomes one table per model:
every field as its YAML key (nested models as dotted keys, each in its own table), its type,
default, bounds (the ``ge``/``gt``/``le``/``lt``/length/pattern constraints pydantic enforces)
and description. Settings models (pydantic-settings) also get their environment variable.

Commands. ``mkdocs-typer2`` renders the typer app through the ``typer`` executable (``typer MODULE
utils docs``), which must be on PATH, and renders nothing if it fails. So this hook puts the running
interpreter's scripts folder on PATH, and fails the build when a page that asks for the app lacks
any of its commands.
"""

from __future__ import annotations

import html
import importlib
import json
import os
import re
import sys
import types
import typing
from pathlib import Path
from typing import Any

import annotated_types
import typer
from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined, to_jsonable_python

TYPER_BLOCK = re.compile(r"^::: mkdocs-typer2\n((?:[ \t]+:\w+:.*\n?)+)", re.MULTILINE)
DIRECTIVE = re.compile(r"^<!-- params: ([\w.]+):(\w+) -->$", re.MULTILINE)

_BOUNDS = (
    (annotated_types.Ge, "ge", "≥"),
    (annotated_types.Gt, "gt", ">"),
    (annotated_types.Le, "le", "≤"),
    (annotated_types.Lt, "lt", "<"),
    (annotated_types.MinLen, "min_length", "length ≥"),
    (annotated_types.MaxLen, "max_length", "length ≤"),
)


def load_model(module: str, name: str) -> type[BaseModel]:
    """The model class named by a directive, e.g. ``evenflow.config.run:RunParams``."""
    model = getattr(importlib.import_module(module), name)
    if not (isinstance(model, type) and issubclass(model, BaseModel)):
        raise TypeError(f"{module}:{name} is not a pydantic model")
    return model


def _nested_model(annotation: Any) -> type[BaseModel] | None:
    return (
        annotation if isinstance(annotation, type) and issubclass(annotation, BaseModel) else None
    )


def type_name(annotation: Any) -> str:
    """A type as a reader writes it: ``int``, ``str | None``, ``tuple[str, ...]``, ``'a' | 'b'``."""
    if annotation is type(None) or annotation is Ellipsis:
        return "null" if annotation is type(None) else "..."
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Annotated:
        return type_name(args[0])
    if origin is typing.Literal:
        return " | ".join(json.dumps(to_jsonable_python(arg)) for arg in args)
    if origin in (typing.Union, types.UnionType):
        return " | ".join(type_name(arg) for arg in args)
    if origin is not None:
        base = getattr(origin, "__name__", str(origin))
        return f"{base}[{', '.join(type_name(arg) for arg in args)}]"
    return (
        annotation.__name__
        if isinstance(annotation, type)
        else str(annotation).replace("typing.", "")
    )


def _constraints(metadata: list[Any]) -> list[str]:
    found = []
    for item in metadata:
        for kind, attr, symbol in _BOUNDS:
            if isinstance(item, kind):
                found.append(f"{symbol} {getattr(item, attr)}")
        pattern = getattr(item, "pattern", None)
        if isinstance(pattern, str):
            found.append(f"pattern `{pattern}`")
    return found


def bounds(field: FieldInfo) -> str:
    """The constraints pydantic enforces on a field, including those inside a union's members."""
    found = _constraints(field.metadata)
    for arg in typing.get_args(field.annotation):
        if typing.get_origin(arg) is typing.Annotated:
            inner = typing.get_args(arg)[1:]
            for item in inner:
                nested = item.metadata if isinstance(item, FieldInfo) else [item]
                inner_bounds = _constraints(list(nested))
                if inner_bounds:
                    found.append(f"{type_name(arg)} " + ", ".join(inner_bounds))
    return ", ".join(found)


def default(field: FieldInfo, settings: bool = False) -> str:
    """The default as it would be written in YAML, ``required`` when there is none.

    A settings field whose default is empty is filled at start (its description says how).
    """
    if settings and field.default in ("", None, Path()):
        return "unset"
    if field.default_factory is not None:
        if _nested_model(field.annotation) is not None:
            return "see below"
        factory = field.default_factory
        if getattr(factory, "__module__", "") in {"pathlib", "posixpath"}:
            return f"`{getattr(factory, '__qualname__', factory)}()`"
        value = factory()  # type: ignore[call-arg]
    elif field.default is PydanticUndefined:
        return "required"
    else:
        value = field.default
    return f"`{json.dumps(to_jsonable_python(value), ensure_ascii=False)}`"


def _cell(text: str) -> str:
    """One table cell: on one line, with the characters Markdown or HTML would read escaped."""
    text = " ".join(text.split())
    return text.replace("<", "&lt;").replace(">", "&gt;").replace("|", "\\|")


def _code(text: str) -> str:
    """Inline code that may hold ``|``: HTML, since a Markdown code span would show the escape."""
    escaped = html.escape(" ".join(text.split()), quote=False).replace("|", "&#124;")
    return f"<code>{escaped}</code>"


def render_model(model: type[BaseModel], prefix: str = "", level: int = 2) -> str:
    """Markdown tables for a model: its own fields first, then one section per nested model."""
    env_prefix = model.model_config.get("env_prefix")
    header = "| key | type | default | bounds | description |\n|---|---|---|---|---|\n"
    if env_prefix is not None:
        header = "| variable | type | default | bounds | description |\n|---|---|---|---|---|\n"
    lines = []
    nested_sections = []
    for name, field in model.model_fields.items():
        key = f"{prefix}{name}"
        label = f"`{env_prefix}{name.upper()}`" if env_prefix is not None else f"`{key}`"
        lines.append(
            f"| {label} | {_code(type_name(field.annotation))} | {_cell(default(field, settings=env_prefix is not None))} "
            f"| {_cell(bounds(field))} | {_cell(field.description or '')} |"
        )
        nested = _nested_model(field.annotation)
        if nested is not None:
            doc = (nested.__doc__ or "").strip().split("\n\n")[0]
            nested_sections.append(
                f"{'#' * level} `{key}` ({nested.__name__})\n\n{_cell(doc)}\n\n"
                + render_model(nested, prefix=f"{key}.", level=level + 1)
            )
    table = header + "\n".join(lines) + "\n"
    return "\n".join([table, *nested_sections])


def expand(markdown: str) -> str:
    """Replace every ``<!-- params: module:Model -->`` line with the model's tables."""
    return DIRECTIVE.sub(lambda m: render_model(load_model(m.group(1), m.group(2))), markdown)


def typer_directives(markdown: str) -> list[dict[str, str]]:
    """The options (``module``, ``name``, ...) of each ``::: mkdocs-typer2`` block of a page."""
    return [
        dict(re.findall(r"^[ \t]+:(\w+):[ \t]*(.*?)[ \t]*$", block, re.MULTILINE))
        for block in TYPER_BLOCK.findall(markdown)
    ]


def command_paths(module: str) -> list[str]:
    """Every command of the typer app ``module:app``, as typed: ``run``, ``stack up``, ..."""
    app = importlib.import_module(module).app

    def walk(command: Any, prefix: str) -> list[str]:
        paths = []
        for name, sub in sorted(getattr(command, "commands", {}).items()):
            if getattr(sub, "hidden", False):
                continue
            paths.append(f"{prefix}{name}")
            paths.extend(walk(sub, f"{prefix}{name} "))
        return paths

    return walk(typer.main.get_command(app), "")


def on_config(config: Any, **_: Any) -> Any:
    """MkDocs event: let mkdocs-typer2 find the ``typer`` executable installed beside this Python."""
    scripts = os.path.dirname(sys.executable)
    os.environ["PATH"] = os.pathsep.join([scripts, os.environ.get("PATH", "")])
    return config


def on_page_markdown(markdown: str, **_: Any) -> str:
    """MkDocs event: expand the directives of each page before it is rendered."""
    return expand(markdown)


def on_page_content(html: str, page: Any, **_: Any) -> str:
    """MkDocs event: a CLI page must show every command of the app it names."""
    for options in typer_directives(page.markdown or ""):
        module, name = options["module"], options.get("name", "")
        missing = [path for path in command_paths(module) if f"{name} {path}" not in html]
        if missing:
            raise RuntimeError(
                f"{page.file.src_path}: the CLI reference lacks {', '.join(missing)} "
                f"(did `typer {module} utils docs` fail?)"
            )
    return html
