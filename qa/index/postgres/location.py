"""A PostgreSQL index location: `postgresql://user:password@host:port/database?schema=name`.

`schema` is ours (the PostgreSQL schema that holds the index, `qa` by default), so several
indexes can share one database; every other query parameter is libpq's and passes through.
Passwords never appear in messages: `display` is the URL without them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlencode, urlsplit

import psycopg
from psycopg.conninfo import conninfo_to_dict

from qa.errors import IndexStateError

SCHEMES = ("postgresql", "postgres")
DEFAULT_SCHEMA = "qa"
# Connecting gives up after this many seconds unless the URL says otherwise (connect_timeout).
CONNECT_TIMEOUT_S = 5
_SCHEMA_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


def is_postgres_url(location: str) -> bool:
    return location.split("://", 1)[0].lower() in SCHEMES if "://" in location else False


@dataclass(frozen=True)
class PostgresLocation:
    conninfo: str  # what psycopg connects with (a URL, without our parameters)
    schema: str
    display: str  # for messages: no password

    @classmethod
    def parse(cls, url: str) -> PostgresLocation:
        scheme = url.split("://", 1)[0]
        if scheme.lower() not in SCHEMES:
            raise IndexStateError(f"an index URL starts with postgresql://, not {scheme}://")
        try:
            parts = urlsplit(url)
            userinfo, _, hosts = parts.netloc.rpartition("@")
            if "," not in hosts:  # libpq's host lists (h1:5432,h2:5432) carry a port each
                parts.port  # noqa: B018 - raises ValueError for a port that is not a number
            conninfo_to_dict(_without_our_parameters(url))
        except (ValueError, psycopg.ProgrammingError):
            # Neither the URL nor the parser's message is shown: either may hold the password.
            raise IndexStateError(
                "the index URL is not valid: postgresql://user:password@host:port/database; a password "
                "holding / @ : or % must be percent-encoded"
            ) from None
        query = parse_qsl(parts.query, keep_blank_values=True)
        schema = next((value for key, value in query if key == "schema"), DEFAULT_SCHEMA)
        if not _SCHEMA_NAME.match(schema):
            raise IndexStateError(
                f"schema={schema!r} in the index URL is not a plain lower-case name (letters, digits, _)"
            )
        kept = [(key, value) for key, value in query if key != "schema"]
        if not any(key == "connect_timeout" for key, _ in kept):
            kept.append(("connect_timeout", str(CONNECT_TIMEOUT_S)))
        if not any(key == "application_name" for key, _ in kept):
            kept.append(("application_name", "qa"))
        # Put together by hand: urlunsplit drops the // of a URL without a host (Unix sockets).
        conninfo = f"postgresql://{parts.netloc}{parts.path}?{urlencode(kept)}"
        user = userinfo.split(":", 1)[0]
        base = f"postgresql://{user + '@' if user else ''}{hosts}{parts.path}"
        shown = [(key, value) for key, value in query if key not in _SECRET and key != "schema"]
        return cls(conninfo, schema, _display(base, shown, schema))

    def with_schema(self, schema: str) -> PostgresLocation:
        """The same database, another index (the evaluation gives each set its own)."""
        base, _, query = self.display.partition("?")
        shown = [(key, value) for key, value in parse_qsl(query) if key != "schema"]
        return PostgresLocation(self.conninfo, schema, _display(base, shown, schema))


_SECRET = {"password", "sslpassword", "passfile"}


def _display(base: str, shown: list[tuple[str, str]], schema: str) -> str:
    if schema != DEFAULT_SCHEMA:
        shown = [*shown, ("schema", schema)]
    return f"{base}?{urlencode(shown, safe='/')}" if shown else base


def _without_our_parameters(url: str) -> str:
    base, _, query = url.partition("?")
    kept = [(key, value) for key, value in parse_qsl(query, keep_blank_values=True) if key != "schema"]
    return f"{base}?{urlencode(kept)}" if kept else base
