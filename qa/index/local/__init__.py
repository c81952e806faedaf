"""The embedded default backend: one directory of SQLite (WAL) and FAISS files."""

from qa.index.local.backend import FORMAT_VERSION, MANIFEST, LocalIndex

__all__ = ["FORMAT_VERSION", "MANIFEST", "LocalIndex"]
