"""The stack's PostgreSQL: URLs of its databases, and creating or dropping them."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

from sqlalchemy import create_engine, text
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError
from sqlalchemy.pool import NullPool

from evenflow.errors import ConfigError, PostgresUnreachable

logger = logging.getLogger(__name__)


def postgres_url(url: str) -> URL:
    """``url`` parsed, refused unless it names a PostgreSQL server.

    Raises:
        ConfigError: not a URL, or one of another database.
    """
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise ConfigError(f"not a PostgreSQL URL: {url!r}") from exc
    if parsed.get_backend_name() != "postgresql":
        raise ConfigError(
            f"not a PostgreSQL URL: {parsed.render_as_string(hide_password=True)} "
            "(expected postgresql://USER[:PASSWORD]@HOST:PORT)"
        )
    return parsed


def database_url(server_url: str, database: str, driver: str = "postgresql") -> str:
    """The URL of ``database`` on the server of ``server_url``."""
    url = postgres_url(server_url).set(drivername=driver, database=database)
    return url.render_as_string(hide_password=False)


def ensure_databases(server_url: str, names: Iterable[str]) -> list[str]:
    """Create the databases that are missing; return the names created."""
    created: list[str] = []
    with _maintenance(server_url) as conn:
        for name in names:
            found = conn.execute(
                text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": name}
            ).first()
            if found is None:
                _execute(conn, f"CREATE DATABASE {_quote(conn, name)}")
                created.append(name)
                logger.info("created database %s", name)
    return created


def drop_databases(server_url: str, names: Iterable[str]) -> None:
    """Drop the databases (closing their connections); missing ones are skipped."""
    with _maintenance(server_url) as conn:
        for name in names:
            _execute(conn, f"DROP DATABASE IF EXISTS {_quote(conn, name)} WITH (FORCE)")


def existing_databases(server_url: str, names: Iterable[str]) -> list[str]:
    """Which of ``names`` exist on the server."""
    wanted = list(names)
    with _maintenance(server_url) as conn:
        rows = conn.execute(
            text("SELECT datname FROM pg_database WHERE datname = ANY(:names)"), {"names": wanted}
        )
        return sorted(str(row[0]) for row in rows)


@contextmanager
def _maintenance(server_url: str) -> Iterator[Connection]:
    """An autocommit connection to the server's maintenance database."""
    url = postgres_url(server_url)
    engine = create_engine(
        url.set(drivername="postgresql+psycopg2", database=url.database or "postgres"),
        isolation_level="AUTOCOMMIT",
        poolclass=NullPool,
        connect_args={"connect_timeout": 5},
    )
    try:
        try:
            conn = engine.connect()
        except SQLAlchemyError as exc:
            raise PostgresUnreachable(
                f"cannot reach PostgreSQL at {_shown(url)}: {_reason(exc)}. Start it, or name "
                "another server with --postgres-url postgresql://USER:PASSWORD@HOST:PORT"
            ) from exc
        with conn:
            yield conn
    finally:
        engine.dispose()


def _execute(conn: Connection, statement: str) -> None:
    try:
        conn.execute(text(statement))
    except SQLAlchemyError as exc:
        raise PostgresUnreachable(
            f"PostgreSQL at {_shown(conn.engine.url)} refused `{statement}`: {_reason(exc)}"
        ) from exc


def _quote(conn: Connection, name: str) -> str:
    return conn.dialect.identifier_preparer.quote(name)


def _shown(url: URL) -> str:
    return url.set(database=None).render_as_string(hide_password=True)


def _reason(exc: SQLAlchemyError) -> str:
    lines = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__
