"""The local index: one directory that any number of processes read and write side by side.

    manifest.json                 format, model identity, chunking, vector index policy
    store.sqlite (+ -wal, -shm)   documents, passages, sentences, lexical index, vector log, state
    vectors-<version>-<id>.faiss  the vector checkpoint the state names
    write.lock, compact.lock      OS locks (flock)

A write takes `write.lock`, begins a SQLite transaction on the latest committed state, changes
the rows it touches (logging the passage vectors it adds and removes), and commits: its cost
follows the change, and the lock serializes writers so none replaces another's work. The
manifest is only ever rewritten under `write.lock` too. Readers, in this process or any other,
begin a read transaction per view; SQLite's WAL keeps its state fixed while writers commit, and
each view sees the latest state when it begins, so a server answers with another process's
write on its next question. Vectors logged since the checkpoint are folded into a new
checkpoint by compaction, automatically when they pile up (in the background, under
`compact.lock`) or by `qa compact`. Only a compaction deletes files: the checkpoints it replaced
and what a killed compaction left. A process killed at any point leaves the last committed
state: SQLite rolls back an unfinished transaction, and the OS frees the locks.
"""

from __future__ import annotations

import json
import logging
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
_COMPACTION_TEMPORARY = re.compile(r"^\.vectors-\d+-[0-9a-f]+\.faiss\.\d+\.tmp$")
_MANIFEST_TEMPORARY = re.compile(r"^\.manifest\.json\.(\d+)\.tmp$")
FORMAT_2_FILE = re.compile(r"^(vectors|store)-\d{6}\.(faiss|sqlite)")
# Compaction is due when the vectors logged since the checkpoint pass this share of the corpus
# (and this many at least): searching the logged vectors exactly is cheap up to there (figures:
# docs/benchmarks.md, "Figures behind the code's constants").
COMPACT_SHARE = 0.1
COMPACT_AT_LEAST = 2_000
# After a failed background compaction (a full disk), writes do not start another for a while:
# each would clone the whole vector index first.
_COMPACTION_RETRY_S = 60.0
_VIEW_ATTEMPTS = 20

logger = logging.getLogger("qa.index")


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


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class _Stale(Exception):
    """The view's transaction is older than what this process already loaded, or names a
    checkpoint a compaction has since replaced: begin again."""


def checkpoint_name(version: int) -> str:
    return f"vectors-{version:09d}-{secrets.token_hex(4)}.faiss"


class LocalView(IndexView):
    def __init__(
        self,
        reader: store.StoreReader,
        state: store.State,
        vectors: VectorState | None,
        chunking: ChunkingSettings,
    ) -> None:
        self._reader = reader
        self._state = state
        self._vectors = vectors
        self.version = state.version
        self.chunking = chunking
        self._filtered: dict[SearchFilter, np.ndarray] = {}

    @property
    def vectors(self) -> VectorState:
        if self._vectors is None:
            raise IndexStateError("this index was opened for listing only; open it to search")
        return self._vectors

    def dense_search(
        self, vector: np.ndarray, k: int, within: SearchFilter | None = None
    ) -> list[tuple[int, float]]:
        if within is None:
            return self.vectors.search(vector, k)
        return self.vectors.search_within(vector, k, self._passages_within(within))

    def lexical_search(
        self, terms: Sequence[str], k: int, within: SearchFilter | None = None
    ) -> list[tuple[int, float]]:
        return self._reader.lexical_search(terms, k, within)

    def _passages_within(self, within: SearchFilter) -> np.ndarray:
        """The passage ids a filter allows in this view (asked once per view and filter: the
        questions of one batch share it)."""
        if within not in self._filtered:
            self._filtered[within] = self._reader.filtered_passages(within)
        return self._filtered[within]

    def lexical_terms(self) -> list[str]:
        return self._reader.lexical_terms()

    def written_words(self, after: int = 0) -> tuple[list[str], int] | None:
        return self._reader.written_words(after)

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


def _upgrade_in_place(directory: Path) -> None:
    """Give an index written before the words table (or upgraded from format 2) its documents'
    words, and one written before metadata its metadata columns, once. The words are the
    lexical analyzer's, as at ingest. A read-only index is left as it is: the bridge then falls
    back to the stemmed terms, and documents read without metadata."""
    path = directory / store.STORE_FILE
    if not os.access(path, os.W_OK) or not os.access(directory, os.W_OK):
        return
    from qa.language import detect_language
    from qa.lexical import written_words

    with storage_errors(directory, "upgrade"):
        try:
            connection = store.connect(path)
        except sqlite3.DatabaseError:
            return  # a damaged store: opening its first view reports it, with the hint to rebuild
        try:
            if not store.words_missing(connection) and not store.metadata_missing(connection):
                return
            with file_lock(directory / WRITE_LOCK):
                if store.metadata_missing(connection):
                    store.add_metadata(connection, detect_language)
                if store.words_missing(connection):
                    store.add_words(connection, written_words)
        except sqlite3.DatabaseError:
            return
        finally:
            connection.close()


class LocalIndex(IndexBackend):
    """A local index directory (see the module docstring); safe to share between processes."""

    def __init__(
        self,
        directory: Path,
        model: ModelIdentity,
        manifest: dict[str, Any],
        requested_kind: str | None,
        *,
        searching: bool,
    ) -> None:
        self.directory = directory
        self.location = str(directory)
        self.model = model
        self.chunking = ChunkingSettings(**manifest["chunking"])
        self._requested_kind = requested_kind
        self.vector_policy = vector_policy(requested_kind, manifest.get("vector_index"))
        self._searching = searching
        self._store_path = directory / store.STORE_FILE
        self._idle: queue.SimpleQueue[sqlite3.Connection] = queue.SimpleQueue()
        self._connections: list[sqlite3.Connection] = []
        self._connections_lock = threading.Lock()
        self._vectors: VectorState | None = None
        self._vectors_lock = threading.Lock()
        self._writer_lock = threading.Lock()
        self._compaction_lock = threading.Lock()
        self._compaction: threading.Thread | None = None
        self._compaction_failed_at = 0.0
        self._has_metadata: bool | None = None  # whether the store has the metadata columns

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
        searching: bool = True,
    ) -> LocalIndex:
        """Open the index at `directory` (creating it when `create`). `vector_kind`: auto (the
        default), flat, ivf or hnsw (see `VectorIndexPolicy`); it takes effect at the next
        compaction. Without `searching`, views do not load the vectors (listing, export, removal)."""
        # Absolute from here on: messages name the folder meant, whatever the working directory.
        directory = Path(directory).absolute()
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
        _upgrade_in_place(directory)
        if model is None:
            model = ModelIdentity(**manifest["model"])
        model.check(manifest["model"], str(directory))
        index = cls(directory, model, manifest, vector_kind, searching=searching)
        try:
            if manifest["model"]["fingerprint"] != model.fingerprint:
                # Recorded under the fingerprint of an older version: record today's, so later
                # versions need not know the old one.
                index._update_manifest({"model": manifest["model"] | {"fingerprint": model.fingerprint}})
            with index.view():  # a damaged index fails here, not at the first question
                pass
        except BaseException:
            index.close()
            raise
        return index

    @staticmethod
    def _create(
        directory: Path, model: ModelIdentity, chunking: ChunkingSettings, policy: VectorIndexPolicy
    ) -> None:
        # Nothing is published until the manifest exists: files of an earlier failed attempt go.
        for leftover in directory.glob(f"{store.STORE_FILE}*"):
            leftover.unlink()
        vectors = FaissBackend(model.dimension, policy.kind_for(0))
        checkpoint = checkpoint_name(0)
        vectors.save(directory / checkpoint)
        store.create(directory / store.STORE_FILE, checkpoint)
        manifest = {
            "format_version": FORMAT_VERSION,
            "model": model.to_dict(),
            "chunking": chunking.to_dict(),
            "vector_index": vectors.describe() | policy.to_dict(),
            "created_at": time.time(),
        }
        write_json_atomically(directory / MANIFEST, manifest)

    def _update_manifest(self, changes: dict[str, Any]) -> None:
        """Rewrite the manifest with `changes`, under the write lock, from what is on disk now."""
        with storage_errors(self.directory, "update"), file_lock(self.directory / WRITE_LOCK):
            manifest = read_manifest(self.directory / MANIFEST)
            if any(manifest.get(key) != value for key, value in changes.items()):
                write_json_atomically(self.directory / MANIFEST, manifest | changes)

    # -- reading -----------------------------------------------------------------------------

    def _connection(self, *, for_reading: bool = False) -> sqlite3.Connection:
        with suppress(queue.Empty):
            return self._idle.get_nowait()
        if not self._store_path.exists():
            raise IndexStateError(f"the store {self._store_path} is missing. {_rebuild_hint(self.directory)}")
        try:
            connection = store.connect(self._store_path)
        except sqlite3.OperationalError:
            if for_reading and self._readable_as_immutable():
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

    def _readable_as_immutable(self) -> bool:
        """On a read-only mount, when no write is waiting in the WAL (reading the main file alone
        would then miss committed writes)."""
        wal = self._store_path.with_name(self._store_path.name + "-wal")
        return _on_read_only_filesystem(self.directory) and (not wal.exists() or wal.stat().st_size == 0)

    def _release(self, connection: sqlite3.Connection) -> None:
        """Back to the pool, unless it cannot serve the next view as a fresh one."""
        if isinstance(connection, store.ImmutableConnection) or connection.in_transaction:
            with self._connections_lock:
                if connection in self._connections:
                    self._connections.remove(connection)
            with suppress(sqlite3.Error):
                connection.close()
        else:
            self._idle.put(connection)

    def view(self) -> Iterator[LocalView]:
        return self._view(with_vectors=self._searching)

    @contextmanager
    def _view(self, *, with_vectors: bool) -> Iterator[LocalView]:
        with storage_errors(self.directory, "read"):
            connection = self._connection(for_reading=True)
        reader = store.StoreReader(connection, self._read_errors, metadata=self._metadata_kept(connection))
        try:
            with self._read_errors():
                state, vectors = self._begin_read(connection, with_vectors)
            yield LocalView(reader, state, vectors, self.chunking)
        finally:
            # Cursors a caller left unfinished would keep the read snapshot past the commit.
            reader.close()
            if connection.in_transaction:
                with suppress(sqlite3.Error):
                    connection.execute("COMMIT")  # ends the read transaction
            self._release(connection)

    def _metadata_kept(self, connection: sqlite3.Connection) -> bool:
        """Whether the store has the metadata columns (all but a read-only index written before
        them): asked once, since opening adds them wherever it can."""
        if self._has_metadata is None:
            try:
                self._has_metadata = store.has_metadata(connection)
            except sqlite3.Error:
                return True  # a damaged store: the view's first query reports it
        return self._has_metadata

    @contextmanager
    def _read_errors(self) -> Iterator[None]:
        """Database errors of a read as the project's: damage to the file, or the disk's refusal."""
        with storage_errors(self.directory, "read"):
            try:
                yield
            except sqlite3.DatabaseError as exc:
                if not isinstance(exc, sqlite3.OperationalError):
                    raise self._corrupt_store(exc) from exc
                raise

    def _begin_read(
        self, connection: sqlite3.Connection, with_vectors: bool
    ) -> tuple[store.State, VectorState | None]:
        missing = ""
        for _ in range(_VIEW_ATTEMPTS):
            connection.execute("BEGIN")
            try:
                state = store.read_state(connection)
                return state, self._vectors_for(connection, state) if with_vectors else None
            except _Stale as stale:
                missing = str(stale)
                connection.execute("COMMIT")
            except BaseException:
                store.rollback_quietly(connection)
                raise
        if missing:
            raise IndexStateError(f"the vector file {missing} is missing. {_rebuild_hint(self.directory)}")
        raise IndexStateError(
            f"could not read a consistent state of the index at {self.directory}; try again"
        )

    def _corrupt_store(self, exc: sqlite3.DatabaseError) -> IndexStateError:
        return IndexStateError(
            f"the store {self._store_path} is corrupt ({exc}). {_rebuild_hint(self.directory)}"
        )

    def _vectors_for(self, connection: sqlite3.Connection, state: store.State) -> VectorState:
        """The vectors as of `state` (read in `connection`'s transaction), loaded or advanced."""
        loaded = self._vectors
        if loaded is not None and (loaded.checkpoint, loaded.version) == (state.checkpoint, state.version):
            return loaded
        fresh = None
        if loaded is None or loaded.checkpoint != state.checkpoint:
            # Read outside the lock (a million vectors take seconds): other threads go on
            # answering from the state they have.
            fresh = self._load_checkpoint(state)
        with self._vectors_lock:
            current = self._vectors
            if current is not None and (current.version, current.checkpoint_version) > (
                state.version,
                state.checkpoint_version,
            ):
                raise _Stale  # another thread moved on: a newer transaction sees at least that
            if current is not None and current.checkpoint == state.checkpoint:
                vectors = current
            else:
                vectors = fresh or self._load_checkpoint(state)
            if vectors.version < state.version:
                changes = store.vector_log(connection, vectors.version, state.version)
                vectors = vectors.advanced(state.version, changes)
            self._vectors = vectors
            return vectors

    def _load_checkpoint(self, state: store.State) -> VectorState:
        path = self.directory / state.checkpoint
        try:
            return VectorState.load(path, self.model.dimension, state.checkpoint_version)
        except (FileNotFoundError, RuntimeError, ValueError) as exc:
            if not path.exists():
                raise _Stale(path) from exc  # a compaction replaced it since this transaction began
            raise IndexStateError(
                f"the vector file {path} is corrupt. {_rebuild_hint(self.directory)}"
            ) from exc

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
            except BaseException:
                store.rollback_quietly(connection)
                raise
            finally:
                self._release(connection)
        self._compact_if_due()
        return result

    def _compact_if_due(self) -> None:
        """Start a background compaction when the log has grown past its share. Never fails the
        write that asked: that write is committed."""
        if time.monotonic() - self._compaction_failed_at < _COMPACTION_RETRY_S:
            return
        try:
            connection = self._connection()
            try:
                state = store.read_state(connection)
                due = store.vector_log_size(connection) > max(
                    COMPACT_AT_LEAST, COMPACT_SHARE * state.passages
                )
            finally:
                self._release(connection)
        except (sqlite3.Error, OSError, IndexStateError):
            logger.warning("could not check whether %s needs a compaction", self.directory, exc_info=True)
            return
        if not due:
            return
        with self._compaction_lock:
            if self._compaction is not None and self._compaction.is_alive():
                return
            self._compaction = threading.Thread(
                target=self._compact_in_background, name="qa-index-compaction", daemon=True
            )
            self._compaction.start()

    def _compact_in_background(self) -> None:
        try:
            self.compact(wait=False)
        except Exception:
            self._compaction_failed_at = time.monotonic()
            logger.warning("background compaction of %s failed; writes go on", self.directory, exc_info=True)

    def compact(self, *, wait: bool = True) -> dict[str, Any]:
        """Write a new vector checkpoint holding every logged change, then remove the old one.

        Writers go on while it is built; the switch to it takes the write lock for a moment.
        With `wait` false, returns at once when another process is compacting.
        """
        started = time.perf_counter()
        with (
            storage_errors(self.directory, "compact"),
            file_lock(self.directory / COMPACT_LOCK, blocking=wait) as taken,
        ):
            if not taken:
                return {"compacted": False, "reason": "another process is compacting"}
            with self._view(with_vectors=True) as view:
                current = view.vectors
            policy = vector_policy(
                self._requested_kind, read_manifest(self.directory / MANIFEST).get("vector_index")
            )
            vectors = current.base
            if current.pending:
                vectors = vectors.copy()
                vectors.delete(np.fromiter(current.removed, dtype=np.int64, count=len(current.removed)))
                vectors.add(*current.recent())
            vectors = vectors.adapted(policy)
            if vectors is current.base:
                removed = self._remove_unused_files(keep=current.checkpoint)
                return {"compacted": False, "reason": "nothing to fold", "removed_files": removed}
            name = self._write_checkpoint(vectors, current.version)
            self._update_manifest({"vector_index": vectors.describe() | policy.to_dict()})
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

    def _write_checkpoint(self, vectors: FaissBackend, version: int) -> str:
        """Save `vectors` as the checkpoint of `version` and switch the store to it."""
        name = checkpoint_name(version)
        temporary = self.directory / f".{name}.{os.getpid()}.tmp"
        try:
            vectors.save(temporary)
            os.replace(temporary, self.directory / name)
        finally:
            temporary.unlink(missing_ok=True)
        fsync_dir(self.directory)
        try:
            with file_lock(self.directory / WRITE_LOCK):
                connection = store.connect(self._store_path)
                try:
                    connection.execute("BEGIN IMMEDIATE")
                    store.record_checkpoint(connection, name, version)
                    connection.execute("COMMIT")
                finally:
                    store.rollback_quietly(connection)
                    connection.close()
        except BaseException:
            (self.directory / name).unlink(missing_ok=True)
            raise
        return name

    def _remove_unused_files(self, keep: str) -> list[str]:
        """Checkpoints other than `keep`, and files a killed compaction, writer or upgrade left.

        Called with the compaction lock held, after the store names `keep`: no other process
        writes these files now, and a reader that still wanted an old checkpoint begins again.
        """
        removed = []
        for path in self.directory.iterdir():
            name = path.name
            manifest_temporary = _MANIFEST_TEMPORARY.match(name)
            if (
                (_CHECKPOINT_FILE.match(name) and name != keep)
                or _COMPACTION_TEMPORARY.match(name)
                or FORMAT_2_FILE.match(name)
                or (manifest_temporary and not _process_alive(int(manifest_temporary.group(1))))
            ):
                path.unlink(missing_ok=True)
                removed.append(name)
        return removed

    # -- the rest ----------------------------------------------------------------------------

    def describe(self) -> dict[str, Any]:
        with self._view(with_vectors=True) as view:
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
        with self._compaction_lock:
            compaction = self._compaction
        if compaction is not None:
            compaction.join()
        with self._connections_lock:
            for connection in self._connections:
                with suppress(sqlite3.Error):
                    connection.close()
            self._connections.clear()
