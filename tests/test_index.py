"""The index: round trip, incremental add/replace/remove, atomic writes, refusal of a mismatch."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from qa import ingest as ingest_module
from qa.documents import Document, Skipped
from qa.errors import IndexStateError, NotFoundError
from qa.index import MANIFEST, Index
from qa.ingest import ingest_documents, remove_document
from qa.search import SearchService
from qa.service import model_identity
from tests.fakes import FakeEncoder


def doc(doc_id: str, text: str, title: str | None = None) -> Document:
    return Document(id=doc_id, title=title or text.split("\n")[0], text=text, source=f"{doc_id}.txt")


CORPUS = [
    doc("brussels", "Brussels meeting\nMustafa met Jeffrey in Brussels. They discussed Idlib."),
    doc("geneva", "Geneva talks\nThe envoy spoke in Geneva about the constitution committee."),
    doc("moscow", "Moscow visit\nPompeo travelled to Moscow to discuss a ceasefire plan."),
]


def open_index(path, encoder=None) -> Index:
    return Index.open(path, model_identity(encoder or FakeEncoder()))


def ids_found(service: SearchService, question: str, mode: str = "hybrid", k: int = 10) -> list[str]:
    return [hit.document.id for hit in service.ask(question, k=k, mode=mode).passages]


@pytest.fixture
def service(tmp_path, fake_encoder) -> SearchService:
    index = open_index(tmp_path / "index", fake_encoder)
    ingest_documents(index, fake_encoder, CORPUS)
    return SearchService(index, fake_encoder)


def test_ingest_reports_added_then_unchanged(tmp_path, fake_encoder):
    index = open_index(tmp_path / "index", fake_encoder)
    first = ingest_documents(index, fake_encoder, CORPUS)
    assert sorted(first.added) == ["brussels", "geneva", "moscow"] and first.passages >= 3
    second = ingest_documents(index, fake_encoder, CORPUS)
    assert sorted(second.unchanged) == ["brussels", "geneva", "moscow"] and not second.added
    assert index.snapshot().generation == 1  # nothing changed, nothing written


def test_skipped_files_are_reported_and_the_rest_ingested(tmp_path, fake_encoder):
    index = open_index(tmp_path / "index", fake_encoder)
    report = ingest_documents(index, fake_encoder, [CORPUS[0], Skipped("bad.bin", "binary file")])
    assert report.added == ["brussels"]
    assert [(s.path, s.reason) for s in report.failed] == [("bad.bin", "binary file")]


@pytest.mark.parametrize("mode", ["dense", "lexical", "hybrid"])
def test_each_mode_finds_the_document(service, mode):
    assert ids_found(service, "who met Jeffrey in Brussels", mode)[0] == "brussels"


def test_round_trip_save_and_load(service, tmp_path, fake_encoder):
    before = service.ask("Pompeo ceasefire Moscow", k=3)
    reopened = SearchService(open_index(tmp_path / "index", fake_encoder), fake_encoder)
    after = reopened.ask("Pompeo ceasefire Moscow", k=3)
    assert [(h.document.id, h.start, h.end, h.answer.text) for h in after.passages] == [
        (h.document.id, h.start, h.end, h.answer.text) for h in before.passages
    ]
    manifest = json.loads((tmp_path / "index" / MANIFEST).read_text())
    assert manifest["counts"] == {"documents": 3, "passages": manifest["counts"]["passages"]}
    assert manifest["model"]["fingerprint"] == fake_encoder.fingerprint
    assert manifest["chunking"]["max_tokens"] > 0


def test_passage_text_and_answer_are_slices_of_the_document(service):
    for hit in service.ask("Jeffrey Brussels Idlib", k=5).passages:
        stored = service.index.snapshot().store.get_document(hit.document.id)
        assert stored.text[hit.start : hit.end] == hit.text
        assert stored.text[hit.answer.start : hit.answer.end] == hit.answer.text
        assert hit.start <= hit.answer.start < hit.answer.end <= hit.end


def test_a_changed_document_is_replaced_not_duplicated(service, fake_encoder):
    changed = doc("brussels", "Brussels meeting\nMustafa met the envoy in Luxembourg instead.")
    report = ingest_documents(service.index, fake_encoder, [changed])
    assert report.replaced == ["brussels"]
    hits = service.ask("Luxembourg", k=10, mode="lexical").passages
    assert [h.document.id for h in hits] == ["brussels"]
    assert all("Jeffrey" not in h.text for h in service.ask("Jeffrey", k=10, mode="dense").passages)
    snapshot = service.index.snapshot()
    assert len(snapshot.vectors) == snapshot.store.count_passages()


@pytest.mark.parametrize("mode", ["dense", "lexical", "hybrid"])
def test_a_removed_document_never_comes_back(service, mode):
    remove_document(service.index, "brussels")
    assert "brussels" not in ids_found(service, "who met Jeffrey in Brussels", mode)
    snapshot = service.index.snapshot()
    assert snapshot.store.get_document("brussels") is None
    assert len(snapshot.vectors) == snapshot.store.count_passages()


def test_removing_an_unknown_document_is_a_not_found_error(service):
    with pytest.raises(NotFoundError, match="nope"):
        remove_document(service.index, "nope")


def test_an_index_built_with_another_model_is_refused(service, tmp_path):
    with pytest.raises(IndexStateError, match=r"built with the model.*fingerprint.*rebuild"):
        open_index(tmp_path / "index", FakeEncoder(fingerprint="other-model"))
    with pytest.raises(IndexStateError, match="dimension 64"):
        open_index(tmp_path / "index", FakeEncoder(dimension=32))


def test_a_failed_write_leaves_the_previous_index_intact(service, tmp_path, fake_encoder):
    def explode(store, vectors):
        store.delete_document("geneva")
        raise RuntimeError("power cut")

    before = sorted(os.listdir(tmp_path / "index"))
    with pytest.raises(RuntimeError, match="power cut"):
        service.index.write(explode)
    assert sorted(os.listdir(tmp_path / "index")) == before
    assert "geneva" in ids_found(service, "Geneva constitution")
    reopened = SearchService(open_index(tmp_path / "index", fake_encoder), fake_encoder)
    assert "geneva" in ids_found(reopened, "Geneva constitution")


def test_an_interrupted_ingest_leaves_the_previous_index(service, tmp_path, fake_encoder):
    def documents():
        yield doc("new", "New document about Ankara.")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        ingest_documents(service.index, fake_encoder, documents())
    reopened = open_index(tmp_path / "index", fake_encoder)
    assert reopened.snapshot().store.get_document("new") is None
    assert reopened.snapshot().store.count_documents() == 3


def test_a_crash_between_files_and_manifest_is_cleaned_up_on_open(service, tmp_path, fake_encoder):
    directory = tmp_path / "index"
    (directory / "store-000099.sqlite").write_bytes(b"half written")
    (directory / "vectors-000099.faiss").write_bytes(b"half written")
    reopened = open_index(directory, fake_encoder)
    assert not (directory / "store-000099.sqlite").exists()
    assert reopened.snapshot().store.count_documents() == 3


@pytest.mark.parametrize("damaged", ["vectors", "store"])
def test_a_corrupt_index_file_is_refused_with_how_to_rebuild(service, tmp_path, fake_encoder, damaged):
    manifest = json.loads((tmp_path / "index" / MANIFEST).read_text())
    path = tmp_path / "index" / manifest["files"][damaged]
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(IndexStateError, match=r"corrupt.*qa ingest"):
        open_index(tmp_path / "index", fake_encoder)


def test_a_missing_index_is_an_error_when_not_creating(tmp_path, fake_encoder):
    with pytest.raises(IndexStateError, match=r"no index at.*qa ingest"):
        Index.open(tmp_path / "none", model_identity(fake_encoder), create=False)


def test_a_read_only_index_directory_gives_a_clear_error_and_keeps_serving(service, tmp_path, fake_encoder):
    if os.geteuid() == 0:
        pytest.skip("root ignores directory permissions")
    directory = tmp_path / "index"
    directory.chmod(0o555)
    try:
        with pytest.raises(IndexStateError, match="previous version is intact"):
            ingest_documents(service.index, fake_encoder, [doc("new", "Ankara talks.")])
    finally:
        directory.chmod(0o755)
    assert ids_found(service, "Geneva constitution")[0] == "geneva"


def test_hnsw_backend_supports_delete(tmp_path, fake_encoder):
    from qa.backends.faiss_backend import FaissBackend

    backend = FaissBackend(fake_encoder.dimension, "hnsw")
    vectors = fake_encoder.encode_documents([d.text for d in CORPUS])
    backend.add(np.array([1, 2, 3]), vectors)
    backend.delete(np.array([2]))
    _, ids = backend.search(vectors[1:2], 3)
    assert 2 not in ids[0].tolist() and len(backend) == 2
    backend.save(tmp_path / "v.faiss")
    assert FaissBackend.load(tmp_path / "v.faiss", fake_encoder.dimension).kind == "hnsw"


def test_a_full_disk_gives_a_clear_error_and_keeps_serving(service, tmp_path, fake_encoder, monkeypatch):
    import errno

    from qa.backends.faiss_backend import FaissBackend

    def disk_full(self, path):
        raise OSError(errno.ENOSPC, "No space left on device")

    before = sorted(os.listdir(tmp_path / "index"))
    monkeypatch.setattr(FaissBackend, "save", disk_full)
    with pytest.raises(IndexStateError, match=r"No space left on device.*previous version is intact"):
        ingest_documents(service.index, fake_encoder, [doc("new", "Ankara talks.")])
    assert sorted(os.listdir(tmp_path / "index")) == before
    assert ids_found(service, "Geneva constitution")[0] == "geneva"


class CountingEncoder(FakeEncoder):
    """Records every text it embeds as a document."""

    def __init__(self) -> None:
        super().__init__()
        self.embedded: list[str] = []

    def encode_documents(self, texts, *, show_progress=None):
        self.embedded.extend(texts)
        return super().encode_documents(texts, show_progress=show_progress)


def test_documents_embedded_together_get_the_vectors_they_get_alone(tmp_path, fake_encoder, monkeypatch):
    """Ingest embeds several documents' texts in one call; each gets back its own vectors."""
    from qa import ingest as ingest_module

    monkeypatch.setattr(ingest_module, "_EMBED_GROUP_TEXTS", 5)  # several groups, cut mid-way
    documents = [
        doc(f"doc{n}", f"Title {n}\n" + " ".join(f"Sentence {m} on topic{n} w{m}{n}." for m in range(n + 2)))
        for n in range(7)
    ]
    index = open_index(tmp_path / "index", fake_encoder)
    changed = doc("doc3", documents[3].text + " A later version adds this sentence.")
    ingest_documents(index, fake_encoder, [*documents, changed])  # the later copy wins
    documents[3] = changed
    snapshot = index.snapshot()
    ids, vectors = snapshot.vectors.contents()
    stored = snapshot.store.passages_by_id([int(i) for i in ids])
    for document in documents:
        alone = ingest_module.prepare_document(document, fake_encoder, snapshot.chunking)
        mine = sorted(
            (stored[int(i)].start, vector)
            for i, vector in zip(ids, vectors, strict=True)
            if stored[int(i)].document_id == document.id
        )
        assert [start for start, _ in mine] == [span.start for span in alone.passages]
        assert np.allclose(np.stack([vector for _, vector in mine]), alone.passage_vectors)
        first = stored[next(int(i) for i in ids if stored[int(i)].document_id == document.id)]
        sentence_vectors = [vector for _, _, vector in snapshot.store.sentences_within(first)]
        expected = [s.vector for s in alone.sentences if first.start <= s.start and s.end <= first.end]
        assert np.allclose(np.stack(sentence_vectors), np.stack(expected), atol=2e-3)  # stored as fp16
    assert snapshot.store.count_documents() == len(documents)
    index.close()


def test_sentences_of_many_passages_are_each_passages_own(tmp_path, fake_encoder):
    """One query fetches the sentences of ~50 candidate passages; each gets exactly those inside it."""
    long_text = "Long article\n" + " ".join(f"Sentence {n} about topic{n % 5} in town{n}." for n in range(60))
    index = open_index(tmp_path / "index", fake_encoder)
    ingest_documents(index, fake_encoder, [*CORPUS, doc("long", long_text)])
    store = index.snapshot().store
    ids, _ = index.snapshot().vectors.contents()
    passages = list(store.passages_by_id([int(i) for i in ids]).values())
    assert len(passages) > len(CORPUS) + 1  # the long article spans several passages
    together = store.sentences_of(passages)
    assert set(together) == {p.id for p in passages}
    texts = {d.id: d.text for d in [*CORPUS, doc("long", long_text)]}
    for passage in passages:
        alone = store.sentences_of([passage])[passage.id]
        assert [(s, e) for s, e, _ in together[passage.id]] == [(s, e) for s, e, _ in alone]
        assert alone, "every passage has sentences"
        assert all(passage.start <= s < e <= passage.end for s, e, _ in alone)
        assert [s for s, _, _ in alone] == sorted(s for s, _, _ in alone)
        for start, end, vector in alone:
            expected = fake_encoder.encode_documents([texts[passage.document_id][start:end].strip()])[0]
            assert float(vector @ expected) > 0.99
    assert store.sentences_of([]) == {}
    index.close()


def test_a_later_copy_of_a_waiting_document_replaces_it_before_it_is_embedded(tmp_path, fake_encoder):
    first = doc("a", "Alpha\nThe first version of the report.")
    later = doc("a", "Alpha\nThe second version of the report, corrected.")
    other = doc("b", "Beta\nAnother report on Idlib.")
    index = open_index(tmp_path / "index", fake_encoder)
    counting = CountingEncoder()
    report = ingest_documents(index, counting, [first, other, later])
    chunking = index.snapshot().chunking
    expected = [
        t for d in (other, later) for t in ingest_module.chunk_document(d, fake_encoder, chunking).texts
    ]
    assert sorted(counting.embedded) == sorted(expected)  # the first version cost no embedding
    assert sorted(report.added) == ["a", "b"]
    assert index.snapshot().store.get_document("a").text == later.text
    index.close()
