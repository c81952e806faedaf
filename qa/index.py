"""An index directory: `manifest.json`, and one generation of a FAISS file plus a SQLite file.

Every write builds the next generation beside the current one (a copy of the SQLite file and
of the vectors, changed, saved, fsynced) and then replaces `manifest.json` atomically. A crash
or error at any point before that rename leaves the manifest naming the previous, complete
generation. Readers hold an immutable `Snapshot`, so they see the index before or after a
write, never half of it.
"""

from __future__ import annotations

import json
import os
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from qa.backends.base import VectorBackend
from qa.backends.faiss_backend import FaissBackend, VectorIndexPolicy, adapt_to_policy, describe
from qa.chunking import ChunkingSettings
from qa.errors import IndexStateError
from qa.store import Store

FORMAT_VERSION = 2  # 2: the lexical index holds Snowball-stemmed Arabic
MANIFEST = "manifest.json"
_RETIRED_STORE_GRACE_S = 30.0
_GENERATION_FILE = re.compile(r"^(vectors|store)-(\d{6})\.(faiss|sqlite)(-journal|-wal|-shm)?$")


def default_index_dir() -> Path:
    return Path(os.environ.get("QA_INDEX_DIR", "data/index"))


@dataclass(frozen=True)
class ModelIdentity:
    name: str
    fingerprint: str
    dimension: int


@dataclass
class Snapshot:
    """What a reader needs, fixed at one generation."""

    generation: int
    manifest: dict[str, Any]
    store: Store
    vectors: VectorBackend

    @property
    def chunking(self) -> ChunkingSettings:
        return ChunkingSettings(**self.manifest["chunking"])


def _fsync_file(path: Path) -> None:
    with open(path, "rb") as handle:
        os.fsync(handle.fileno())


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_json_atomically(path: Path, data: dict) -> None:
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(temporary, "w", encoding="utf-8") as handle:
        json.dump(data, handle, ensure_ascii=False, indent=2)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)
    _fsync_dir(path.parent)


def _file_names(generation: int) -> tuple[str, str]:
    return f"vectors-{generation:06d}.faiss", f"store-{generation:06d}.sqlite"


def _vector_policy(requested: str | None, recorded: dict[str, Any] | None) -> VectorIndexPolicy:
    try:
        return VectorIndexPolicy.resolve(requested, recorded)
    except ValueError as exc:
        raise IndexStateError(
            f"{exc}. Set QA_VECTOR_INDEX to auto, flat, ivf or hnsw, and QA_VECTOR_INDEX_SWITCH_AT "
            "to a positive number of passages (or unset them)"
        ) from exc


class Index:
    """Owns one index directory; `snapshot()` for reading, `write()` for changing it."""

    def __init__(self, directory: Path, snapshot: Snapshot, vector_policy: VectorIndexPolicy) -> None:
        self.directory = directory
        self._snapshot = snapshot
        self._write_lock = threading.Lock()
        self.vector_policy = vector_policy

    # -- opening -----------------------------------------------------------------------------

    @classmethod
    def open(
        cls,
        directory: Path | str,
        model: ModelIdentity,
        *,
        create: bool = True,
        chunking: ChunkingSettings | None = None,
        vector_kind: str | None = None,
    ) -> Index:
        """`vector_kind`: auto (the default), flat, ivf or hnsw; see `VectorIndexPolicy`. A kind
        that differs from the one on disk takes effect at the next write."""
        directory = Path(directory)
        manifest_path = directory / MANIFEST
        if not manifest_path.exists():
            if not create:
                raise IndexStateError(
                    f"no index at {directory}. Create one: qa ingest PATH --index {directory}"
                )
            policy = _vector_policy(vector_kind, None)
            return cls._create(directory, model, chunking or ChunkingSettings(), policy)
        manifest = cls._read_manifest(manifest_path)
        cls._check_model(directory, manifest, model)
        snapshot = cls._load_generation(directory, manifest)
        index = cls(directory, snapshot, _vector_policy(vector_kind, manifest.get("vector_index")))
        index._remove_stray_files()
        return index

    @staticmethod
    def _read_manifest(path: Path) -> dict[str, Any]:
        try:
            manifest = json.loads(path.read_text(encoding="utf-8"))
            manifest["generation"], manifest["model"]["fingerprint"], manifest["chunking"]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise IndexStateError(
                f"the index manifest {path} is unreadable ({exc}). Rebuild the index: delete "
                f"{path.parent} and run qa ingest PATH --index {path.parent}"
            ) from exc
        if manifest.get("format_version") != FORMAT_VERSION:
            raise IndexStateError(
                f"the index at {path.parent} has format {manifest.get('format_version')}, this version "
                f"reads format {FORMAT_VERSION}. Rebuild it: delete it and ingest again"
            )
        return manifest

    @staticmethod
    def _check_model(directory: Path, manifest: dict, model: ModelIdentity) -> None:
        built = manifest["model"]
        if built.get("dimension") != model.dimension or built.get("fingerprint") != model.fingerprint:
            raise IndexStateError(
                f"the index at {directory} was built with the model {built.get('name')!r} "
                f"(dimension {built.get('dimension')}, fingerprint {built.get('fingerprint')}), but the "
                f"loaded model is {model.name!r} (dimension {model.dimension}, fingerprint "
                f"{model.fingerprint}). Use the same model (QA_MODEL), or rebuild the index with this "
                f"one: delete {directory} and run qa ingest PATH --index {directory}"
            )

    @staticmethod
    def _load_generation(directory: Path, manifest: dict) -> Snapshot:
        vectors_path = directory / manifest["files"]["vectors"]
        store_path = directory / manifest["files"]["store"]
        rebuild = f"Rebuild the index: delete {directory} and run qa ingest PATH --index {directory}"
        try:
            vectors = FaissBackend.load(vectors_path, manifest["model"]["dimension"])
        except Exception as exc:  # FAISS raises RuntimeError with C++ text for any damage
            raise IndexStateError(f"the vector file {vectors_path} is missing or corrupt. {rebuild}") from exc
        try:
            store = Store.open(store_path)
        except Exception as exc:
            raise IndexStateError(f"the store {store_path} is missing or corrupt. {rebuild}") from exc
        if len(vectors) != store.count_passages():
            raise IndexStateError(
                f"the index at {directory} is inconsistent ({len(vectors)} vectors for "
                f"{store.count_passages()} passages). {rebuild}"
            )
        return Snapshot(manifest["generation"], manifest, store, vectors)

    @classmethod
    def _create(
        cls, directory: Path, model: ModelIdentity, chunking: ChunkingSettings, policy: VectorIndexPolicy
    ) -> Index:
        directory.mkdir(parents=True, exist_ok=True)
        now = time.time()
        vectors = FaissBackend(model.dimension, policy.kind_for(0))
        manifest: dict[str, Any] = {
            "format_version": FORMAT_VERSION,
            "generation": 0,
            "model": {"name": model.name, "fingerprint": model.fingerprint, "dimension": model.dimension},
            "chunking": chunking.to_dict(),
            "vector_index": describe(vectors) | policy.to_dict(),
            "counts": {"documents": 0, "passages": 0},
            "created_at": now,
            "updated_at": now,
        }
        vectors_name, store_name = _file_names(0)
        manifest["files"] = {"vectors": vectors_name, "store": store_name}
        store_path = directory / store_name
        store_path.unlink(missing_ok=True)
        store = Store.create(store_path)
        vectors.save(directory / vectors_name)
        for name in (vectors_name, store_name):
            _fsync_file(directory / name)
        _write_json_atomically(directory / MANIFEST, manifest)
        return cls(directory, Snapshot(0, manifest, store, vectors), policy)

    # -- reading -----------------------------------------------------------------------------

    def snapshot(self) -> Snapshot:
        return self._snapshot

    @property
    def manifest(self) -> dict[str, Any]:
        return self._snapshot.manifest

    # -- writing -----------------------------------------------------------------------------

    def write(self, change: Callable[[Store, VectorBackend], None]) -> Snapshot:
        """Apply `change` to copies of the current generation and publish them as the next one."""
        with self._write_lock:
            current = self._snapshot
            generation = current.generation + 1
            vectors_name, store_name = _file_names(generation)
            store_path = self.directory / store_name
            vectors_path = self.directory / vectors_name
            store: Store | None = None
            try:
                store_path.unlink(missing_ok=True)
                store = current.store.copy_to(store_path)
                vectors = current.vectors.copy()
                with store.transaction():
                    change(store, vectors)
                # The corpus size decides the kind of vector index (exact search, then IVF).
                vectors = adapt_to_policy(vectors, self.vector_policy)
                vectors.save(vectors_path)
                _fsync_file(vectors_path)
                _fsync_file(store_path)
                manifest = dict(current.manifest)
                manifest.update(
                    generation=generation,
                    files={"vectors": vectors_name, "store": store_name},
                    counts={"documents": store.count_documents(), "passages": store.count_passages()},
                    updated_at=time.time(),
                )
                manifest["vector_index"] = describe(vectors) | self.vector_policy.to_dict()
                _write_json_atomically(self.directory / MANIFEST, manifest)
            except BaseException as exc:
                if store is not None:
                    store.close()
                for path in (store_path, vectors_path):
                    path.unlink(missing_ok=True)
                if isinstance(exc, OSError):
                    raise IndexStateError(
                        f"could not write the index at {self.directory}: {exc.strerror or exc}. "
                        "The previous version is intact and still served"
                    ) from exc
                raise
            self._snapshot = Snapshot(generation, manifest, store, vectors)
            self._retire(current)
            return self._snapshot

    def _retire(self, old: Snapshot) -> None:
        # Readers that still hold the old snapshot keep working: its connection stays open on
        # the unlinked file and its vectors are in memory. The connection closes a while later,
        # long after any question that started before the write has been answered.
        for name in old.manifest["files"].values():
            (self.directory / name).unlink(missing_ok=True)
        closer = threading.Timer(_RETIRED_STORE_GRACE_S, old.store.close)
        closer.daemon = True
        closer.start()

    def close(self) -> None:
        self._snapshot.store.close()

    def _remove_stray_files(self) -> None:
        """Drop files of generations that a crash left unpublished (or an old one left behind)."""
        for path in self.directory.iterdir():
            match = _GENERATION_FILE.match(path.name)
            # A journal of the current generation is never left by us (its transaction commits
            # before the generation is published), but if one exists SQLite needs it: keep it.
            stray_generation = match is not None and int(match.group(2)) != self._snapshot.generation
            stray_manifest = path.name.startswith(f".{MANIFEST}.") and path.name.endswith(".tmp")
            if stray_generation or stray_manifest:
                path.unlink(missing_ok=True)
