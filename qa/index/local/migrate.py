"""Upgrade an index of format 2 (a copy of SQLite file and FAISS file per write) to format 3.

Runs under the write lock. The new files are made beside the old ones; the new manifest is
the switch; the old files go only after it. A crash before the switch leaves the format-2
index as it was (the next open starts the upgrade again), and after it the format-3 one, with
old files that the next compaction removes.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import time
from pathlib import Path
from typing import Any

from qa.index.local import store
from qa.index.local.backend import FORMAT_2_FILE, FORMAT_VERSION, MANIFEST, checkpoint_name
from qa.index.local.files import fsync_dir, write_json_atomically


def migrate_format_2(directory: Path, manifest: dict[str, Any]) -> dict[str, Any]:
    if manifest["format_version"] != 2:  # another process upgraded it while this one waited
        return manifest
    old_store = directory / manifest["files"]["store"]
    old_vectors = directory / manifest["files"]["vectors"]
    for leftover in directory.glob(f"{store.STORE_FILE}*"):
        leftover.unlink()
    for leftover in directory.glob("vectors-*-*.faiss"):
        leftover.unlink()
    checkpoint = checkpoint_name(1)
    shutil.copyfile(old_vectors, directory / checkpoint)
    with open(directory / checkpoint, "rb") as copied:  # durable before the manifest names it
        os.fsync(copied.fileno())
    new_store = directory / store.STORE_FILE
    store.create(new_store, checkpoint)
    connection = store.connect(new_store)
    try:
        connection.execute("ATTACH DATABASE ? AS old", (str(old_store),))
        connection.execute("BEGIN IMMEDIATE")
        connection.execute(
            "INSERT INTO documents (id, title, source, text, content_hash, added_at)"
            " SELECT id, title, source, text, content_hash, added_at FROM old.documents"
        )
        connection.execute("INSERT INTO passages SELECT id, document_id, start, end FROM old.passages")
        connection.execute("INSERT INTO sentences SELECT document_id, start, end, vector FROM old.sentences")
        connection.execute("INSERT INTO lexical (rowid, body) SELECT rowid, body FROM old.lexical")
        connection.execute(
            "UPDATE state SET version = 1, checkpoint_version = 1, updated_at = ?,"
            " next_passage_id = (SELECT coalesce(max(id), 0) + 1 FROM passages),"
            " documents = (SELECT count(*) FROM documents), passages = (SELECT count(*) FROM passages)",
            (time.time(),),
        )
        connection.execute("COMMIT")
        connection.execute("DETACH DATABASE old")
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    except sqlite3.Error:
        store.rollback_quietly(connection)
        raise
    finally:
        connection.close()
    fsync_dir(directory)
    upgraded = {
        "format_version": FORMAT_VERSION,
        "model": manifest["model"],
        "chunking": manifest["chunking"],
        "vector_index": manifest.get("vector_index", {}),
        "created_at": manifest.get("created_at", time.time()),
        "upgraded_from": 2,
    }
    write_json_atomically(directory / MANIFEST, upgraded)
    for path in directory.iterdir():  # this generation's files, and any a crash left of others
        if FORMAT_2_FILE.match(path.name):
            path.unlink(missing_ok=True)
    return upgraded
