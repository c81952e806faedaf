"""The index seam's contract, run on every backend: the local directory and PostgreSQL.

Each test gets a fresh index from the parametrized `index_location` fixture (a temporary
directory, or a fresh schema on the session's real PostgreSQL server).
"""

from __future__ import annotations

import numpy as np
import pytest

from qa.errors import IndexStateError, NotFoundError
from qa.index import IndexBackend, open_index
from qa.ingest import ingest_documents, remove_document
from qa.lexical import query_terms
from qa.search import SearchService
from qa.service import model_identity
from tests.fakes import FakeEncoder
from tests.test_index import CORPUS as ENGLISH_CORPUS
from tests.test_index import doc

CORPUS = [
    *ENGLISH_CORPUS,
    doc(
        "arabic",
        "لقاء بروكسل\nالتقى عبد الرحمن مصطفى المبعوث جيمس جيفري في بروكسل وبحثا الوضع في إدلب. "
        "وقال جيفري إن الولايات المتحدة تدعم الحل السياسي في سوريا.",
    ),
]


def opened(location: str, encoder: FakeEncoder | None = None, **options) -> IndexBackend:
    return open_index(location, model_identity(encoder or FakeEncoder()), **options)


@pytest.fixture
def index(index_location: str, fake_encoder: FakeEncoder):
    index = opened(index_location, fake_encoder)
    ingest_documents(index, fake_encoder, CORPUS)
    yield index
    index.close()


def found(service: SearchService, question: str, mode: str = "hybrid") -> list[str]:
    return [hit.document.id for hit in service.ask(question, k=10, mode=mode).passages]


@pytest.mark.parametrize("mode", ["dense", "lexical", "hybrid"])
def test_each_mode_finds_the_document(index, fake_encoder, mode):
    service = SearchService(index, fake_encoder)
    assert found(service, "Who met Jeffrey in Brussels?", mode)[0] == "brussels"
    assert found(service, "من التقى جيفري في بروكسل", mode)[0] == "arabic"


def test_writes_report_what_they_did_and_each_publishes_a_version(index, fake_encoder):
    with index.view() as view:
        before = view.version
        assert view.count_documents() == 4
    changed = doc("geneva", "Geneva talks\nThe envoy met the committee in Geneva again.")
    report = ingest_documents(index, fake_encoder, [changed, doc("cairo", "Cairo\nTalks in Cairo.")])
    assert (report.added, report.replaced) == (["cairo"], ["geneva"])
    result = index.write(deletes=["moscow", "nowhere"])
    assert (result.removed, result.missing) == (["moscow"], ["nowhere"])
    with index.view() as view:
        assert view.version == result.version > before
        assert sorted(view.content_hashes()) == ["arabic", "brussels", "cairo", "geneva"]
        assert view.count_documents() == 4
        assert view.count_passages() == sum(1 for _ in view.iter_passages())
        assert "again" in view.document("geneva").text
        assert view.document("moscow") is None


@pytest.mark.parametrize("mode", ["dense", "lexical", "hybrid"])
def test_a_removed_document_never_comes_back(index, fake_encoder, mode):
    remove_document(index, "moscow")
    assert "moscow" not in found(SearchService(index, fake_encoder), "Pompeo Moscow ceasefire", mode)
    with pytest.raises(NotFoundError):
        remove_document(index, "moscow")


def test_a_view_keeps_its_state_while_another_write_lands(index, fake_encoder):
    with index.view() as view:
        version = view.version
        ingest_documents(index, fake_encoder, [doc("cairo", "Cairo\nTalks in Cairo.")])
        assert view.version == version
        assert view.document("cairo") is None
        assert view.count_documents() == 4
    with index.view() as view:
        assert view.document("cairo") is not None


def test_a_failed_write_leaves_the_previous_state(index, fake_encoder):
    from qa.index.base import DocumentUpsert

    with index.view() as view:
        before = (view.version, view.content_hashes())
    good = DocumentUpsert("cairo", "Cairo", "cairo.txt", "Talks in Cairo.", "h", [], [], ["cairo"])
    with pytest.raises(Exception):  # noqa: B017 - any failure of the backend will do
        index.write([good, "not an upsert"])  # type: ignore[list-item]
    with index.view() as view:
        assert (view.version, view.content_hashes()) == before


def test_passages_sentences_and_vectors_read_back(index, fake_encoder):
    with index.view() as view:
        passages = list(view.iter_passages())
        documents = view.documents({p.document_id for p in passages})
        sentences = view.sentences(passages)
        vectors = view.passage_vectors([p.id for p in passages])
        assert view.passages([passages[0].id]) == {passages[0].id: passages[0]}
    for passage, row in zip(passages, vectors, strict=True):
        text = documents[passage.document_id].text[passage.start : passage.end]
        expected = fake_encoder.encode_documents([text])[0]
        assert float(np.dot(row, expected)) > 0.99  # float16 on PostgreSQL, float32 locally
        assert sentences[passage.id], passage
        for sentence in sentences[passage.id]:
            assert passage.start <= sentence.start < sentence.end <= passage.end
            assert sentence.vector.dtype == np.float32


def test_listing_pages_and_export_order_by_id(index):
    with index.view() as view:
        page = view.list_documents(offset=1, limit=2)
        everything = list(view.iter_documents())
    assert [d.id for d in page] == ["brussels", "geneva"]
    assert all(d.text == "" and d.passages >= 1 for d in page)
    assert [d.id for d in everything] == ["arabic", "brussels", "geneva", "moscow"]
    assert all(d.text for d in everything)


def test_written_words_come_in_order_after_a_marker(index, fake_encoder):
    with index.view() as view:
        words, marker = view.written_words(0)
        assert "بروكسل" in words and "Brussels" not in words  # folded like the analyzer's words
        assert view.written_words(marker) == ([], marker)
    ingest_documents(index, fake_encoder, [doc("cairo", "Cairo\nالقاهرة تستضيف المحادثات")])
    with index.view() as view:
        later, _ = view.written_words(marker)
    assert "القاهرة" in later and "بروكسل" not in later


def test_lexical_search_ranks_by_bm25_and_lists_its_terms(index):
    with index.view() as view:
        terms = query_terms("جيفري بروكسل")
        ranked = view.lexical_search(terms, 5)
        assert ranked and view.passages([ranked[0][0]])[ranked[0][0]].document_id == "arabic"
        assert all(score > 0 for _, score in ranked)
        assert set(terms) <= set(view.lexical_terms())
        assert view.lexical_search([], 5) == [] and view.lexical_search(["zzzz"], 5) == []


def test_an_index_built_with_another_model_is_refused(index_location, fake_encoder):
    opened(index_location, fake_encoder).close()
    with pytest.raises(IndexStateError, match=r"another|was built with"):
        opened(index_location, FakeEncoder(dimension=64, fingerprint="other"))


def test_a_missing_index_is_an_error_when_not_creating(index_location):
    with pytest.raises(IndexStateError, match=r"no index at .*qa ingest"):
        open_index(index_location, None, create=False)


def test_an_index_opened_without_a_model_takes_the_recorded_one(index):
    with open_index(index.location, None, create=False) as again:
        assert again.model == index.model
        with again.view() as view:
            assert view.count_documents() == 4


def test_compaction_and_description(index):
    remove_document(index, "moscow")
    figures = index.compact()
    assert isinstance(figures, dict)
    described = index.describe()
    assert described["documents"] == 3 and described["model"]["fingerprint"] == "fake-v1"
