"""The local index: one directory that any number of processes read and write side by side.

    manifest.json                 format, model identity, chunking, vector index policy
    store.sqlite (+ -wal, -shm)   documents, passages, sentences, lexical index, vector log, state
    vectors-<version>-<id>.faiss  the vector checkpoint the state names
    write.lock, compact.lock      OS locks (flock)

A write takes `write.lock`, begins a SQLite transaction on the latest committed state, changes
the rows it touches (logging the passage vectors it adds and removes), and commits: its cost
follows the change, and the lock serializes writers so none replaces another's work. Readers,
in this process or any other, begin a read transaction per view; SQLite's WAL keeps its state
fixed while writers commit, and each view sees the latest state when it begins, so a server
answers with another process's write on its next question. Vectors logged since the checkpoint
are folded into a new checkpoint by compaction, automatically when they pile up (in the
background, under `compact.lock`) or by `qa compact`. Only a compaction deletes files: the
checkpoints it replaced and what a killed compaction left. A process killed at any point leaves
the last committed state: SQLite rolls back an unfinished transaction, and the OS frees the locks.
"""

from __future__ import annotations

import json
import os
import queue
import re
import secrets
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import numpy as np

from qa.chunking import ChunkingSettings
from qa.errors import IndexStateError
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
from qa.index.local import store
from qa.index.local.faiss_index import FaissBackend, VectorIndexPolicy
from qa.index.local.files import (
    COMPACT_LOCK,
    WRITE_LOCK,
    file_lock,
    fsync_dir,
    storage_errors,
    write_json_atomically,
)
from qa.index.local.vectors import VectorState

FORMAT_VERSION = 3  # 3: state in place in SQLite (WAL), vectors as checkpoint + log
MANIFEST = "manifest.json"
_CHECKPOINT_FILE = re.compile(r"^vectors-\d+-[0-9a-f]+\.faiss$")
_STRAY_FILE = re.compile(r"^\.(vectors-\d+-[0-9a-f]+\.faiss|manifest\.json)\.\d+\.tmp$")
# Compaction is due when the vectors logged since the checkpoint pass this share of the corpus
# (and this many at least): searching the log's exact index costs ~0.1 µs a vector.
COMPACT_SHARE = 0.1
COMPACT_AT_LEAST = 2_000
_VIEW_ATTEMPTS = 20


def _rebuild_hint(directory: Path) -> str:
    return f"Rebuild the index: delete {directory} and run qa ingest PATH --index {directory}"


def vector_policy(requested: str | None, recorded: dict[str, Any] | None) -> VectorIndexPolicy:
    try:
        return VectorIndexPolicy.resolve(requested, recorded)
    except ValueError as exc:
        raise IndexStateError(
            f"{exc}. Set QA_VECTOR_INDEX to auto, flat, ivf or hnsw, and QA_VECTOR_INDEX_SWITCH_AT "
            "to a positive number of passages (or unset them)"
        ) from exc


def read_manifest(path: Path) -> dict[str, Any]:
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
        manifest["format_version"], manifest["model"]["fingerprint"], manifest["chunking"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise IndexStateError(
            f"the index manifest {path} is unreadable ({exc}). {_rebuild_hint(path.parent)}"
        ) from exc
    return manifest


def _on_read_only_filesystem(path: Path) -> bool:
    try:
        return bool(os.statvfs(path).f_flag & os.ST_RDONLY)
    except OSError:
        return False


class _Stale(Exception):
    """The view's transaction is older than what this process already loaded: begin again."""


def _checkpoint_name(version: int) -> str:
    return f"vectors-{version:09d}-{secrets.token_hex(4)}.faiss"


class LocalView(IndexView):
    def __init__(
        self, reader: store.StoreReader, state: store.State, vectors: VectorState, chunking: ChunkingSettings
    ) -> None:
        self._reader = reader
        self._state = state
        self.vectors = vectors
        self.version = state.version
        self.chunking = chunking

    def dense_search(self, vector: np.ndarray, k: int) -> list[tuple[int, float]]:
        return self.vectors.search(vector, k)

    def lexical_search(self, terms: Sequence[str], k: int) -> list[tuple[int, float]]:
        return self._reader.lexical_search(terms, k)

    def passages(self, ids: Iterable[int]) -> dict[int, StoredPassage]:
        return self._reader.passages(ids)

    def passage_vectors(self, ids: Sequence[int]) -> np.ndarray:
        return self.vectors.vectors_of(ids)

    def sentences(self, passages: Sequence[StoredPassage]) -> dict[int, list[SentenceVector]]:
        return self._reader.sentences(passages)

    def documents(self, ids: Iterable[str]) -> dict[str, StoredDocument]:
        return self._reader.documents(ids)

    def document(self, document_id: str) -> StoredDocument | None:
        return self._reader.document(document_id)

    def list_documents(self, offset: int = 0, limit: int = 100) -> list[StoredDocument]:
        return self._reader.list_documents(offset, limit)

    def iter_documents(self) -> Iterator[StoredDocument]:
        return self._reader.iter_documents()

    def iter_passages(self) -> Iterator[StoredPassage]:
        return self._reader.iter_passages()

    def count_documents(self) -> int:
        return self._state.documents

    def count_passages(self) -> int:
        return self._state.passages

    def content_hashes(self) -> dict[str, str]:
        return self._reader.content_hashes()


class LocalIndex(IndexBackend):
    """A local index directory (see the module docstring); safe to share between processes."""

    def __init__(
        self, directory: Path, model: ModelIdentity, manifest: dict[str, Any], policy: VectorIndexPolicy
    ):
        self.directory = directory
        self.location = str(directory)
        self.model = model
        self.chunking = ChunkingSettings(**manifest["chunking"])
        self.vector_policy = policy
        self._manifest = manifest
        self._store_path = directory / store.STORE_FILE
        self._idle: queue.SimpleQueue[sqlite3.Connection] = queue.SimpleQueue()
        self._connections: list[sqlite3.Connection] = []
        self._connections_lock = threading.Lock()
        self._vectors: VectorState | None = None
        self._vectors_lock = threading.Lock()
        self._writer_lock = threading.Lock()
        self._compaction: threading.Thread | None = None
        self.compaction_error: BaseException | None = None  # the last background compaction's

    # -- opening -----------------------------------------------------------------------------

    @classmethod
    def open(
        cls,
        directory: Path | str,
        model: ModelIdentity | None,
        *,
        create: bool = True,
        chunking: ChunkingSettings | None = None,
        vector_kind: str | None = None,
    ) -> LocalIndex:
        """Open the index at `directory` (creating it when `create`). `vector_kind`: auto (the
        default), flat, ivf or hnsw (see `VectorIndexPolicy`); it takes effect at the next compaction."""
        directory = Path(directory)
        manifest_path = directory / MANIFEST
        if not manifest_path.exists():
            if not create or model is None:
                raise IndexStateError(
                    f"no index at {directory}. Create one: qa ingest PATH --index {directory}"
                )
            with storage_errors(directory, "create"):
                directory.mkdir(parents=True, exist_ok=True)
                with file_lock(directory / WRITE_LOCK):
                    if not manifest_path.exists():  # another process may have created it meanwhile
                        policy = vector_policy(vector_kind, None)
                        cls._create(directory, model, chunking or ChunkingSettings(), policy)
        manifest = read_manifest(manifest_path)
        if manifest["format_version"] == 2:
            from qa.index.local.migrate import migrate_format_2

            with storage_errors(directory, "upgrade"), file_lock(directory / WRITE_LOCK):
                manifest = migrate_format_2(directory, read_manifest(manifest_path))
        if manifest["format_version"] != FORMAT_VERSION:
            raise IndexStateError(
                f"the index at {directory} has format {manifest['format_version']}, this version reads "
                f"format {FORMAT_VERSION}. {_rebuild_hint(directory)}"
            )
        if model is None:
            model = ModelIdentity(**manifest["model"])
        model.check(manifest["model"], str(directory))
        if manifest["model"]["fingerprint"] != model.fingerprint:
            manifest = cls._record_fingerprint(directory, model)
        index = cls(directory, model, manifest, vector_policy(vector_kind, manifest.get("vector_index")))
        try:
            with index.view():  # loads the vectors: a damaged index fails here, not at the first question
                pass
        except BaseException:
            index.close()
            raise
        return index

    @staticmethod
    def _record_fingerprint(directory: Path, model: ModelIdentity) -> dict[str, Any]:
        """Record today's fingerprint of the model that made the index (it was recorded under the
        fingerprint of an older version), so later versions need not know the old one."""
        with storage_errors(directory, "update"), file_lock(directory / WRITE_LOCK):
            manifest = read_manifest(directory / MANIFEST)
            manifest["model"] = manifest["model"] | {"fingerprint": model.fingerprint}
            write_json_atomically(directory / MANIFEST, manifest)
        return manifest

    @staticmethod
    def _create(
        directory: Path, model: ModelIdentity, chunking: ChunkingSettings, policy: VectorIndexPolicy
    ) -> None:
        # Nothing is published until the manifest exists: files of an earlier failed attempt go.
        for leftover in directory.glob(f"{store.STORE_FILE}*"):
            leftover.unlink()
        vectors = FaissBackend(model.dimension, policy.kind_for(0))
        checkpoint = _checkpoint_name(0)
        vectors.save(directory / checkpoint)
        store.create(directory / store.STORE_FILE, checkpoint)
        now = time.time()
        manifest = {
            "format_version": FORMAT_VERSION,
            "model": model.to_dict(),
            "chunking": chunking.to_dict(),
            "vector_index": vectors.describe() | policy.to_dict(),
            "created_at": now,
        }
        write_json_atomically(directory / MANIFEST, manifest)

    # -- reading -----------------------------------------------------------------------------

    def _connection(self, *, for_reading: bool = False) -> sqlite3.Connection:
        with suppress(queue.Empty):
            return self._idle.get_nowait()
        if not self._store_path.exists():
            raise IndexStateError(f"the store {self._store_path} is missing. {_rebuild_hint(self.directory)}")
        try:
            connection = store.connect(self._store_path)
        except sqlite3.OperationalError:
            if for_reading and _on_read_only_filesystem(self.directory):
                # WAL needs its -shm file, which a read-only mount cannot hold; nothing can
                # change the file there, so SQLite may read it as immutable. Never pooled: once
                # the disk is writable again, the next view reads the live state.
                return store.connect_immutable(self._store_path)
            raise
        except sqlite3.DatabaseError as exc:
            raise self._corrupt_store(exc) from exc
        with self._connections_lock:
            self._connections.append(connection)
        return connection

    def _release(self, connection: sqlite3.Connection) -> None:
        if isinstance(connection, store.ImmutableConnection):
            connection.close()
        else:
            self._idle.put(connection)

    @contextmanager
    def view(self) -> Iterator[LocalView]:
        with storage_errors(self.directory, "read"):
            connection = self._connection(for_reading=True)
        try:
            with storage_errors(self.directory, "read"):
                state, vectors = self._begin_read(connection)
            try:
                yield LocalView(store.StoreReader(connection), state, vectors, self.chunking)
            finally:
                if connection.in_transaction:
                    connection.execute("COMMIT")  # ends the read transaction
        finally:
            self._release(connection)

    def _begin_read(self, connection: sqlite3.Connection) -> tuple[store.State, VectorState]:
        for _ in range(_VIEW_ATTEMPTS):
            connection.execute("BEGIN")
            try:
                state = store.read_state(connection)
                return state, self._vectors_for(connection, state)
            except _Stale:
                connection.execute("COMMIT")
            except sqlite3.DatabaseError as exc:
                connection.execute("ROLLBACK") if connection.in_transaction else None
                if isinstance(exc, sqlite3.OperationalError) and "locked" in str(exc):
                    raise
                raise self._corrupt_store(exc) from exc
            except BaseException:
                if connection.in_transaction:
                    connection.execute("ROLLBACK")
                raise
        raise IndexStateError(
            f"the vector file of the index at {self.directory} is missing. {_rebuild_hint(self.directory)}"
        )

    def _corrupt_store(self, exc: sqlite3.DatabaseError) -> IndexStateError:
        return IndexStateError(
            f"the store {self._store_path} is corrupt ({exc}). {_rebuild_hint(self.directory)}"
        )

    def _vectors_for(self, connection: sqlite3.Connection, state: store.State) -> VectorState:
        """The vectors as of `state` (read in `connection`'s transaction), loaded or advanced."""
        wanted = (state.version, state.checkpoint_version)
        loaded = self._vectors
        if loaded is not None and (loaded.version, loaded.checkpoint_version) == wanted:
            return loaded
        with self._vectors_lock:
            loaded = self._vectors
            if loaded is not None and (loaded.version, loaded.checkpoint_version) > wanted:
                raise _Stale
            if loaded is None or loaded.checkpoint != state.checkpoint:
                loaded = self._load_checkpoint(state)
            if loaded.version < state.version:
                loaded = loaded.advanced(
                    state.version, store.vector_log(connection, loaded.version, state.version)
                )
            self._vectors = loaded
            return loaded

    def _load_checkpoint(self, state: store.State) -> VectorState:
        path = self.directory / state.checkpoint
        try:
            loaded = VectorState.load(path, self.model.dimension, state.checkpoint_version)
        except (FileNotFoundError, RuntimeError) as exc:
            if not path.exists():
                raise _Stale from exc  # a compaction replaced it since this transaction began
            raise IndexStateError(
                f"the vector file {path} is corrupt. {_rebuild_hint(self.directory)}"
            ) from exc
        return loaded

    # -- writing -----------------------------------------------------------------------------

    def write(self, upserts: Sequence[DocumentUpsert] = (), deletes: Sequence[str] = ()) -> WriteResult:
        result = WriteResult()
        with (
            self._writer_lock,
            storage_errors(self.directory, "write"),
            file_lock(self.directory / WRITE_LOCK),
        ):
            connection = self._connection()
            try:
                connection.execute("BEGIN IMMEDIATE")
                writer = store.StoreWriter(connection)
                for document_id in deletes:
                    (result.removed if writer.delete_document(document_id) else result.missing).append(
                        document_id
                    )
                now = time.time()
                for document in upserts:
                    (result.replaced if writer.delete_document(document.id) else result.added).append(
                        document.id
                    )
                    writer.add_document(document, now)
                result.version = writer.publish()
                connection.execute("COMMIT")
                due = self._compaction_due(connection)
            except BaseException:
                # SQLite has already rolled back after some errors (a full disk): only roll back
                # what is still open, so the first error is the one reported.
                if connection.in_transaction:
                    with suppress(sqlite3.Error):
                        connection.execute("ROLLBACK")
                raise
            finally:
                self._release(connection)
        if due:
            self._compact_in_background()
        return result

    def _compaction_due(self, connection: sqlite3.Connection) -> bool:
        state = store.read_state(connection)
        return store.vector_log_size(connection) > max(COMPACT_AT_LEAST, COMPACT_SHARE * state.passages)

    def _compact_in_background(self) -> None:
        if self._compaction is not None and self._compaction.is_alive():
            return

        def run() -> None:
            try:
                self.compact(wait=False)
            except BaseException as exc:  # kept for describe(); the next write tries again
                self.compaction_error = exc

        self._compaction = threading.Thread(target=run, name="qa-index-compaction", daemon=True)
        self._compaction.start()

    def compact(self, *, wait: bool = True) -> dict[str, Any]:
        """Write a new vector checkpoint holding every logged change, then remove the old one.

        Writers go on meanwhile; only the final switch takes the store's write lock for a moment.
        With `wait` false, returns at once when another process is compacting.
        """
        started = time.perf_counter()
        with (
            storage_errors(self.directory, "compact"),
            file_lock(self.directory / COMPACT_LOCK, blocking=wait) as taken,
        ):
            if not taken:
                return {"compacted": False, "reason": "another process is compacting"}
            with self.view() as view:
                current = view.vectors
            vectors = current.base.copy()
            vectors.delete(np.fromiter(current.hidden, dtype=np.int64, count=len(current.hidden)))
            vectors.add(current.recent_ids, current.recent_vectors)
            vectors = vectors.adapted(self.vector_policy)
            name = _checkpoint_name(current.version)
            temporary = self.directory / f".{name}.{os.getpid()}.tmp"
            try:
                vectors.save(temporary)
                os.replace(temporary, self.directory / name)
            finally:
                temporary.unlink(missing_ok=True)
            fsync_dir(self.directory)
            connection = store.connect(self._store_path)
            try:
                connection.execute("BEGIN IMMEDIATE")
                store.record_checkpoint(connection, name, current.version)
                connection.execute("COMMIT")
            except BaseException:
                if connection.in_transaction:
                    connection.execute("ROLLBACK")
                (self.directory / name).unlink(missing_ok=True)
                raise
            finally:
                connection.close()
            self._record_vector_index(vectors)
            removed = self._remove_unused_files(keep=name)
        return {
            "compacted": True,
            "version": current.version,
            "vectors": len(vectors),
            "folded": current.pending,
            "kind": vectors.kind,
            "removed_files": removed,
            "seconds": round(time.perf_counter() - started, 3),
        }

    def _record_vector_index(self, vectors: FaissBackend) -> None:
        described = vectors.describe() | self.vector_policy.to_dict()
        if self._manifest.get("vector_index") != described:
            self._manifest = {**self._manifest, "vector_index": described}
            write_json_atomically(self.directory / MANIFEST, self._manifest)

    def _remove_unused_files(self, keep: str) -> list[str]:
        """Checkpoints other than `keep`, and files a killed compaction or writer left behind.

        Called with the compaction lock held, after the store names `keep`: no other process
        writes these files now, and a reader that still wanted an old checkpoint begins again.
        """
        removed = []
        for path in self.directory.iterdir():
            stale = _CHECKPOINT_FILE.match(path.name) and path.name != keep
            if stale or _STRAY_FILE.match(path.name):
                path.unlink(missing_ok=True)
                removed.append(path.name)
        return removed

    # -- the rest ----------------------------------------------------------------------------

    def describe(self) -> dict[str, Any]:
        with self.view() as view:
            vectors = view.vectors
            return {
                "backend": "local",
                "location": self.location,
                "format_version": FORMAT_VERSION,
                "version": view.version,
                "documents": view.count_documents(),
                "passages": view.count_passages(),
                "model": self.model.to_dict(),
                "chunking": self.chunking.to_dict(),
                "vector_index": vectors.base.describe()
                | self.vector_policy.to_dict()
                | {"checkpoint": vectors.checkpoint, "logged_since_checkpoint": vectors.pending},
            }

    def close(self) -> None:
        if self._compaction is not None:
            self._compaction.join()
        with self._connections_lock:
            for connection in self._connections:
                with suppress(sqlite3.Error):
                    connection.close()
            self._connections.clear()
