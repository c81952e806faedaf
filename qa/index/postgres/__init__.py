"""The shared backend: an index in PostgreSQL + pgvector, for workers on any number of machines."""

from __future__ import annotations

import secrets
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import psycopg

from qa.index.postgres.backend import PostgresIndex
from qa.index.postgres.errors import database_errors
from qa.index.postgres.location import PostgresLocation, is_postgres_url

__all__ = ["PostgresIndex", "drop_index", "is_postgres_url", "scratch_url"]


def scratch_url(url: str, prefix: str) -> str:
    """`url` naming a new, unused schema of the same database (for throw-away indexes)."""
    PostgresLocation.parse(url)  # a bad URL fails here, with its reason
    parts = urlsplit(url)
    name = f"{prefix.lower().replace('-', '_')[:40]}_{secrets.token_hex(4)}"
    query = [(key, value) for key, value in parse_qsl(parts.query, keep_blank_values=True) if key != "schema"]
    return urlunsplit(parts._replace(query=urlencode([*query, ("schema", name)])))


def drop_index(url: str) -> None:
    """Delete the index at `url` whole (its schema)."""
    from qa.index.postgres import schema

    where = PostgresLocation.parse(url)
    with (
        database_errors(where.display, "drop"),
        psycopg.connect(where.conninfo, autocommit=True) as connection,
    ):
        schema.drop(connection, where.schema)
