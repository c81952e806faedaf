"""The tables of a PostgreSQL index, created and migrated by the project, in their own schema.

meta        one row: schema version, model identity, chunking
state       one row: version (one more with every write), counts, lexical totals; writers
            lock it first, so they apply one after another on the latest state
documents   id, title, source, text, content hash, number of passages, metadata (published,
            lang, url, author, tags) with the indexes the search filters use
passages    id (never reused), document, character span, term count, embedding halfvec(d)
            with an HNSW index for inner product
sentences   document, character span, vector (float16 bytes, like the local backend)
postings    term, passage, term frequency, passage length: BM25 in SQL, with the same
            formula as SQLite FTS5, so both backends rank alike
terms       term, number of passages holding it (document frequency)
words       distinct words as written, for the cross-script bridge (never pruned)
"""

from __future__ import annotations

import json
from typing import Any

import psycopg
from psycopg import sql

from qa.errors import IndexStateError

# 1: the first release; 2: document metadata (published, lang, url, author, tags) with its indexes,
# and each document's number of passages.
SCHEMA_VERSION = 2
# HNSW build parameters. pgvector's default m = 16 needs a much larger ef_search for the recall
# target than m = 32, which is faster at the price of a somewhat larger index and slower inserts;
# a larger ef_construction changed recall little (figures: docs/benchmarks.md, "Figures behind the
# code's constants", and docs/scaling.md).
HNSW_M = 32
HNSW_EF_CONSTRUCTION = 128
# Any number; the same for every process of the project: it serializes schema creation.
_CREATION_LOCK = 7_234_901_117

_TABLES = """
CREATE TABLE {schema}.meta (
    id integer PRIMARY KEY CHECK (id = 1),
    schema_version integer NOT NULL,
    model jsonb NOT NULL,
    chunking jsonb NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE {schema}.state (
    id integer PRIMARY KEY CHECK (id = 1),
    version bigint NOT NULL,
    documents bigint NOT NULL,
    passages bigint NOT NULL,
    lexical_length bigint NOT NULL,  -- terms in every passage: BM25's average length
    updated_at timestamptz NOT NULL
);
CREATE TABLE {schema}.documents (
    id text PRIMARY KEY,
    title text NOT NULL,
    source text NOT NULL,
    text text NOT NULL,
    content_hash text NOT NULL,
    added_at timestamptz NOT NULL,
    passage_count integer NOT NULL DEFAULT 0,
    published text COLLATE "C",
    lang text,
    url text,
    author text,
    tags text[] NOT NULL DEFAULT '{{}}'
);
CREATE SEQUENCE {schema}.passage_ids;
CREATE TABLE {schema}.passages (
    id bigint PRIMARY KEY,
    document_id text NOT NULL REFERENCES {schema}.documents(id) ON DELETE CASCADE,
    char_start integer NOT NULL,
    char_end integer NOT NULL,
    lexical_length integer NOT NULL,
    embedding halfvec({dimension}) NOT NULL
);
CREATE INDEX passages_by_document ON {schema}.passages (document_id);
CREATE INDEX passages_by_embedding ON {schema}.passages
    USING hnsw (embedding halfvec_ip_ops) WITH (m = {m}, ef_construction = {ef_construction});
CREATE TABLE {schema}.sentences (
    document_id text NOT NULL REFERENCES {schema}.documents(id) ON DELETE CASCADE,
    char_start integer NOT NULL,
    char_end integer NOT NULL,
    vector bytea NOT NULL
);
CREATE INDEX sentences_by_document ON {schema}.sentences (document_id, char_start);
CREATE TABLE {schema}.postings (
    term text NOT NULL,
    passage_id bigint NOT NULL REFERENCES {schema}.passages(id) ON DELETE CASCADE,
    frequency integer NOT NULL,
    passage_length integer NOT NULL,
    PRIMARY KEY (term, passage_id)
);
CREATE INDEX postings_by_passage ON {schema}.postings (passage_id);
CREATE TABLE {schema}.terms (term text PRIMARY KEY, passages integer NOT NULL);
CREATE TABLE {schema}.words (id bigserial PRIMARY KEY, word text NOT NULL UNIQUE);
INSERT INTO {schema}.state VALUES (1, 0, 0, 0, 0, now());
"""
# The metadata filters' indexes (qa.index.postgres.filters): tags by overlap (GIN), the others by
# equality or range. `published` is ISO text that sorts as time only byte by byte (a locale's
# collation may skip the '-' and ':'), hence COLLATE "C" on the column, so its index serves ranges.
_METADATA_INDEXES = """
CREATE INDEX IF NOT EXISTS documents_by_tags ON {schema}.documents USING gin (tags);
CREATE INDEX IF NOT EXISTS documents_by_published ON {schema}.documents (published);
CREATE INDEX IF NOT EXISTS documents_by_source ON {schema}.documents (source);
CREATE INDEX IF NOT EXISTS documents_by_lang ON {schema}.documents (lang);
"""
# Version 1 to 2. Columns added without a volatile default change no row (PostgreSQL 11 and
# later); the passage counts are filled in by one pass over the passages.
_METADATA_COLUMNS = """
ALTER TABLE {schema}.documents
    ADD COLUMN IF NOT EXISTS passage_count integer NOT NULL DEFAULT 0,
    ADD COLUMN IF NOT EXISTS published text COLLATE "C",
    ADD COLUMN IF NOT EXISTS lang text,
    ADD COLUMN IF NOT EXISTS url text,
    ADD COLUMN IF NOT EXISTS author text,
    ADD COLUMN IF NOT EXISTS tags text[] NOT NULL DEFAULT '{{}}';
UPDATE {schema}.documents d SET passage_count = c.n
    FROM (SELECT document_id, count(*) AS n FROM {schema}.passages GROUP BY document_id) c
    WHERE c.document_id = d.id;
"""


def ensure_vector_extension(connection: psycopg.Connection, display: str) -> None:
    """pgvector must be in the database; create it when the user may, else say who must."""
    found = connection.execute("SELECT 1 FROM pg_extension WHERE extname = 'vector'").fetchone()
    if found:
        return
    available = connection.execute("SELECT 1 FROM pg_available_extensions WHERE name = 'vector'").fetchone()
    if not available:
        raise IndexStateError(
            f"the PostgreSQL server at {display} has no pgvector extension: install pgvector 0.7 or newer "
            "on the server (https://github.com/pgvector/pgvector), or use a managed PostgreSQL that has it"
        )
    try:
        with connection.transaction():
            connection.execute("CREATE EXTENSION IF NOT EXISTS vector")
    except psycopg.errors.InsufficientPrivilege as exc:
        raise IndexStateError(
            f"pgvector is installed on the server at {display} but not enabled in this database, and this "
            "user may not enable it: ask an administrator to run CREATE EXTENSION vector in it"
        ) from exc


def read_meta(connection: psycopg.Connection, schema: str) -> dict[str, Any] | None:
    """The index's meta row, or None when the schema holds no index."""
    exists = connection.execute(
        "SELECT 1 FROM information_schema.tables WHERE table_schema = %s AND table_name = 'meta'", (schema,)
    ).fetchone()
    if not exists:
        return None
    row = connection.execute(
        sql.SQL("SELECT schema_version, model, chunking FROM {}.meta").format(sql.Identifier(schema))
    ).fetchone()
    if row is None:
        return None
    return {"schema_version": row[0], "model": row[1], "chunking": row[2]}


def create(
    connection: psycopg.Connection,
    schema: str,
    model: dict[str, Any],
    chunking: dict[str, Any],
    display: str,
) -> dict[str, Any]:
    """Create the index in `schema` unless another process did first; returns its meta row.
    Under one lock from the extension on: concurrent `CREATE EXTENSION IF NOT EXISTS` collide."""
    with connection.transaction():
        connection.execute("SELECT pg_advisory_xact_lock(%s)", (_CREATION_LOCK,))
        meta = read_meta(connection, schema)
        if meta is not None:
            return meta
        ensure_vector_extension(connection, display)
        name = sql.Identifier(schema)
        connection.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(name))
        connection.execute(
            sql.SQL(_TABLES).format(
                schema=name,
                dimension=sql.Literal(int(model["dimension"])),
                m=sql.Literal(HNSW_M),
                ef_construction=sql.Literal(HNSW_EF_CONSTRUCTION),
            )
        )
        connection.execute(sql.SQL(_METADATA_INDEXES).format(schema=name))
        connection.execute(
            sql.SQL(
                "INSERT INTO {}.meta (id, schema_version, model, chunking) VALUES (1, %s, %s, %s)"
            ).format(name),
            (SCHEMA_VERSION, json.dumps(model), json.dumps(chunking)),
        )
    return {"schema_version": SCHEMA_VERSION, "model": model, "chunking": chunking}


def migrate(connection: psycopg.Connection, schema: str, meta: dict[str, Any], display: str) -> None:
    """Bring an index written by an older version up to `SCHEMA_VERSION`; refuse one written by a
    newer version. Under the creation lock, reading the version again inside it: two processes
    opening an old index at once upgrade it once."""
    _refuse_newer(meta["schema_version"], display)
    if meta["schema_version"] == SCHEMA_VERSION:
        return
    name = sql.Identifier(schema)
    with connection.transaction():
        connection.execute("SELECT pg_advisory_xact_lock(%s)", (_CREATION_LOCK,))
        current = read_meta(connection, schema)
        version = current["schema_version"] if current else SCHEMA_VERSION
        _refuse_newer(version, display)
        if version < 2:
            connection.execute(sql.SQL(_METADATA_COLUMNS).format(schema=name))
            connection.execute(sql.SQL(_METADATA_INDEXES).format(schema=name))
            _detect_languages(connection, name)
        if version < SCHEMA_VERSION:
            connection.execute(
                sql.SQL("UPDATE {}.meta SET schema_version = %s").format(name), (SCHEMA_VERSION,)
            )
    meta["schema_version"] = SCHEMA_VERSION


def _detect_languages(connection: psycopg.Connection, schema: sql.Identifier) -> None:
    """The language of each document written before metadata, detected from its text as ingest
    does: a `lang` filter sees them, and re-ingesting them finds nothing changed."""
    from qa.language import detect_language

    rows = connection.execute(sql.SQL("SELECT id, text FROM {}.documents").format(schema)).fetchall()
    found = [(detect_language(text), document_id) for document_id, text in rows]
    with connection.cursor() as cursor:
        cursor.executemany(
            sql.SQL("UPDATE {}.documents SET lang = %s WHERE id = %s").format(schema),
            [row for row in found if row[0] is not None],
        )


def _refuse_newer(version: int, display: str) -> None:
    if version > SCHEMA_VERSION:
        raise IndexStateError(
            f"the index at {display} has schema version {version}; this version of qa reads "
            f"up to {SCHEMA_VERSION}. Upgrade qa"
        )


def record_model(connection: psycopg.Connection, schema: str, model: dict[str, Any]) -> None:
    with connection.transaction():
        connection.execute(
            sql.SQL("UPDATE {}.meta SET model = %s").format(sql.Identifier(schema)), (json.dumps(model),)
        )


def drop(connection: psycopg.Connection, schema: str) -> None:
    """Remove the index in `schema` whole (the evaluation's throw-away indexes)."""
    with connection.transaction():
        connection.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))
