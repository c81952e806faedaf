"""The PostgreSQL index: one schema in a PostgreSQL + pgvector database that any number of
`qa serve` workers, on any number of machines, read and write side by side.

A view is one `REPEATABLE READ READ ONLY` transaction: every query of a question sees the same
committed state, and the next view sees every write committed since, by any worker. A write is
one transaction that first locks the `state` row, so writers apply one after another on the
latest state, each all or nothing; a worker killed mid-write leaves nothing, because PostgreSQL
rolls back a transaction whose connection is gone. Reads may go to a streaming replica
(`read_location`), writes always go to the primary.

Connections come from pools that test a connection before handing it out, so a server that
restarts costs the questions asked while it is down (503, "cannot reach PostgreSQL ...") and
those of the few seconds the pools take to reconnect by themselves (their back-off is capped).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import psycopg
from pgvector import HalfVector
from pgvector.psycopg import register_vector
from psycopg import sql
from psycopg_pool import ConnectionPool

from qa import settings
from qa.chunking import ChunkingSettings
from qa.errors import IndexStateError
from qa.filters import SearchFilter
from qa.index.base import (
    DocumentUpsert,
    IndexBackend,
    IndexView,
    ModelIdentity,
    SentenceVector,
    StoredDocument,
    StoredPassage,
    WriteResult,
)
from qa.index.postgres import lexical, schema
from qa.index.postgres.errors import database_errors, unreachable
from qa.index.postgres.filters import filter_condition
from qa.index.postgres.location import PostgresLocation
from qa.metadata import Metadata

logger = logging.getLogger("qa.index")

# Candidates HNSW keeps while searching (QA_HNSW_EF_SEARCH, as for the local index): recall@10
# against exact search at 100,000 passages is in docs/scaling.md. pgvector's default, 40, is
# below the 50 candidates a question asks for.
DEFAULT_EF_SEARCH = 128


def ef_search() -> int:
    chosen = settings.HNSW_EF_SEARCH.get()
    return DEFAULT_EF_SEARCH if chosen is None else chosen


# A filtered dense search whose filter keeps at most this many passages is exact: every one of
# them is compared, so it misses nothing however few documents the filter keeps. Its cost grows
# with the passages compared; this bounds the worst case at a few HNSW searches. Above it the
# filter keeps so many passages that HNSW, with the filter inside its iterative scan, finds k of
# them among a few thousand candidates at nearly exact recall (figures: docs/benchmarks.md,
# "Figures behind the code's constants").
EXACT_SEARCH_LIMIT = 20_000
# pgvector's default cap on the candidates an iterative HNSW scan visits (hnsw.max_scan_tuples).
# A filter keeping a share s of the passages needs about k / s candidates for k passages; s is at
# least EXACT_SEARCH_LIMIT / passages on that path, so the cap is raised to that many times
# SCAN_MARGIN on an index large enough to need it.
DEFAULT_MAX_SCAN_TUPLES = 20_000
SCAN_MARGIN = 4

# A request waits this long for a connection before it is answered 503.
POOL_TIMEOUT_S = 5.0
RECONNECT_TIMEOUT_S = 5.0
READ_POOL_SIZE = 8
REINDEX_MEMORY = "1GB"
WRITE_POOL_SIZE = 2


@dataclass(frozen=True)
class _State:
    version: int
    documents: int
    passages: int
    lexical_length: int


def _configure(read_only: bool, effort: int):
    def configure(connection: psycopg.Connection) -> None:
        register_vector(connection)
        connection.execute(f"SET hnsw.ef_search = {int(effort)}")
        # Rows deleted or replaced (and not vacuumed yet), or written after the view's snapshot,
        # take HNSW candidates and are then dropped as invisible: without iterative scans a
        # search could return fewer than k passages, or none.
        connection.execute("SET hnsw.iterative_scan = strict_order")
        connection.commit()
        if read_only:
            # One snapshot for every query of a view; replicas accept REPEATABLE READ too.
            connection.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
            connection.read_only = True
        else:
            # Writers wait on the state row's lock and then must see the latest commit, whatever
            # the database's default isolation (under REPEATABLE READ they would fail instead).
            connection.isolation_level = psycopg.IsolationLevel.READ_COMMITTED

    return configure


def _open_pool(location: PostgresLocation, *, read_only: bool, size: int, effort: int) -> ConnectionPool:
    pool = ConnectionPool(
        location.conninfo,
        min_size=1,
        max_size=size,
        open=False,
        configure=_configure(read_only, effort),
        check=ConnectionPool.check_connection,
        timeout=POOL_TIMEOUT_S,
        # A failed reconnection backs off exponentially until this; kept short so that a
        # database back after a long outage is used within seconds, not minutes.
        reconnect_timeout=RECONNECT_TIMEOUT_S,
        name=f"qa-{'read' if read_only else 'write'}",
    )
    try:
        pool.open(wait=True, timeout=POOL_TIMEOUT_S * 2)
    except Exception as exc:
        pool.close()
        raise unreachable(location.display, exc) from exc
    return pool


# The columns `_document` reads, on the documents table `d`; {passages} is a count or 0.
_DOCUMENT_COLUMNS = (
    "d.id, d.title, d.source, {text}, d.content_hash, {passages},"
    " d.published, d.lang, d.url, d.author, d.tags"
)


def _document_columns(*, text: bool, passages: bool) -> str:
    return _DOCUMENT_COLUMNS.format(
        text="d.text" if text else "''", passages="d.passage_count" if passages else "0"
    )


def _document(row: Sequence[Any]) -> StoredDocument:
    """A document from the columns `_document_columns` lists."""
    *fields, published, lang, url, author, tags = row
    meta = Metadata(published=published, lang=lang, url=url, author=author, tags=tuple(tags or ()))
    return StoredDocument(*fields, meta=meta)


# Nearest passages: {restriction} is empty or joins the documents that match a filter. The HNSW
# index serves the ORDER BY; with a filter, pgvector's iterative scan walks on until k passages
# pass it (hnsw.iterative_scan, set per connection).
_NEAREST = (
    "SELECT p.id, -(p.embedding <#> %(q)s) FROM {schema}.passages p {restriction}"
    " ORDER BY p.embedding <#> %(q)s LIMIT %(k)s"
)
# A row when the matching documents hold more than %(limit)s passages. A running sum over the
# documents' own counts stops as soon as it passes the limit: it reads at most that many documents
# and no passage (counting passages through the join cost about two HNSW searches; docs/benchmarks.md).
_MANY_MATCHING = (
    "SELECT 1 FROM (SELECT sum(d.passage_count) OVER (ROWS UNBOUNDED PRECEDING) AS running"
    " FROM {schema}.documents d WHERE {condition}) m WHERE running > %(limit)s LIMIT 1"
)
# Exact: the distance of every passage of every matching document, sorted. The passages are read
# document by document through their index (a LATERAL subquery that OFFSET 0 keeps from being
# flattened into a join the planner may turn into a scan of the whole table, several times slower:
# docs/benchmarks.md), and the ORDER BY is on a computed column, which the HNSW index
# cannot serve: every matching passage is compared.
_EXACT_NEAREST = (
    "SELECT m.id, -m.distance FROM {schema}.documents d CROSS JOIN LATERAL ("
    "  SELECT p.id, p.embedding <#> %(q)s AS distance FROM {schema}.passages p"
    "  WHERE p.document_id = d.id OFFSET 0) m"
    " WHERE {condition} ORDER BY m.distance, m.id LIMIT %(k)s"
)
_FILTERED = "JOIN {schema}.documents d ON d.id = p.document_id WHERE {condition}"


class PostgresView(IndexView):
    def __init__(
        self,
        connection: psycopg.Connection,
        state: _State,
        chunking: ChunkingSettings,
        schema_name: str,
        display: str,
        effort: int,
    ) -> None:
        self._db = connection
        self._state = state
        self.version = state.version
        self.chunking = chunking
        self._schema = sql.Identifier(schema_name)
        self._display = display
        self._ef_search = effort

    def _rows(
        self,
        query: str | sql.Composable,
        parameters: Sequence[Any] | dict[str, Any] = (),
        *,
        prepare: bool | None = None,
    ) -> list[tuple]:
        """Rows of `query`: a string whose {schema} is this index's, or SQL composed already."""
        statement = sql.SQL(query).format(schema=self._schema) if isinstance(query, str) else query
        with database_errors(self._display, "read"):
            return self._db.execute(statement, parameters, prepare=prepare).fetchall()

    def _sql(self, template: str, **parts: sql.Composable) -> sql.Composed:
        return sql.SQL(template).format(schema=self._schema, **parts)

    def _iterate(self, query: str) -> Iterator[tuple]:
        with database_errors(self._display, "read"), self._db.cursor() as cursor:
            cursor.execute(sql.SQL(query).format(schema=self._schema))
            while rows := cursor.fetchmany(256):
                yield from rows

    def dense_search(
        self, vector: np.ndarray, k: int, within: SearchFilter | None = None
    ) -> list[tuple[int, float]]:
        if k <= 0 or self._state.passages == 0:
            return []
        if k > self._ef_search:
            self._rows("SELECT set_config('hnsw.ef_search', %s, true)", (str(k),))
        query = HalfVector(np.asarray(vector, dtype=np.float32).ravel())
        if within is None or within.is_empty:
            rows = self._rows(self._sql(_NEAREST, restriction=sql.SQL("")), {"q": query, "k": k})
        else:
            rows = self._filtered_nearest(query, k, within)
        return [(int(i), float(score)) for i, score in rows]

    def _filtered_nearest(self, query: HalfVector, k: int, within: SearchFilter) -> list[tuple]:
        """The k passages nearest `query` among those of documents matching `within`: searched
        exactly when the filter keeps few passages, else by HNSW with the filter inside its scan."""
        condition, parameters = filter_condition(within)
        parameters |= {"q": query, "k": k}
        exact = self._sql(_EXACT_NEAREST, condition=condition)
        # Each query is planned for its own values (no prepared generic plan): the right plan for
        # a filter keeping 30 passages is not the one for a filter keeping half of them.
        many = self._rows(
            self._sql(_MANY_MATCHING, condition=condition),
            parameters | {"limit": EXACT_SEARCH_LIMIT},
            prepare=False,
        )
        if not many:  # none at all too: the exact search then finds nothing, at once
            return self._rows(exact, parameters, prepare=False)
        self._allow_scan(k)
        rows = self._rows(
            self._sql(_NEAREST, restriction=self._sql(_FILTERED, condition=condition)),
            parameters,
            prepare=False,
        )
        if len(rows) < k:
            # The iterative scan stopped at its cap (or its memory) before k passages passed the
            # filter: a filter at odds with the question's neighbourhood. Exact is slower but whole.
            rows = self._rows(exact, parameters, prepare=False)
        return rows

    def _allow_scan(self, k: int) -> None:
        """Raise hnsw.max_scan_tuples for this view when the index is large enough that a filter
        just above EXACT_SEARCH_LIMIT could need more candidates than pgvector's default."""
        needed = SCAN_MARGIN * k * self._state.passages // max(EXACT_SEARCH_LIMIT, 1)
        if needed > DEFAULT_MAX_SCAN_TUPLES:
            self._rows("SELECT set_config('hnsw.max_scan_tuples', %s, true)", (str(needed),))

    def lexical_search(
        self, terms: Sequence[str], k: int, within: SearchFilter | None = None
    ) -> list[tuple[int, float]]:
        wanted = lexical.query_tokens(terms)
        if not wanted or k <= 0 or self._state.passages == 0:
            return []
        filtered = within is not None and not within.is_empty
        condition, parameters = filter_condition(within) if filtered else (None, {})
        rows = self._rows(
            lexical.bm25_query(self._schema, condition),
            parameters
            | {
                "terms": wanted,
                "passages": float(self._state.passages),
                "average_length": max(self._state.lexical_length / self._state.passages, 1e-9),
                "k": k,
            },
            prepare=False if filtered else None,  # a filter's plan depends on its values (see above)
        )
        return [(int(i), float(score)) for i, score in rows]

    def lexical_terms(self) -> list[str]:
        return [term for (term,) in self._rows("SELECT term FROM {schema}.terms WHERE passages > 0")]

    def written_words(self, after: int = 0) -> tuple[list[str], int] | None:
        rows = self._rows("SELECT id, word FROM {schema}.words WHERE id > %s ORDER BY id", (after,))
        return [word for _, word in rows], max((row[0] for row in rows), default=after)

    def passages(self, ids: Iterable[int]) -> dict[int, StoredPassage]:
        wanted = [int(i) for i in ids]
        if not wanted:
            return {}
        rows = self._rows(
            "SELECT id, document_id, char_start, char_end FROM {schema}.passages WHERE id = ANY(%s)",
            (wanted,),
        )
        return {row[0]: StoredPassage(*row) for row in rows}

    def passage_vectors(self, ids: Sequence[int]) -> np.ndarray:
        wanted = [int(i) for i in ids]
        rows = dict(self._rows("SELECT id, embedding FROM {schema}.passages WHERE id = ANY(%s)", (wanted,)))
        missing = [i for i in wanted if i not in rows]
        if missing:
            raise IndexStateError(f"no passages with ids {missing[:5]} in the index at {self._display}")
        if not wanted:
            return np.zeros((0, 0), dtype=np.float32)
        return np.stack([rows[i].to_numpy().astype(np.float32) for i in wanted])

    def sentences(self, passages: Sequence[StoredPassage]) -> dict[int, list[SentenceVector]]:
        found: dict[int, list[SentenceVector]] = {p.id: [] for p in passages}
        if not passages:
            return found
        rows = self._rows(
            "SELECT w.passage, s.char_start, s.char_end, s.vector"
            " FROM unnest(%s::bigint[], %s::text[], %s::integer[], %s::integer[])"
            "   AS w(passage, document, first, last)"
            " JOIN {schema}.sentences s ON s.document_id = w.document"
            "   AND s.char_start >= w.first AND s.char_end <= w.last"
            " ORDER BY w.passage, s.char_start",
            (
                [p.id for p in passages],
                [p.document_id for p in passages],
                [p.start for p in passages],
                [p.end for p in passages],
            ),
        )
        for passage_id, start, end, vector in rows:
            found[passage_id].append(
                SentenceVector(start, end, np.frombuffer(vector, dtype=np.float16).astype(np.float32))
            )
        return found

    def documents(self, ids: Iterable[str]) -> dict[str, StoredDocument]:
        wanted = list(set(ids))
        if not wanted:
            return {}
        rows = self._rows(
            f"SELECT {_document_columns(text=True, passages=False)} FROM {{schema}}.documents d"
            " WHERE d.id = ANY(%s)",
            (wanted,),
        )
        return {row[0]: _document(row) for row in rows}

    def document(self, document_id: str) -> StoredDocument | None:
        rows = self._rows(
            f"SELECT {_document_columns(text=True, passages=True)} FROM {{schema}}.documents d"
            " WHERE d.id = %s",
            (document_id,),
        )
        return _document(rows[0]) if rows else None

    def list_documents(self, offset: int = 0, limit: int = 100) -> list[StoredDocument]:
        rows = self._rows(
            f"SELECT {_document_columns(text=False, passages=True)} FROM {{schema}}.documents d"
            " ORDER BY d.id LIMIT %s OFFSET %s",
            (limit, offset),
        )
        return [_document(row) for row in rows]

    def iter_documents(self) -> Iterator[StoredDocument]:
        for row in self._iterate(
            f"SELECT {_document_columns(text=True, passages=True)} FROM {{schema}}.documents d ORDER BY d.id"
        ):
            yield _document(row)

    def iter_passages(self) -> Iterator[StoredPassage]:
        for row in self._iterate(
            "SELECT id, document_id, char_start, char_end FROM {schema}.passages ORDER BY id"
        ):
            yield StoredPassage(*row)

    def count_documents(self) -> int:
        return self._state.documents

    def count_passages(self) -> int:
        return self._state.passages

    def content_hashes(self) -> dict[str, str]:
        return dict(self._rows("SELECT id, content_hash FROM {schema}.documents"))


class PostgresIndex(IndexBackend):
    """An index in a PostgreSQL schema (see the module docstring)."""

    def __init__(
        self,
        location: PostgresLocation,
        read_location: PostgresLocation,
        model: ModelIdentity,
        chunking: ChunkingSettings,
        write_pool: ConnectionPool,
        read_pool: ConnectionPool,
    ) -> None:
        self._where = location
        self._read_where = read_location
        self.location = location.display
        self.model = model
        self.chunking = chunking
        self._schema = location.schema
        self._write_pool = write_pool
        self._read_pool = read_pool
        self._ef_search = ef_search()
        self._closed = threading.Event()

    @classmethod
    def open(
        cls,
        url: str,
        model: ModelIdentity | None,
        *,
        create: bool = True,
        chunking: ChunkingSettings | None = None,
        read_url: str | None = None,
    ) -> PostgresIndex:
        """Open (creating when `create`) the index at `url`; `read_url` sends views to a replica."""
        where = PostgresLocation.parse(url)
        read_where = PostgresLocation.parse(read_url).with_schema(where.schema) if read_url else where
        with database_errors(where.display, "open"):
            try:
                connection = psycopg.connect(where.conninfo, autocommit=True)
            except psycopg.Error as exc:
                raise unreachable(where.display, exc) from exc
            with connection:
                meta = schema.read_meta(connection, where.schema)
                if meta is None:
                    if not create or model is None:
                        raise IndexStateError(
                            f"no index at {where.display}. Create one: qa ingest PATH --index {where.display}"
                        )
                    meta = schema.create(
                        connection,
                        where.schema,
                        model.to_dict(),
                        (chunking or ChunkingSettings()).to_dict(),
                        where.display,
                    )
                schema.migrate(connection, where.schema, meta, where.display)
                if model is None:
                    model = ModelIdentity(**meta["model"])
                model.check(meta["model"], where.display)
                if meta["model"]["fingerprint"] != model.fingerprint:
                    # Recorded under an older version's fingerprint rule: record today's.
                    schema.record_model(
                        connection, where.schema, meta["model"] | {"fingerprint": model.fingerprint}
                    )
            write_pool = _open_pool(where, read_only=False, size=WRITE_POOL_SIZE, effort=ef_search())
            try:
                # Views get their own read-only, one-snapshot connections, on the replica if given.
                read_pool = _open_pool(read_where, read_only=True, size=READ_POOL_SIZE, effort=ef_search())
            except BaseException:
                write_pool.close()
                raise
        index = cls(where, read_where, model, ChunkingSettings(**meta["chunking"]), write_pool, read_pool)
        try:
            with index.view():  # a replica without the schema fails here, not at the first question
                pass
        except BaseException:
            index.close()
            raise
        return index

    # -- reading -----------------------------------------------------------------------------

    @contextmanager
    def view(self) -> Iterator[PostgresView]:
        display = self._read_where.display
        with database_errors(display, "read"), self._read_pool.connection() as connection:
            try:
                row = connection.execute(
                    sql.SQL("SELECT version, documents, passages, lexical_length FROM {}.state").format(
                        sql.Identifier(self._schema)
                    )
                ).fetchone()
            except psycopg.errors.UndefinedTable as exc:
                raise IndexStateError(
                    f"no index at {display} (schema {self._schema}): on a replica, wait for the primary's "
                    "index to arrive; else create it with qa ingest"
                ) from exc
            if row is None:
                raise IndexStateError(f"the index at {display} has no state row; rebuild it")
            try:
                yield PostgresView(
                    connection, _State(*row), self.chunking, self._schema, display, self._ef_search
                )
            finally:
                with suppress(psycopg.Error):
                    connection.rollback()  # a read-only transaction: nothing to keep

    # -- writing -----------------------------------------------------------------------------

    def write(self, upserts: Sequence[DocumentUpsert] = (), deletes: Sequence[str] = ()) -> WriteResult:
        result = WriteResult()
        unique: dict[str, DocumentUpsert] = {}
        for document in upserts:
            unique.pop(document.id, None)
            unique[document.id] = document  # a later copy of an id wins, as in the local backend
        with (
            database_errors(self.location, "write"),
            self._write_pool.connection() as connection,
            connection.transaction(),
        ):
            writer = _Writer(connection, self._schema)
            removed = writer.delete(list(dict.fromkeys(deletes)))
            for document_id in deletes:
                (result.removed if document_id in removed else result.missing).append(document_id)
            replaced = writer.delete(list(unique))
            for document_id in unique:
                (result.replaced if document_id in replaced else result.added).append(document_id)
            writer.add(list(unique.values()))
            result.version = writer.publish()
        return result

    def compact(self) -> dict[str, Any]:
        """Rebuild the HNSW index in one pass, drop terms no passage holds any more, and let
        PostgreSQL reclaim dead rows now (autovacuum does that too, in its own time).

        An HNSW graph grown insert by insert searches slower than one built at once: at 100,000
        passages, 6.5 against 4.8 ms for the same recall (docs/scaling.md). `REINDEX CONCURRENTLY`
        builds the new graph beside the old one, so questions and writes go on meanwhile.
        """
        started = time.perf_counter()
        name = sql.Identifier(self._schema)
        with database_errors(self.location, "compact"), self._write_pool.connection() as connection:
            with connection.transaction():
                connection.execute(sql.SQL("SELECT 1 FROM {}.state FOR UPDATE").format(name))
                pruned = connection.execute(
                    sql.SQL("DELETE FROM {}.terms WHERE passages <= 0").format(name)
                ).rowcount
            connection.autocommit = True
            try:
                # What a killed REINDEX CONCURRENTLY leaves: an invalid copy that writes would keep up.
                connection.execute(
                    sql.SQL("DROP INDEX CONCURRENTLY IF EXISTS {}.passages_by_embedding_ccnew").format(name)
                )
                # The graph is built in memory when it fits (about 1.3 GB a million passages).
                connection.execute(f"SET maintenance_work_mem = '{REINDEX_MEMORY}'")
                connection.execute(
                    sql.SQL("REINDEX INDEX CONCURRENTLY {}.passages_by_embedding").format(name)
                )
                connection.execute("RESET maintenance_work_mem")
                for table in ("documents", "passages", "sentences", "postings", "terms", "words"):
                    connection.execute(sql.SQL("VACUUM (ANALYZE) {}.{}").format(name, sql.Identifier(table)))
            finally:
                connection.autocommit = False
        return {
            "compacted": True,
            "pruned_terms": pruned,
            "reindexed": "passages_by_embedding",
            "vacuumed": True,
            "seconds": round(time.perf_counter() - started, 3),
        }

    # -- the rest ----------------------------------------------------------------------------

    def describe(self) -> dict[str, Any]:
        with self.view() as view:
            size = view._rows(
                "SELECT pg_total_relation_size('{schema}.passages'::regclass)"
                " + pg_total_relation_size('{schema}.postings'::regclass)"
                " + pg_total_relation_size('{schema}.sentences'::regclass)"
                " + pg_total_relation_size('{schema}.documents'::regclass)"
            )[0][0]
            server = view._rows("SHOW server_version")[0][0]
            return {
                "backend": "postgresql",
                "location": self.location,
                "read_location": self._read_where.display,
                "schema_version": schema.SCHEMA_VERSION,
                "server_version": server,
                "version": view.version,
                "documents": view.count_documents(),
                "passages": view.count_passages(),
                "bytes": int(size),
                "model": self.model.to_dict(),
                "chunking": self.chunking.to_dict(),
                "vector_index": {
                    "kind": "hnsw",
                    "type": "halfvec",
                    "m": schema.HNSW_M,
                    "ef_construction": schema.HNSW_EF_CONSTRUCTION,
                    "ef_search": self._ef_search,
                },
            }

    def close(self) -> None:
        if self._closed.is_set():
            return
        self._closed.set()
        for pool in (self._read_pool, self._write_pool):
            with suppress(Exception):
                pool.close()


def _document_row(document: DocumentUpsert, added_at: datetime) -> tuple:
    """The documents table's row of an upsert (the columns `_Writer.add` copies)."""
    meta = document.meta
    return (
        document.id,
        document.title,
        document.source,
        document.text,
        document.content_hash,
        added_at,
        len(document.passages),
        meta.published,
        meta.lang,
        meta.url,
        meta.author,
        list(meta.tags),
    )


class _Writer:
    """The statements of one write, inside its transaction, after the state row is locked."""

    def __init__(self, connection: psycopg.Connection, schema_name: str) -> None:
        self._db = connection
        self._schema = sql.Identifier(schema_name)
        row = self._execute(
            "SELECT version, documents, passages, lexical_length FROM {schema}.state FOR UPDATE"
        )
        self._state = _State(*row.fetchone())
        self._documents = self._state.documents
        self._passages = self._state.passages
        self._lexical_length = self._state.lexical_length

    def _execute(self, query: str, parameters: Sequence[Any] | dict[str, Any] = ()) -> psycopg.Cursor:
        return self._db.execute(sql.SQL(query).format(schema=self._schema), parameters)

    def delete(self, document_ids: list[str]) -> set[str]:
        """Remove documents with their passages, sentences and postings; the ids that existed."""
        if not document_ids:
            return set()
        passages, length = self._execute(
            "SELECT count(*), coalesce(sum(lexical_length), 0) FROM {schema}.passages"
            " WHERE document_id = ANY(%s)",
            (document_ids,),
        ).fetchone()
        if passages:
            self._execute(
                "UPDATE {schema}.terms t SET passages = t.passages - c.n FROM ("
                "  SELECT term, count(*) AS n FROM {schema}.postings WHERE passage_id IN"
                "  (SELECT id FROM {schema}.passages WHERE document_id = ANY(%s)) GROUP BY term"
                ") c WHERE t.term = c.term",
                (document_ids,),
            )
        deleted = {
            row[0]
            for row in self._execute(
                "DELETE FROM {schema}.documents WHERE id = ANY(%s) RETURNING id", (document_ids,)
            ).fetchall()
        }
        self._documents -= len(deleted)
        self._passages -= passages
        self._lexical_length -= length
        return deleted

    def add(self, documents: list[DocumentUpsert]) -> None:
        if not documents:
            return
        count = sum(len(d.passages) for d in documents)
        ids = (
            [
                row[0]
                for row in self._execute(
                    "SELECT nextval('{schema}.passage_ids') FROM generate_series(1, %s)", (count,)
                ).fetchall()
            ]
            if count
            else []
        )
        (added_at,) = self._execute("SELECT now()").fetchone()  # the transaction's time, for every row
        self._copy(
            "documents (id, title, source, text, content_hash, added_at, passage_count,"
            " published, lang, url, author, tags)",
            [*["text"] * 5, "timestamptz", "integer", *["text"] * 4, "text[]"],
            [_document_row(d, added_at) for d in documents],
        )
        passage_rows, posting_rows, sentence_rows = [], [], []
        frequencies: Counter[str] = Counter()
        next_id = iter(ids)
        for document in documents:
            for passage in document.passages:
                passage_id = next(next_id)
                counts, length = lexical.postings(passage.terms)
                frequencies.update(counts.keys())
                self._lexical_length += length
                passage_rows.append(
                    (passage_id, document.id, passage.start, passage.end, length, HalfVector(passage.vector))
                )
                posting_rows += [(term, passage_id, tf, length) for term, tf in counts.items()]
            sentence_rows += [
                (document.id, s.start, s.end, np.asarray(s.vector, dtype=np.float16).tobytes())
                for s in document.sentences
            ]
        self._copy(
            "passages (id, document_id, char_start, char_end, lexical_length, embedding)",
            ["bigint", "text", "integer", "integer", "integer", "halfvec"],
            passage_rows,
        )
        self._copy(
            "sentences (document_id, char_start, char_end, vector)",
            ["text", "integer", "integer", "bytea"],
            sentence_rows,
        )
        self._copy(
            "postings (term, passage_id, frequency, passage_length)",
            ["text", "bigint", "integer", "integer"],
            posting_rows,
        )
        if frequencies:
            terms = list(frequencies)
            self._execute(
                "INSERT INTO {schema}.terms (term, passages) SELECT * FROM unnest(%s::text[], %s::integer[])"
                " ON CONFLICT (term) DO UPDATE SET passages = terms.passages + EXCLUDED.passages",
                (terms, [frequencies[t] for t in terms]),
            )
        words = list(dict.fromkeys(w for d in documents for w in d.words))
        if words:
            self._execute(
                "INSERT INTO {schema}.words (word) SELECT unnest(%s::text[]) ON CONFLICT (word) DO NOTHING",
                (words,),
            )
        self._documents += len(documents)
        self._passages += count

    def _copy(self, target: str, types: list[str], rows: list[tuple]) -> None:
        if not rows:
            return
        statement = sql.SQL("COPY {schema}." + target + " FROM STDIN WITH (FORMAT BINARY)").format(
            schema=self._schema
        )
        with self._db.cursor() as cursor, cursor.copy(statement) as copy:
            copy.set_types(types)
            for row in rows:
                copy.write_row(row)

    def publish(self) -> int:
        version = self._state.version + 1
        self._execute(
            "UPDATE {schema}.state SET version = %s, documents = %s, passages = %s, lexical_length = %s,"
            " updated_at = now()",
            (version, self._documents, self._passages, self._lexical_length),
        )
        return version
