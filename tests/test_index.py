"""The index: round trip, incremental add/replace/remove, atomic writes, refusal of a mismatch."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from qa import ingest as ingest_module
from qa.documents import Document, Skipped
from qa.errors import IndexStateError, NotFoundError
from qa.index import IndexBackend, StoredDocument
from qa.index import open_index as open_backend
from qa.index.local import MANIFEST
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


def open_index(path, encoder=None) -> IndexBackend:
    return open_backend(path, model_identity(encoder or FakeEncoder()))


def stored(index: IndexBackend, document_id: str) -> StoredDocument | None:
    with index.view() as view:
        return view.document(document_id)


def assert_every_passage_has_its_vector(index: IndexBackend) -> None:
    with index.view() as view:
        assert len(view.vectors) == view.count_passages()


def ids_found(service: SearchService, question: str, mode: str = "hybrid", k: int = 10) -> list[str]:
    return [hit.document.id for hit in service.ask(question, k=k, mode=mode).passages]


@pytest.fixture
def corpus_service(tmp_path, fake_encoder) -> SearchService:
    """The three English documents of CORPUS (brussels, geneva, moscow)."""
    index = open_index(tmp_path / "index", fake_encoder)
    ingest_documents(index, fake_encoder, CORPUS)
    return SearchService(index, fake_encoder)


def test_ingest_reports_added_then_unchanged(tmp_path, fake_encoder):
    index = open_index(tmp_path / "index", fake_encoder)
    first = ingest_documents(index, fake_encoder, CORPUS)
    assert sorted(first.added) == ["brussels", "geneva", "moscow"] and first.passages >= 3
    second = ingest_documents(index, fake_encoder, CORPUS)
    assert sorted(second.unchanged) == ["brussels", "geneva", "moscow"] and not second.added
    with index.view() as view:
        assert view.version == 1  # nothing changed, nothing written


def test_skipped_files_are_reported_and_the_rest_ingested(tmp_path, fake_encoder):
    index = open_index(tmp_path / "index", fake_encoder)
    report = ingest_documents(index, fake_encoder, [CORPUS[0], Skipped("bad.bin", "binary file")])
    assert report.added == ["brussels"]
    assert [(s.path, s.reason) for s in report.failed] == [("bad.bin", "binary file")]


@pytest.mark.parametrize("mode", ["dense", "lexical", "hybrid"])
def test_each_mode_finds_the_document(corpus_service, mode):
    assert ids_found(corpus_service, "who met Jeffrey in Brussels", mode)[0] == "brussels"


def test_round_trip_save_and_load(corpus_service, tmp_path, fake_encoder):
    before = corpus_service.ask("Pompeo ceasefire Moscow", k=3)
    reopened = SearchService(open_index(tmp_path / "index", fake_encoder), fake_encoder)
    after = reopened.ask("Pompeo ceasefire Moscow", k=3)
    assert [(h.document.id, h.start, h.end, h.answer.text) for h in after.passages] == [
        (h.document.id, h.start, h.end, h.answer.text) for h in before.passages
    ]
    manifest = json.loads((tmp_path / "index" / MANIFEST).read_text())
    assert reopened.index.describe()["documents"] == 3
    assert manifest["model"]["fingerprint"] == fake_encoder.fingerprint
    assert manifest["chunking"]["max_tokens"] > 0


def test_passage_text_and_answer_are_slices_of_the_document(corpus_service):
    for hit in corpus_service.ask("Jeffrey Brussels Idlib", k=5).passages:
        text = stored(corpus_service.index, hit.document.id).text
        assert text[hit.start : hit.end] == hit.text
        assert text[hit.answer.start : hit.answer.end] == hit.answer.text
        assert hit.start <= hit.answer.start < hit.answer.end <= hit.end


def test_a_changed_document_is_replaced_not_duplicated(corpus_service, fake_encoder):
    changed = doc("brussels", "Brussels meeting\nMustafa met the envoy in Luxembourg instead.")
    report = ingest_documents(corpus_service.index, fake_encoder, [changed])
    assert report.replaced == ["brussels"]
    hits = corpus_service.ask("Luxembourg", k=10, mode="lexical").passages
    assert [h.document.id for h in hits] == ["brussels"]
    assert all("Jeffrey" not in h.text for h in corpus_service.ask("Jeffrey", k=10, mode="dense").passages)
    assert_every_passage_has_its_vector(corpus_service.index)


@pytest.mark.parametrize("mode", ["dense", "lexical", "hybrid"])
def test_a_removed_document_never_comes_back(corpus_service, mode):
    remove_document(corpus_service.index, "brussels")
    assert "brussels" not in ids_found(corpus_service, "who met Jeffrey in Brussels", mode)
    assert stored(corpus_service.index, "brussels") is None
    assert_every_passage_has_its_vector(corpus_service.index)


def test_removing_an_unknown_document_is_a_not_found_error(corpus_service):
    with pytest.raises(NotFoundError, match="nope"):
        remove_document(corpus_service.index, "nope")


def test_an_index_built_with_another_model_is_refused(corpus_service, tmp_path):
    with pytest.raises(IndexStateError, match=r"built with the model.*fingerprint.*rebuild"):
        open_index(tmp_path / "index", FakeEncoder(fingerprint="other-model"))
    with pytest.raises(IndexStateError, match="dimension 64"):
        open_index(tmp_path / "index", FakeEncoder(dimension=32))


def test_a_failed_write_leaves_the_previous_index_intact(corpus_service, tmp_path, fake_encoder, monkeypatch):
    from qa.index.local.store import StoreWriter

    def explode(self):
        raise RuntimeError("power cut")

    monkeypatch.setattr(StoreWriter, "publish", explode)  # after the deletes and inserts
    with pytest.raises(RuntimeError, match="power cut"):
        corpus_service.index.write(deletes=["geneva"])
    monkeypatch.undo()
    assert "geneva" in ids_found(corpus_service, "Geneva constitution")
    reopened = SearchService(open_index(tmp_path / "index", fake_encoder), fake_encoder)
    assert "geneva" in ids_found(reopened, "Geneva constitution")


def test_an_interrupted_ingest_leaves_the_previous_index(corpus_service, tmp_path, fake_encoder):
    def documents():
        yield doc("new", "New document about Ankara.")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        ingest_documents(corpus_service.index, fake_encoder, documents())
    reopened = open_index(tmp_path / "index", fake_encoder)
    assert stored(reopened, "new") is None
    assert reopened.describe()["documents"] == 3


def test_readers_delete_nothing_and_a_compaction_removes_what_a_killed_one_left(
    corpus_service, tmp_path, fake_encoder
):
    directory = tmp_path / "index"
    unpublished = directory / "vectors-000099-0badcafe.faiss"
    half_written = directory / ".vectors-000099-0badcafe.faiss.12345.tmp"
    for path in (unpublished, half_written):
        path.write_bytes(b"half written")
    reopened = open_index(directory, fake_encoder)
    assert unpublished.exists() and half_written.exists()  # opening and reading delete nothing
    assert stored(reopened, "geneva") is not None
    reopened.compact()
    assert not unpublished.exists() and not half_written.exists()
    assert ids_found(SearchService(reopened, fake_encoder), "Geneva constitution")[0] == "geneva"


def _index_file(directory, damaged: str):
    return directory / "store.sqlite" if damaged == "store" else next(directory.glob("vectors-*.faiss"))


@pytest.mark.parametrize("damaged", ["vectors", "store"])
def test_a_corrupt_index_file_is_refused_with_how_to_rebuild(corpus_service, tmp_path, fake_encoder, damaged):
    corpus_service.index.compact()  # the vectors in the checkpoint file, not only in the store's log
    corpus_service.index.close()
    path = _index_file(tmp_path / "index", damaged)
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(IndexStateError, match=r"corrupt.*qa ingest"):
        open_index(tmp_path / "index", fake_encoder)


def test_a_missing_index_is_an_error_when_not_creating(tmp_path, fake_encoder):
    with pytest.raises(IndexStateError, match=r"no index at.*qa ingest"):
        open_backend(tmp_path / "none", model_identity(fake_encoder), create=False)


def test_a_read_only_index_directory_gives_a_clear_error_and_keeps_serving(
    corpus_service, tmp_path, fake_encoder
):
    if os.geteuid() == 0:
        pytest.skip("root ignores directory permissions")
    directory = tmp_path / "index"
    directory.chmod(0o555)
    try:
        with pytest.raises(IndexStateError, match="previous version is intact"):
            ingest_documents(corpus_service.index, fake_encoder, [doc("new", "Ankara talks.")])
    finally:
        directory.chmod(0o755)
    assert ids_found(corpus_service, "Geneva constitution")[0] == "geneva"


def test_hnsw_backend_supports_delete(tmp_path, fake_encoder):
    from qa.index.local.faiss_index import FaissBackend

    backend = FaissBackend(fake_encoder.dimension, "hnsw")
    vectors = fake_encoder.encode_documents([d.text for d in CORPUS])
    backend.add(np.array([1, 2, 3]), vectors)
    backend.delete(np.array([2]))
    _, ids = backend.search(vectors[1:2], 3)
    assert 2 not in ids[0].tolist() and len(backend) == 2
    backend.save(tmp_path / "v.faiss")
    assert FaissBackend.load(tmp_path / "v.faiss", fake_encoder.dimension).kind == "hnsw"


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
    with index.view() as view:
        ids, vectors = view.vectors.contents()
        found = view.passages(ids.tolist())
        sentences = view.sentences(list(found.values()))
        count = view.count_documents()
    for document in documents:
        alone = ingest_module.prepare_document(document, fake_encoder, index.chunking)
        mine = sorted(
            (found[int(i)].start, vector)
            for i, vector in zip(ids, vectors, strict=True)
            if found[int(i)].document_id == document.id
        )
        assert [start for start, _ in mine] == [span.start for span in alone.passages]
        assert np.allclose(np.stack([vector for _, vector in mine]), alone.passage_vectors)
        first = found[next(int(i) for i in ids if found[int(i)].document_id == document.id)]
        sentence_vectors = [s.vector for s in sentences[first.id]]
        expected = [s.vector for s in alone.sentences if first.start <= s.start and s.end <= first.end]
        assert np.allclose(np.stack(sentence_vectors), np.stack(expected), atol=2e-3)  # stored as fp16
    assert count == len(documents)
    index.close()


def test_sentences_of_many_passages_are_each_passages_own(tmp_path, fake_encoder):
    """One query fetches the sentences of ~50 candidate passages; each gets exactly those inside it."""
    long_text = "Long article\n" + " ".join(f"Sentence {n} about topic{n % 5} in town{n}." for n in range(60))
    index = open_index(tmp_path / "index", fake_encoder)
    ingest_documents(index, fake_encoder, [*CORPUS, doc("long", long_text)])
    with index.view() as view:
        passages = list(view.iter_passages())
        assert len(passages) > len(CORPUS) + 1  # the long article spans several passages
        together = view.sentences(passages)
        assert set(together) == {p.id for p in passages}
        texts = {d.id: d.text for d in [*CORPUS, doc("long", long_text)]}
        for passage in passages:
            alone = view.sentences([passage])[passage.id]
            assert [(s.start, s.end) for s in together[passage.id]] == [(s.start, s.end) for s in alone]
            assert alone, "every passage has sentences"
            assert all(passage.start <= s.start < s.end <= passage.end for s in alone)
            assert [s.start for s in alone] == sorted(s.start for s in alone)
            for sentence in alone:
                text = texts[passage.document_id][sentence.start : sentence.end].strip()
                assert float(sentence.vector @ fake_encoder.encode_documents([text])[0]) > 0.99
        assert view.sentences([]) == {}
    index.close()


def test_a_later_copy_of_a_waiting_document_replaces_it_before_it_is_embedded(tmp_path, fake_encoder):
    first = doc("a", "Alpha\nThe first version of the report.")
    later = doc("a", "Alpha\nThe second version of the report, corrected.")
    other = doc("b", "Beta\nAnother report on Idlib.")
    index = open_index(tmp_path / "index", fake_encoder)
    counting = CountingEncoder()
    report = ingest_documents(index, counting, [first, other, later])
    chunking = index.chunking
    expected = [
        t for d in (other, later) for t in ingest_module.chunk_document(d, fake_encoder, chunking).texts
    ]
    assert sorted(counting.embedded) == sorted(expected)  # the first version cost no embedding
    assert sorted(report.added) == ["a", "b"]
    assert stored(index, "a").text == later.text
    index.close()


def test_a_write_is_acknowledged_even_when_checking_for_compaction_fails(corpus_service, monkeypatch):
    import sqlite3

    from qa.index.local import store

    def broken(connection):
        raise sqlite3.OperationalError("disk I/O error")

    monkeypatch.setattr(store, "vector_log_size", broken)
    written = corpus_service.index.write(deletes=["geneva"])  # committed: reported as such
    assert written.removed == ["geneva"]
    assert stored(corpus_service.index, "geneva") is None


def test_an_unfinished_listing_does_not_pin_later_views_to_its_state(corpus_service, tmp_path, fake_encoder):
    with corpus_service.index.view() as view:
        next(view.iter_documents())  # left unfinished
    other = open_index(tmp_path / "index", fake_encoder)  # another writer
    ingest_documents(other, fake_encoder, [doc("ankara", "Ankara talks\nTalks held in Ankara.")])
    other.close()
    for _ in range(3):  # every pooled connection sees the new state
        assert stored(corpus_service.index, "ankara") is not None


def test_a_compaction_keeps_the_manifest_temporary_of_a_live_process(corpus_service, tmp_path):
    directory = tmp_path / "index"
    live = directory / f".manifest.json.{os.getpid()}.tmp"
    dead = directory / ".manifest.json.999999999.tmp"
    for path in (live, dead):
        path.write_text("{}")
    corpus_service.index.compact()
    assert live.exists() and not dead.exists()


def test_a_damaged_store_is_one_clear_error_for_qa_docs(corpus_service, tmp_path):
    import subprocess
    import sys

    corpus_service.index.close()
    store_file = tmp_path / "index" / "store.sqlite"
    data = store_file.read_bytes()
    store_file.write_bytes(data[:4096] + b"\xa5" * (len(data) - 4096))  # every page but the schema
    done = subprocess.run(
        [sys.executable, "-c", "from qa.cli import main; main()", "docs", "--index", str(tmp_path / "index")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr[-2000:]
    assert "corrupt" in done.stderr.splitlines()[-1], done.stderr


def test_vector_state_advanced_many_times_finds_what_exact_search_finds(tmp_path):
    """Vectors added and removed over many versions (segments merged on the way) are searched
    as exact search over the live ones would."""
    from qa.index.local.faiss_index import FaissBackend
    from qa.index.local.vectors import VectorState

    rng = np.random.default_rng(3)

    def unit(count):
        vectors = rng.standard_normal((count, 16)).astype(np.float32)
        return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)

    base = FaissBackend(16, "flat")
    live = dict(zip(range(1, 41), unit(40), strict=True))
    base.add(np.array(list(live), dtype=np.int64), np.stack(list(live.values())))
    base.save(tmp_path / "v.faiss")
    state = VectorState.load(tmp_path / "v.faiss", 16, 0)
    next_id = 41
    for version in range(1, 25):
        changes = []
        for vector in unit(3):
            changes.append((next_id, vector.tobytes()))
            live[next_id] = vector
            next_id += 1
        for gone in rng.choice(sorted(live), size=2, replace=False):
            changes.append((int(gone), None))
            del live[int(gone)]
        state = state.advanced(version, changes)
        assert len(state) == len(live) and len(state.segments) <= 8
    ids = np.array(list(live), dtype=np.int64)
    matrix = np.stack(list(live.values()))
    for query in unit(5):
        expected = ids[np.argsort(-(matrix @ query))[:10]].tolist()
        assert [passage_id for passage_id, _ in state.search(query, 10)] == expected
    found_ids, _ = state.contents()
    assert sorted(found_ids.tolist()) == sorted(live)
