"""Indexes written by earlier versions: format 2 is upgraded in place on first open, and a
fingerprint recorded by the older fingerprint rule is recognized as the same model."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import faiss
import numpy as np
import pytest

from qa.chunking import ChunkingSettings
from qa.errors import IndexStateError
from qa.index import ModelIdentity, open_index
from qa.index.local import FORMAT_VERSION, MANIFEST
from qa.lexical import index_terms, lexical_text
from qa.search import SearchService
from qa.service import model_identity
from tests.fakes import FakeEncoder

# The store of format 2, as that version created it.
FORMAT_2_SCHEMA = """
CREATE TABLE documents (id TEXT PRIMARY KEY, title TEXT NOT NULL, source TEXT NOT NULL, text TEXT NOT NULL,
    content_hash TEXT NOT NULL, added_at REAL NOT NULL);
CREATE TABLE passages (id INTEGER PRIMARY KEY, document_id TEXT NOT NULL REFERENCES documents(id)
    ON DELETE CASCADE, start INTEGER NOT NULL, end INTEGER NOT NULL);
CREATE INDEX passages_by_document ON passages(document_id);
CREATE TABLE sentences (document_id TEXT NOT NULL REFERENCES documents(id) ON DELETE CASCADE,
    start INTEGER NOT NULL, end INTEGER NOT NULL, vector BLOB NOT NULL);
CREATE INDEX sentences_by_document ON sentences(document_id, start);
CREATE VIRTUAL TABLE lexical USING fts5(body, tokenize = 'unicode61 remove_diacritics 2');
"""

DOCUMENTS = {
    "brussels": "Mustafa met Jeffrey in Brussels to discuss Idlib.",
    "geneva": "The envoy spoke in Geneva about the constitution committee.",
    "moscow": "Pompeo travelled to Moscow to discuss a ceasefire plan.",
}


def write_format_2(directory: Path, model: ModelIdentity, encoder: FakeEncoder) -> None:
    """A format-2 index of DOCUMENTS (one passage each), generation 3, with a stray file of an
    unpublished generation 4 as a crash would leave it."""
    directory.mkdir(parents=True)
    db = sqlite3.connect(directory / "store-000003.sqlite")
    db.executescript(FORMAT_2_SCHEMA)
    vectors = faiss.IndexIDMap2(faiss.IndexFlatIP(encoder.dimension))
    for passage_id, (document_id, text) in enumerate(DOCUMENTS.items(), start=1):
        vector = encoder.encode_documents([text])
        db.execute(
            "INSERT INTO documents VALUES (?,?,?,?,?,?)", (document_id, document_id, "t", text, "h", 0.0)
        )
        db.execute("INSERT INTO passages VALUES (?,?,?,?)", (passage_id, document_id, 0, len(text)))
        db.execute("INSERT INTO lexical (rowid, body) VALUES (?,?)", (passage_id, lexical_text(text)))
        db.execute(
            "INSERT INTO sentences VALUES (?,?,?,?)",
            (document_id, 0, len(text), vector[0].astype(np.float16).tobytes()),
        )
        vectors.add_with_ids(vector, np.array([passage_id], dtype=np.int64))
    db.commit()
    db.close()
    faiss.write_index(vectors, str(directory / "vectors-000003.faiss"))
    (directory / "store-000004.sqlite").write_bytes(b"half written")
    manifest = {
        "format_version": 2,
        "generation": 3,
        "model": model.to_dict(),
        "chunking": ChunkingSettings().to_dict(),
        "vector_index": {"kind": "flat", "stored_as": "float32", "policy": "auto", "switch_at": 20000},
        "counts": {"documents": 3, "passages": 3},
        "created_at": 0.0,
        "updated_at": 0.0,
        "files": {"vectors": "vectors-000003.faiss", "store": "store-000003.sqlite"},
    }
    (directory / MANIFEST).write_text(json.dumps(manifest), encoding="utf-8")


def test_a_format_2_index_is_upgraded_in_place_and_keeps_every_document(tmp_path, fake_encoder):
    directory = tmp_path / "index"
    write_format_2(directory, model_identity(fake_encoder), fake_encoder)
    index = open_index(directory, model_identity(fake_encoder))
    assert json.loads((directory / MANIFEST).read_text())["format_version"] == FORMAT_VERSION
    assert not list(directory.glob("store-*")) and not list(directory.glob("vectors-00000?.faiss"))
    service = SearchService(index, fake_encoder)
    for mode in ("dense", "lexical"):
        assert service.ask("Pompeo Moscow ceasefire", k=1, mode=mode).passages[0].document.id == "moscow"
    with index.view() as view:
        assert sorted(d.id for d in view.iter_documents()) == sorted(DOCUMENTS)
        assert len(view.vectors) == view.count_passages() == 3
        words, _ = view.written_words()
        assert {"jeffrey", "brussels", "geneva", "pompeo"} <= set(words)  # for the bridge
    index.write(deletes=["geneva"])  # writes go on; new passage ids never reuse old ones
    from qa.documents import Document
    from qa.ingest import ingest_documents

    ingest_documents(index, fake_encoder, [Document("ankara", "Ankara", "Talks held in Ankara.", "t")])
    with index.view() as view:
        assert min(p.id for p in view.iter_passages() if p.document_id == "ankara") == 4
    index.close()


def drop_words_table(directory: Path) -> None:
    """Make the index look as the first version of format 3 wrote it: no words table."""
    db = sqlite3.connect(directory / "store.sqlite")
    db.execute("DROP TABLE words")
    db.commit()
    db.close()


def test_an_index_written_before_the_words_table_gets_its_documents_words(tmp_path, fake_encoder):
    from qa.documents import Document
    from qa.ingest import ingest_documents

    directory = tmp_path / "index"
    with open_index(directory, model_identity(fake_encoder)) as index:
        document = Document("brussels", "Brussels", "مصطفى التقى أوتزن في بروكسل", "t")
        ingest_documents(index, fake_encoder, [document])
    drop_words_table(directory)
    with open_index(directory, model_identity(fake_encoder)) as index, index.view() as view:
        words, marker = view.written_words()
        assert {"أوتزن", "بروكسل", "brussels"} <= set(words)
        assert view.written_words(marker) == ([], marker)
        # The bridge finds the name the stemmer cut (أوتزن → اوتز).
        assert "اوتز" in SearchService(index, fake_encoder)._bridge.for_view(view).terms_for("Who is Outzen?")


def test_an_index_left_without_words_bridges_over_its_stemmed_terms(tmp_path, fake_encoder, monkeypatch):
    from qa.documents import Document
    from qa.index.local import backend
    from qa.ingest import ingest_documents

    directory = tmp_path / "index"
    with open_index(directory, model_identity(fake_encoder)) as index:
        ingest_documents(index, fake_encoder, [Document("b", "B", "التقى مصطفى جيفري في بروكسل", "t")])
    drop_words_table(directory)
    # As on a read-only mount (which root can only get from a real one: tests/test_faults.py).
    monkeypatch.setattr(backend.os, "access", lambda *_: False)
    with open_index(directory, model_identity(fake_encoder)) as index, index.view() as view:
        assert view.written_words() is None
        bridge = SearchService(index, fake_encoder)._bridge.for_view(view)
        assert bridge.stemmed and bridge.terms_for("Who is Jeffrey?") == index_terms("جيفري")


def test_an_index_recorded_under_the_former_fingerprint_opens_and_is_stamped_anew(tmp_path, fake_encoder):
    directory = tmp_path / "index"
    former = ModelIdentity("fake", "fingerprint-of-old", fake_encoder.dimension)
    write_format_2(directory, former, fake_encoder)
    with pytest.raises(IndexStateError, match="built with the model"):
        open_index(directory, model_identity(fake_encoder))  # another model as far as it knows
    today = ModelIdentity("fake", fake_encoder.fingerprint, fake_encoder.dimension, "fingerprint-of-old")
    open_index(directory, today).close()
    assert json.loads((directory / MANIFEST).read_text())["model"]["fingerprint"] == fake_encoder.fingerprint
    open_index(directory, model_identity(fake_encoder)).close()  # no longer needs the former one


@pytest.mark.model
def test_the_real_model_recognizes_an_index_fingerprinted_by_the_former_rule(tmp_path, real_encoder):
    from embeddings.encoder import legacy_model_fingerprint

    identity = model_identity(real_encoder)
    assert identity.former_fingerprint == legacy_model_fingerprint(real_encoder.directory)
    assert identity.former_fingerprint != identity.fingerprint  # the build manifest counted then
    directory = tmp_path / "index"
    recorded = ModelIdentity(identity.name, identity.former_fingerprint, identity.dimension)
    write_format_2(directory, recorded, FakeEncoder(dimension=identity.dimension))
    open_index(directory, identity).close()
    assert json.loads((directory / MANIFEST).read_text())["model"]["fingerprint"] == identity.fingerprint


def _drop_metadata(store_path: Path) -> None:
    """Make a store look like one written before metadata (format 3 without its columns)."""
    db = sqlite3.connect(store_path)
    for index_name in ("documents_by_published", "documents_by_source"):
        db.execute(f"DROP INDEX {index_name}")
    db.execute("DROP TABLE document_tags")
    for column in ("published", "lang", "url", "author", "tags"):
        db.execute(f"ALTER TABLE documents DROP COLUMN {column}")
    db.commit()
    db.close()


def test_an_index_written_before_metadata_gets_its_columns_on_open(tmp_path: Path) -> None:
    from qa.documents import Document, document_from_text
    from qa.filters import SearchFilter
    from qa.index.local import store
    from qa.ingest import ingest_documents
    from qa.language import detect_language
    from qa.metadata import Metadata

    encoder = FakeEncoder()
    directory = tmp_path / "index"
    text = "Mustafa met the American envoy Jeffrey in Brussels to discuss the situation in Idlib."
    with open_index(directory, model_identity(encoder)) as index:
        ingest_documents(index, encoder, [Document("old", "Old", text, "s")])
    _drop_metadata(directory / store.STORE_FILE)
    with open_index(directory, model_identity(encoder)) as index:
        # Ingesting the same document again (its language detected anew) finds nothing changed.
        again = document_from_text(text, id="old", title="Old", source="s")
        assert ingest_documents(index, encoder, [again]).unchanged == ["old"]
        assert SearchService(index, encoder).ask("Jeffrey", filter=SearchFilter(langs=("en",))).passages
        with index.view() as view:
            old = view.document("old")
            assert old is not None
            # The language is detected at the upgrade from the text, as ingest does; nothing else.
            assert old.meta == Metadata(lang=detect_language(old.text)) and old.meta.lang == "en"
        tagged = Document("new", "New", "The envoy met the committee in Geneva.", "s", Metadata(tags=("un",)))
        ingest_documents(index, encoder, [tagged])
        service = SearchService(index, encoder)
        hits = service.ask("envoy met", k=5, filter=SearchFilter(tags=("un",))).passages
        assert [hit.document.id for hit in hits] == ["new"]
    db = sqlite3.connect(directory / store.STORE_FILE)
    assert store.has_metadata(db)
    db.close()


def test_an_old_index_that_cannot_be_upgraded_reads_without_metadata(tmp_path: Path, monkeypatch) -> None:
    """On a read-only mount the columns cannot be added: documents read with no metadata, and a
    metadata filter matches nothing (ids and sources still filter)."""
    import os

    from qa.documents import Document
    from qa.filters import SearchFilter
    from qa.index.local import store
    from qa.ingest import ingest_documents
    from qa.metadata import Metadata

    encoder = FakeEncoder()
    directory = tmp_path / "index"
    with open_index(directory, model_identity(encoder)) as index:
        ingest_documents(index, encoder, [Document("old", "Old", "Mustafa met Jeffrey in Brussels.", "s")])
    _drop_metadata(directory / store.STORE_FILE)
    monkeypatch.setattr(os, "access", lambda *args, **kwargs: False)  # as on a read-only mount
    with open_index(directory, model_identity(encoder)) as index:
        service = SearchService(index, encoder)
        hit = service.ask("Jeffrey Brussels", k=1).passages[0]
        assert hit.document.id == "old" and hit.document.tags == [] and hit.document.published is None
        assert service.ask("Jeffrey", k=5, filter=SearchFilter(tags=("un",))).passages == []
        assert (
            service.ask("Jeffrey", k=5, filter=SearchFilter(sources=("s",))).passages[0].document.id == "old"
        )
        with index.view() as view:
            assert view.document("old").meta == Metadata()
