"""The SQLite file of a local index: documents, passages, sentence vectors, the FTS5 lexical
index, the vector log and the index state, changed in place one transaction per write.

WAL mode lets any number of readers, in any process, keep the state they began with while a
writer commits the next one; a reader's transaction sees one committed state from its first
query to its last. The vector log holds every passage vector added (and every passage id
deleted) since the last vector checkpoint, so a write costs what it changes; the checkpoint
file holds the rest (see `qa.index.local.vectors`).
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, suppress
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import numpy as np

from qa.filters import SearchFilter
from qa.index.base import DocumentUpsert, SentenceVector, StoredDocument, StoredPassage
from qa.metadata import Metadata

STORE_FILE = "store.sqlite"
# 4 bound variables a passage: 200 stay far below SQLite's smallest limit (999 before 3.32).
_PASSAGES_PER_QUERY = 200
_IDS_PER_QUERY = 500
BUSY_TIMEOUT_S = 60.0
WAL_SIZE_LIMIT = 32 * 2**20

# Distinct words as written (not stemmed), for the cross-script bridge. Never deleted: a word of
# a removed document costs at most a lexical term that finds nothing. Added to indexes of format 3
# written before it by `add_words` (readers of those ignore the table).
WORDS_SCHEMA = """
CREATE TABLE words (id INTEGER PRIMARY KEY, word TEXT NOT NULL UNIQUE);
"""
# Document metadata (`qa.metadata`), and the tags one row each so that a tag filter is an index
# lookup. Added to indexes written before it by `add_metadata`; until then (a read-only mount)
# readers see empty metadata.
METADATA_COLUMNS = ("published", "lang", "url", "author", "tags")
METADATA_SCHEMA = """
ALTER TABLE documents ADD COLUMN published TEXT;
ALTER TABLE documents ADD COLUMN lang TEXT;
ALTER TABLE documents ADD COLUMN url TEXT;
ALTER TABLE documents ADD COLUMN author TEXT;
ALTER TABLE documents ADD COLUMN tags TEXT NOT NULL DEFAULT '[]';  -- JSON list, in the given order
CREATE INDEX documents_by_published ON documents(published);
CREATE INDEX documents_by_source ON documents(source);
CREATE TABLE document_tags (
    document_id TEXT NOT NULL REFERENCES documents(id) ON DELETE CASCADE,
    tag TEXT NOT NULL
);
CREATE INDEX document_tags_by_tag ON document_tags(tag);
CREATE INDEX document_tags_by_document ON document_tags(document_id);
"""
SCHEMA = (
    """
CREATE TABLE state (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    version INTEGER NOT NULL,          -- one more with every write
    next_passage_id INTEGER NOT NULL,  -- ids are never reused: the vector log names them
    checkpoint TEXT NOT NULL,          -- the vector file holding every vector up to ...
    checkpoint_version INTEGER NOT NULL,
    documents INTEGER NOT NULL,
    passages INTEGER NOT NULL,
    updated_at REAL NOT NULL
);
CREATE TABLE documents (
    id TEXT PRIMARY KEY,
    title TEXT NOT NULL,
    source TEXT NOT NULL,
    text TEXT NOT NULL,
    content_hash TEXT NOT NULL,
    added_at REAL NOT NULL
);
CREATE TABLE passages (
    id INTEGER PRIMARY KEY,
    document_id TEXT NOT NULL REFERENCES documents(id) ON DELETE CASCADE,
    start INTEGER NOT NULL,
    end INTEGER NOT NULL
);
CREATE INDEX passages_by_document ON passages(document_id);
CREATE TABLE sentences (
    document_id TEXT NOT NULL REFERENCES documents(id) ON DELETE CASCADE,
    start INTEGER NOT NULL,
    end INTEGER NOT NULL,
    vector BLOB NOT NULL
);
CREATE INDEX sentences_by_document ON sentences(document_id, start);
-- Terms are normalized and stemmed before they reach FTS5.
CREATE VIRTUAL TABLE lexical USING fts5(body, tokenize = 'unicode61 remove_diacritics 2');
-- Passage vectors added (vector) or removed (NULL) since the checkpoint, in order.
CREATE TABLE vector_log (
    seq INTEGER PRIMARY KEY,
    version INTEGER NOT NULL,
    passage_id INTEGER NOT NULL,
    vector BLOB
);
CREATE INDEX vector_log_by_version ON vector_log(version);
"""
    + WORDS_SCHEMA
    + METADATA_SCHEMA
)


@dataclass(frozen=True)
class State:
    version: int
    next_passage_id: int
    checkpoint: str
    checkpoint_version: int
    documents: int
    passages: int
    updated_at: float


def connect(path: Path) -> sqlite3.Connection:
    """A connection in autocommit mode: transactions are begun and ended explicitly."""
    connection = sqlite3.connect(
        str(path), check_same_thread=False, isolation_level=None, timeout=BUSY_TIMEOUT_S
    )
    connection.execute("PRAGMA foreign_keys = ON")
    # FULL: a write acknowledged to a user survives a power cut, not only a crash.
    connection.execute("PRAGMA synchronous = FULL")
    # The WAL is reused after each checkpoint; without a limit it would keep the size of the
    # largest write ever made.
    connection.execute(f"PRAGMA journal_size_limit = {WAL_SIZE_LIMIT}")
    return connection


class ImmutableConnection(sqlite3.Connection):
    """A read-only connection to a file on read-only media (see `LocalIndex._connection`)."""


def connect_immutable(path: Path) -> sqlite3.Connection:
    uri = f"file:{quote(str(path.resolve()))}?mode=ro&immutable=1"
    return sqlite3.connect(
        uri, uri=True, check_same_thread=False, isolation_level=None, factory=ImmutableConnection
    )


def create(path: Path, checkpoint: str) -> None:
    """A new store file holding an empty index whose vectors are in `checkpoint`."""
    connection = connect(path)
    try:
        connection.execute("PRAGMA journal_mode = WAL")
        connection.executescript(f"BEGIN; {SCHEMA} COMMIT;")
        connection.execute("INSERT INTO state VALUES (1, 0, 1, ?, 0, 0, 0, ?)", (checkpoint, time.time()))
    finally:
        connection.close()


def words_missing(connection: sqlite3.Connection) -> bool:
    """Whether the index lacks the words of its documents: written before the words table, or
    upgraded from format 2 (which creates it empty)."""
    if not _has_table(connection, "words"):
        return True
    return connection.execute("SELECT NOT EXISTS (SELECT 1 FROM words)").fetchone()[0] and bool(
        connection.execute("SELECT EXISTS (SELECT 1 FROM documents)").fetchone()[0]
    )


def add_words(connection: sqlite3.Connection, words_of: Callable[[str], Iterable[str]]) -> None:
    """Create and fill the words table from the documents' titles and texts, in one transaction."""
    connection.execute("BEGIN IMMEDIATE")
    try:
        if not _has_table(connection, "words"):
            connection.execute(WORDS_SCHEMA)
        rows = connection.execute("SELECT title, text FROM documents ORDER BY rowid")
        for title, text in rows:
            connection.executemany(
                "INSERT OR IGNORE INTO words (word) VALUES (?)", [(w,) for w in words_of(f"{title}\n{text}")]
            )
        connection.execute("COMMIT")
    except BaseException:
        rollback_quietly(connection)
        raise


def metadata_missing(connection: sqlite3.Connection) -> bool:
    """Whether the documents table lacks the metadata columns (written before them)."""
    return not has_metadata(connection)


def has_metadata(connection: sqlite3.Connection) -> bool:
    columns = {row[1] for row in connection.execute("PRAGMA table_info(documents)")}
    return set(METADATA_COLUMNS) <= columns


def add_metadata(connection: sqlite3.Connection, language_of: Callable[[str], str | None]) -> None:
    """Add the metadata columns and the tags table, and each document's language detected from
    its text as ingest does (a `lang` filter then sees it, and re-ingesting it finds nothing
    changed), in one transaction."""
    connection.execute("BEGIN IMMEDIATE")
    try:
        if metadata_missing(connection):
            for statement in METADATA_SCHEMA.split(";"):
                if statement.strip():
                    connection.execute(statement)
            rows = connection.execute("SELECT id, text FROM documents").fetchall()
            found = [(language_of(text), document_id) for document_id, text in rows]
            connection.executemany(
                "UPDATE documents SET lang = ? WHERE id = ?", [row for row in found if row[0] is not None]
            )
        connection.execute("COMMIT")
    except BaseException:
        rollback_quietly(connection)
        raise


def _has_table(connection: sqlite3.Connection, name: str) -> bool:
    found = connection.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,))
    return found.fetchone() is not None


def rollback_quietly(connection: sqlite3.Connection) -> None:
    """Roll back what is still open. SQLite has already rolled back after some errors (a full
    disk), and an error from a second rollback would hide the first one."""
    if connection.in_transaction:
        with suppress(sqlite3.Error):
            connection.execute("ROLLBACK")


def read_state(connection: sqlite3.Connection) -> State:
    row = connection.execute(
        "SELECT version, next_passage_id, checkpoint, checkpoint_version, documents, passages, updated_at"
        " FROM state"
    ).fetchone()
    return State(*row)


def vector_log(connection: sqlite3.Connection, after: int, upto: int) -> Iterator[tuple[int, bytes | None]]:
    """(passage id, float32 vector bytes or None for a removal) logged in versions (after, upto]."""
    yield from connection.execute(
        "SELECT passage_id, vector FROM vector_log WHERE version > ? AND version <= ? ORDER BY seq",
        (after, upto),
    )


def vector_log_size(connection: sqlite3.Connection) -> int:
    return connection.execute("SELECT count(*) FROM vector_log").fetchone()[0]


class StoreReader:
    """Read queries on a connection that is inside a read transaction.

    `errors` wraps every query (the backend maps database errors there). Cursors of unfinished
    iterations are closed by `close()`: left open, they would hold the read snapshot.
    """

    def __init__(
        self,
        connection: sqlite3.Connection,
        errors: Callable[[], AbstractContextManager[None]],
        *,
        metadata: bool = True,
    ) -> None:
        self._db = connection
        self._errors = errors
        self._cursors: list[sqlite3.Cursor] = []
        # Without the metadata columns (an old index on a read-only mount) documents read with
        # none, and a filter on it matches what it can: ids and sources.
        self._metadata = metadata
        self._meta_columns = (
            "d.published, d.lang, d.url, d.author, d.tags" if metadata else "NULL, NULL, NULL, NULL, '[]'"
        )

    def _rows(self, sql: str, parameters: Sequence[object] = ()) -> list[tuple]:
        with self._errors():
            return self._db.execute(sql, parameters).fetchall()

    def _iterate(self, sql: str) -> Iterator[tuple]:
        cursor = self._db.cursor()
        self._cursors.append(cursor)
        with self._errors():
            cursor.execute(sql)
            while rows := cursor.fetchmany(256):
                yield from rows

    def close(self) -> None:
        for cursor in self._cursors:
            with suppress(sqlite3.Error):
                cursor.close()
        self._cursors.clear()

    def content_hashes(self) -> dict[str, str]:
        return dict(self._rows("SELECT id, content_hash FROM documents"))

    def document(self, document_id: str) -> StoredDocument | None:
        rows = self._rows(
            "SELECT d.id, d.title, d.source, d.text, d.content_hash,"
            f" (SELECT count(*) FROM passages p WHERE p.document_id = d.id), {self._meta_columns}"
            " FROM documents d WHERE d.id = ?",
            (document_id,),
        )
        return _stored_document(rows[0]) if rows else None

    def list_documents(self, offset: int, limit: int) -> list[StoredDocument]:
        rows = self._rows(
            "SELECT d.id, d.title, d.source, '', d.content_hash,"
            f" (SELECT count(*) FROM passages p WHERE p.document_id = d.id), {self._meta_columns}"
            " FROM documents d ORDER BY d.id LIMIT ? OFFSET ?",
            (limit, offset),
        )
        return [_stored_document(row) for row in rows]

    def iter_documents(self) -> Iterator[StoredDocument]:
        for row in self._iterate(
            "SELECT d.id, d.title, d.source, d.text, d.content_hash,"
            f" (SELECT count(*) FROM passages p WHERE p.document_id = d.id), {self._meta_columns}"
            " FROM documents d ORDER BY d.id"
        ):
            yield _stored_document(row)

    def iter_passages(self) -> Iterator[StoredPassage]:
        for row in self._iterate("SELECT id, document_id, start, end FROM passages ORDER BY id"):
            yield StoredPassage(*row)

    def documents(self, ids: Iterable[str]) -> dict[str, StoredDocument]:
        rows = self._rows_by_id(
            "SELECT d.id, d.title, d.source, d.text, d.content_hash, 0,"
            f" {self._meta_columns} FROM documents d",
            set(ids),
            column="d.id",
        )
        return {row[0]: _stored_document(row) for row in rows}

    def passages(self, ids: Iterable[int]) -> dict[int, StoredPassage]:
        rows = self._rows_by_id("SELECT id, document_id, start, end FROM passages", [int(i) for i in ids])
        return {row[0]: StoredPassage(*row) for row in rows}

    def _rows_by_id(self, select: str, ids: Iterable[object], column: str = "id") -> list[tuple]:
        """`select ... WHERE id IN (ids)`, in chunks that stay within SQLite's bound variables."""
        wanted, rows = list(ids), []
        for first in range(0, len(wanted), _IDS_PER_QUERY):
            chunk = wanted[first : first + _IDS_PER_QUERY]
            rows += self._rows(f"{select} WHERE {column} IN ({','.join('?' * len(chunk))})", chunk)
        return rows

    def filtered_passages(self, within: SearchFilter) -> np.ndarray:
        """The ids (int64, ascending) of every passage of a document that matches `within`."""
        where, parameters = self._filter_sql(within)
        rows = self._rows(
            "SELECT p.id FROM passages p JOIN documents d ON d.id = p.document_id"
            f" WHERE {where} ORDER BY p.id",
            parameters,
        )
        return np.fromiter((row[0] for row in rows), dtype=np.int64, count=len(rows))

    def _filter_sql(self, within: SearchFilter) -> tuple[str, list[object]]:
        """The WHERE condition on documents `d` that `within` means, and its bound values."""
        # Each list goes as one bound JSON array read by json_each: any number of values in one variable.
        listed = "(SELECT value FROM json_each(?))"
        primary_lang = "CASE WHEN instr(d.lang, '-') > 0 THEN substr(d.lang, 1, instr(d.lang, '-') - 1) END"
        clauses: list[str] = []
        parameters: list[object] = []
        metadata_filters = (within.tags, within.langs, within.published_after, within.published_before)
        if not self._metadata and any(value is not None for value in metadata_filters):
            return "0", []  # no document of an index without metadata has any
        for values, condition in (
            (within.documents, f"d.id IN {listed}"),
            (within.sources, f"d.source IN {listed}"),
            (within.tags, f"d.id IN (SELECT document_id FROM document_tags WHERE tag IN {listed})"),
            # "ar" also matches the regional "ar-sa" a Word file may give (the array bound twice).
            (within.langs, f"(d.lang IN {listed} OR {primary_lang} IN {listed})"),
        ):
            if values is not None:
                clauses.append(condition)
                parameters += [json.dumps(list(values))] * condition.count("?")
        if within.published_after is not None:
            clauses.append("d.published >= ?")
            parameters.append(within.published_after)
        if within.published_before is not None:
            clauses.append("d.published < ?")
            parameters.append(within.published_before)
        return " AND ".join(clauses) or "1", parameters

    def sentences(self, passages: Sequence[StoredPassage]) -> dict[int, list[SentenceVector]]:
        """The sentences of many passages in one query per 200 (a question looks at ~50)."""
        found: dict[int, list[SentenceVector]] = {p.id: [] for p in passages}
        for first in range(0, len(passages), _PASSAGES_PER_QUERY):
            chunk = passages[first : first + _PASSAGES_PER_QUERY]
            rows_wanted = ",".join("(?,?,?,?)" for _ in chunk)
            values = [value for p in chunk for value in (p.id, p.document_id, p.start, p.end)]
            for passage_id, start, end, vector in self._rows(
                f"WITH wanted(passage, document, first, last) AS (VALUES {rows_wanted})"
                " SELECT wanted.passage, sentences.start, sentences.end, sentences.vector"
                " FROM wanted JOIN sentences ON sentences.document_id = wanted.document"
                " AND sentences.start >= wanted.first AND sentences.end <= wanted.last"
                " ORDER BY wanted.passage, sentences.start",
                values,
            ):
                vector = np.frombuffer(vector, dtype=np.float16).astype(np.float32)
                found[passage_id].append(SentenceVector(start, end, vector))
        return found

    def lexical_terms(self) -> list[str]:
        # fts5vocab reads the index's own term list; a temp table costs this connection nothing
        # on disk and sees the same read transaction.
        with self._errors():
            self._db.execute(
                "CREATE VIRTUAL TABLE IF NOT EXISTS temp.lexical_terms"
                " USING fts5vocab(main, 'lexical', 'row')"
            )
        return [term for (term,) in self._rows("SELECT term FROM temp.lexical_terms")]

    def written_words(self, after: int) -> tuple[list[str], int] | None:
        with self._errors():
            if not _has_table(self._db, "words"):
                return None
        rows = self._rows("SELECT id, word FROM words WHERE id > ? ORDER BY id", (after,))
        return [word for _, word in rows], max((row[0] for row in rows), default=after)

    def lexical_search(
        self, terms: Sequence[str], k: int, within: SearchFilter | None = None
    ) -> list[tuple[int, float]]:
        """BM25 over the lexical index: any of `terms` (each quoted, so no FTS5 syntax gets in).
        With `within`, only passages of matching documents compete (term statistics stay those
        of the whole index, so a passage scores the same with or without a filter)."""
        query = " OR ".join('"{}"'.format(term.replace('"', '""')) for term in terms if term)
        if not query:
            return []
        if within is None:
            rows = self._rows(
                "SELECT rowid, -bm25(lexical) AS score FROM lexical WHERE lexical MATCH ?"
                " ORDER BY score DESC LIMIT ?",
                (query, k),
            )
        else:
            where, parameters = self._filter_sql(within)
            rows = self._rows(
                "SELECT lexical.rowid, -bm25(lexical) AS score FROM lexical"
                " JOIN passages p ON p.id = lexical.rowid JOIN documents d ON d.id = p.document_id"
                f" WHERE lexical MATCH ? AND {where} ORDER BY score DESC LIMIT ?",
                (query, *parameters, k),
            )
        return [(int(rowid), float(score)) for rowid, score in rows]


class StoreWriter:
    """The changes of one write, on a connection inside `BEGIN IMMEDIATE`."""

    def __init__(self, connection: sqlite3.Connection) -> None:
        self._db = connection
        self.state = read_state(connection)
        self.version = self.state.version + 1
        self._next_id = self.state.next_passage_id
        # Kept as the rows change: counting them would cost O(corpus) a write.
        self._documents = self.state.documents
        self._passages = self.state.passages

    def delete_document(self, document_id: str) -> bool:
        """Remove a document with its passages, sentences, lexical rows and vectors."""
        ids = [
            row[0]
            for row in self._db.execute("SELECT id FROM passages WHERE document_id = ?", (document_id,))
        ]
        self._db.executemany("DELETE FROM lexical WHERE rowid = ?", [(i,) for i in ids])
        self._db.executemany(
            "INSERT INTO vector_log (version, passage_id, vector) VALUES (?, ?, NULL)",
            [(self.version, i) for i in ids],
        )
        deleted = self._db.execute("DELETE FROM documents WHERE id = ?", (document_id,)).rowcount > 0
        self._documents -= deleted
        self._passages -= len(ids)
        return deleted

    def add_document(self, document: DocumentUpsert, added_at: float) -> None:
        db = self._db
        ids = range(self._next_id, self._next_id + len(document.passages))
        self._next_id += len(document.passages)
        self._documents += 1
        self._passages += len(document.passages)
        meta = document.meta
        db.execute(
            "INSERT INTO documents (id, title, source, text, content_hash, added_at,"
            " published, lang, url, author, tags) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
            (
                *(document.id, document.title, document.source, document.text, document.content_hash),
                *(added_at, meta.published, meta.lang, meta.url, meta.author),
                json.dumps(list(meta.tags), ensure_ascii=False),
            ),
        )
        db.executemany(
            "INSERT INTO document_tags (document_id, tag) VALUES (?, ?)",
            [(document.id, tag) for tag in meta.tags],
        )
        db.executemany(
            "INSERT INTO passages (id, document_id, start, end) VALUES (?,?,?,?)",
            [(i, document.id, p.start, p.end) for i, p in zip(ids, document.passages, strict=True)],
        )
        db.executemany("INSERT OR IGNORE INTO words (word) VALUES (?)", [(w,) for w in document.words])
        db.executemany(
            "INSERT INTO lexical (rowid, body) VALUES (?, ?)",
            [(i, p.terms) for i, p in zip(ids, document.passages, strict=True)],
        )
        db.executemany(
            "INSERT INTO vector_log (version, passage_id, vector) VALUES (?, ?, ?)",
            [
                (self.version, i, np.ascontiguousarray(p.vector, dtype=np.float32).tobytes())
                for i, p in zip(ids, document.passages, strict=True)
            ],
        )
        db.executemany(
            "INSERT INTO sentences (document_id, start, end, vector) VALUES (?,?,?,?)",
            [
                (document.id, s.start, s.end, s.vector.astype(np.float16).tobytes())
                for s in document.sentences
            ],
        )

    def publish(self) -> int:
        """Record the new state; it becomes visible when the transaction commits."""
        self._db.execute(
            "UPDATE state SET version = ?, next_passage_id = ?, documents = ?, passages = ?, updated_at = ?",
            (self.version, self._next_id, self._documents, self._passages, time.time()),
        )
        return self.version


def _stored_document(row: Sequence) -> StoredDocument:
    """A StoredDocument from (id, title, source, text, hash, passages, published, lang, url,
    author, tags as JSON)."""
    published, lang, url, author, tags = row[6:11]
    meta = Metadata(published=published, lang=lang, url=url, author=author, tags=tuple(json.loads(tags)))
    return StoredDocument(*row[:6], meta=meta)


def record_checkpoint(connection: sqlite3.Connection, checkpoint: str, version: int) -> None:
    """Point the index at a vector file holding every vector up to `version`; drop their log."""
    connection.execute("UPDATE state SET checkpoint = ?, checkpoint_version = ?", (checkpoint, version))
    connection.execute("DELETE FROM vector_log WHERE version <= ?", (version,))
