"""The SQLite store of one index generation: documents, passages, sentence vectors, lexical index.

The lexical index is an FTS5 table in the same file, so documents, passages and their lexical
entries always change together in one transaction and one generation.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

# 4 bound variables a passage: 200 stay far below SQLite's smallest limit (999 before 3.32).
_PASSAGES_PER_QUERY = 200

SCHEMA = """
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
-- Text is normalized (Arabic letter forms, diacritics) before it reaches FTS5.
CREATE VIRTUAL TABLE lexical USING fts5(body, tokenize = 'unicode61 remove_diacritics 2');
"""


@dataclass(frozen=True)
class StoredDocument:
    id: str
    title: str
    source: str
    text: str
    content_hash: str
    passages: int


@dataclass(frozen=True)
class StoredPassage:
    id: int
    document_id: str
    start: int
    end: int


@dataclass(frozen=True)
class NewPassage:
    id: int
    start: int
    end: int
    lexical_text: str


@dataclass(frozen=True)
class NewSentence:
    start: int
    end: int
    vector: np.ndarray  # float32, stored as float16


class Store:
    """One SQLite file. A lock serializes use of the shared connection across server threads."""

    def __init__(self, path: Path, connection: sqlite3.Connection) -> None:
        self.path = path
        self._db = connection
        self._lock = threading.RLock()  # re-entered by reads inside a write transaction

    @staticmethod
    def _connect(path: Path) -> sqlite3.Connection:
        connection = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        connection.execute("PRAGMA foreign_keys = ON")
        connection.execute("PRAGMA journal_mode = DELETE")
        return connection

    @classmethod
    def create(cls, path: Path) -> Store:
        connection = cls._connect(path)
        connection.executescript(SCHEMA)
        return cls(path, connection)

    @classmethod
    def open(cls, path: Path) -> Store:
        connection = cls._connect(path)
        # Fails fast on a file that is not a database or lacks our tables.
        connection.execute("SELECT count(*) FROM documents").fetchone()
        connection.execute("SELECT count(*) FROM lexical").fetchone()
        return cls(path, connection)

    def copy_to(self, path: Path) -> Store:
        """A complete copy in a new file, for the next generation to change."""
        target = self._connect(path)
        with self._lock:
            self._db.backup(target)
        return Store(path, target)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # -- reads -------------------------------------------------------------------------------

    def count_documents(self) -> int:
        with self._lock:
            return self._db.execute("SELECT count(*) FROM documents").fetchone()[0]

    def count_passages(self) -> int:
        with self._lock:
            return self._db.execute("SELECT count(*) FROM passages").fetchone()[0]

    def max_passage_id(self) -> int:
        with self._lock:
            return self._db.execute("SELECT coalesce(max(id), 0) FROM passages").fetchone()[0]

    def content_hashes(self) -> dict[str, str]:
        with self._lock:
            return dict(self._db.execute("SELECT id, content_hash FROM documents"))

    def get_document(self, document_id: str) -> StoredDocument | None:
        with self._lock:
            row = self._db.execute(
                "SELECT d.id, d.title, d.source, d.text, d.content_hash,"
                " (SELECT count(*) FROM passages p WHERE p.document_id = d.id)"
                " FROM documents d WHERE d.id = ?",
                (document_id,),
            ).fetchone()
        return StoredDocument(*row) if row else None

    def list_documents(self, offset: int = 0, limit: int = 100) -> list[StoredDocument]:
        """Documents without their text (it can be large), ordered by id."""
        with self._lock:
            rows = self._db.execute(
                "SELECT d.id, d.title, d.source, '', d.content_hash,"
                " (SELECT count(*) FROM passages p WHERE p.document_id = d.id)"
                " FROM documents d ORDER BY d.id LIMIT ? OFFSET ?",
                (limit, offset),
            ).fetchall()
        return [StoredDocument(*row) for row in rows]

    def documents_by_id(self, ids: Iterable[str]) -> dict[str, StoredDocument]:
        ids = list(set(ids))
        if not ids:
            return {}
        marks = ",".join("?" * len(ids))
        with self._lock:
            rows = self._db.execute(
                f"SELECT id, title, source, text, content_hash, 0 FROM documents WHERE id IN ({marks})", ids
            ).fetchall()
        return {row[0]: StoredDocument(*row) for row in rows}

    def passages_by_id(self, ids: Sequence[int]) -> dict[int, StoredPassage]:
        if not len(ids):
            return {}
        marks = ",".join("?" * len(ids))
        with self._lock:
            rows = self._db.execute(
                f"SELECT id, document_id, start, end FROM passages WHERE id IN ({marks})",
                [int(i) for i in ids],
            ).fetchall()
        return {row[0]: StoredPassage(*row) for row in rows}

    def sentences_within(self, passage: StoredPassage) -> list[tuple[int, int, np.ndarray]]:
        """The sentences of a passage with their vectors, in document order."""
        return self.sentences_of([passage])[passage.id]

    def sentences_of(self, passages: Sequence[StoredPassage]) -> dict[int, list[tuple[int, int, np.ndarray]]]:
        """`sentences_within` for many passages in one query (a question looks at ~50)."""
        rows = []
        for first in range(0, len(passages), _PASSAGES_PER_QUERY):
            chunk = passages[first : first + _PASSAGES_PER_QUERY]
            rows_wanted = ",".join("(?,?,?,?)" for _ in chunk)
            values = [value for p in chunk for value in (p.id, p.document_id, p.start, p.end)]
            with self._lock:
                rows += self._db.execute(
                    f"WITH wanted(passage, document, first, last) AS (VALUES {rows_wanted})"
                    " SELECT wanted.passage, sentences.start, sentences.end, sentences.vector"
                    " FROM wanted JOIN sentences ON sentences.document_id = wanted.document"
                    " AND sentences.start >= wanted.first AND sentences.end <= wanted.last"
                    " ORDER BY wanted.passage, sentences.start",
                    values,
                ).fetchall()
        found: dict[int, list[tuple[int, int, np.ndarray]]] = {p.id: [] for p in passages}
        for passage_id, start, end, vector in rows:
            found[passage_id].append((start, end, np.frombuffer(vector, dtype=np.float16).astype(np.float32)))
        return found

    def lexical_search(self, query: str, k: int) -> list[tuple[int, float]]:
        """BM25 over the lexical index; `query` is an FTS5 expression. Higher scores are better."""
        with self._lock:
            rows = self._db.execute(
                "SELECT rowid, -bm25(lexical) AS score FROM lexical WHERE lexical MATCH ?"
                " ORDER BY score DESC LIMIT ?",
                (query, k),
            ).fetchall()
        return [(int(rowid), float(score)) for rowid, score in rows]

    # -- writes (only on a generation that no reader sees yet) -------------------------------

    def transaction(self) -> _Transaction:
        return _Transaction(self)

    def add_document(
        self,
        document_id: str,
        title: str,
        source: str,
        text: str,
        content_hash: str,
        added_at: float,
        passages: Sequence[NewPassage],
        sentences: Sequence[NewSentence],
    ) -> None:
        db = self._db
        db.execute(
            "INSERT INTO documents (id, title, source, text, content_hash, added_at) VALUES (?,?,?,?,?,?)",
            (document_id, title, source, text, content_hash, added_at),
        )
        db.executemany(
            "INSERT INTO passages (id, document_id, start, end) VALUES (?,?,?,?)",
            [(p.id, document_id, p.start, p.end) for p in passages],
        )
        db.executemany(
            "INSERT INTO lexical (rowid, body) VALUES (?, ?)", [(p.id, p.lexical_text) for p in passages]
        )
        db.executemany(
            "INSERT INTO sentences (document_id, start, end, vector) VALUES (?,?,?,?)",
            [(document_id, s.start, s.end, s.vector.astype(np.float16).tobytes()) for s in sentences],
        )

    def delete_document(self, document_id: str) -> list[int]:
        """Remove a document with its passages, sentences and lexical rows; returns passage ids."""
        db = self._db
        ids = [row[0] for row in db.execute("SELECT id FROM passages WHERE document_id = ?", (document_id,))]
        db.executemany("DELETE FROM lexical WHERE rowid = ?", [(i,) for i in ids])
        db.execute("DELETE FROM documents WHERE id = ?", (document_id,))
        return ids


class _Transaction:
    """`with store.transaction():` commits on success and rolls back on any error."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def __enter__(self) -> Store:
        self._store._lock.acquire()
        self._store._db.execute("BEGIN IMMEDIATE")
        return self._store

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            self._store._db.execute("ROLLBACK" if exc_type else "COMMIT")
        finally:
            self._store._lock.release()
