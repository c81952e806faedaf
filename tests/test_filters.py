"""Metadata and filters: parsing, both index backends, and every surface (API GET/POST, CLI, web
form). MCP's filter is tested with the MCP tools (tests/test_mcp.py)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from litestar.testing import TestClient

from qa.api import ApiSettings, create_app
from qa.cli import main
from qa.documents import Document, iter_documents
from qa.errors import QuestionError
from qa.filters import SearchFilter, filter_from_options, parse_filter
from qa.index import DocumentUpsert, IndexBackend, PassageUpsert, open_index
from qa.index.base import ModelIdentity
from qa.ingest import ingest_documents
from qa.metadata import Metadata, parse_metadata
from qa.search import SearchService
from qa.service import model_identity, open_service
from tests.fakes import FakeEncoder
from tests.helpers import SEEDS

# -- parsing ----------------------------------------------------------------------------------


def test_a_filter_is_parsed_once_for_every_surface():
    parsed = parse_filter(
        {
            "documents": ["a", "b", "a"],
            "sources": "Reuters",
            "tags": ["syria"],
            "lang": ["AR", "en"],
            "published_after": "2019-01-01",
            "published_before": "2019-02-01T00:00:00+03:00",
        }
    )
    assert parsed == SearchFilter(
        documents=("a", "b"),
        sources=("Reuters",),
        tags=("syria",),
        langs=("ar", "en"),
        published_after="2019-01-01",
        published_before="2019-01-31T21:00:00Z",
    )
    assert parse_filter(None) is None and parse_filter({}) is None
    assert parse_filter({"sources": None}) is None  # null keys are absent keys
    assert filter_from_options(sources=(), tags=None, published_after="") is None


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ({"source": ["x"]}, "unknown filter key 'source'; the keys are documents, sources"),
        ({"a": 1, "b": 2}, "unknown filter keys 'a', 'b'"),
        ({"sources": 5}, "filter.sources must be a list of strings"),
        ({"tags": ["x", 3]}, "filter.tags must be a list of strings"),
        ({"tags": []}, "filter.tags is an empty list"),
        ({"documents": [" "]}, "filter.documents holds a value with nothing visible in it"),
        ({"sources": ["\u200b"]}, "filter.sources holds a value with nothing visible in it"),
        ({"published_before": ""}, "filter.published_before is an empty string, not a date"),
        ({"lang": "arabic!"}, "lang 'arabic!' is not a language code"),
        ({"published_after": "2019-13-01"}, "filter.published_after '2019-13-01' is not a real date"),
        ({"published_after": "last week"}, "is not an ISO 8601 date or datetime"),
        ({"published_before": 2019}, "filter.published_before must be a string"),
        (["sources"], "filter must be an object"),
    ],
)
def test_a_bad_filter_says_what_is_wrong(given, message):
    with pytest.raises(QuestionError) as caught:
        parse_filter(given)
    assert message in str(caught.value)


def test_dates_sort_as_time_whatever_their_zone():
    meta = parse_metadata(published="2019-01-31T01:30:00+03:00", tags=["a", " a ", "b"], lang="AR")
    assert meta == Metadata(published="2019-01-30T22:30:00Z", lang="ar", tags=("a", "b"))
    assert parse_metadata(published="2019-01-31").published == "2019-01-31"
    # A date is the start of its day: before every datetime of that day, after the day before.
    assert "2019-01-30T23:59:59Z" < "2019-01-31" < "2019-01-31T00:00:00Z"


# -- the index backends -------------------------------------------------------------------------


def news(doc_id: str, text: str, source: str, published: str | None, tags=(), lang: str = "en") -> Document:
    meta = parse_metadata(
        published=published, tags=list(tags), lang=lang, url=f"https://news.example/{doc_id}"
    )
    return Document(id=doc_id, title=text.split("\n")[0], text=text, source=source, meta=meta)


NEWS = [
    news("r1", "Envoy in Geneva\nThe envoy met the committee in Geneva.", "Reuters", "2019-01-10", ["un"]),
    news("r2", "Envoy in Brussels\nThe envoy met Jeffrey in Brussels.", "Reuters", "2019-02-03T09:00:00Z"),
    news(
        "a1",
        "Envoy in Moscow\nThe envoy met officials in Moscow.",
        "AFP",
        "2019-01-31T23:00:00Z",
        ["un", "ru"],
    ),
    news("a2", "المبعوث في جنيف\nالتقى المبعوث اللجنة الدستورية في جنيف.", "AFP", None, ["un"], lang="ar"),
]


@pytest.fixture
def news_index(index_location: str, fake_encoder: FakeEncoder) -> Iterator[IndexBackend]:
    index = open_index(index_location, model_identity(fake_encoder))
    ingest_documents(index, fake_encoder, NEWS)
    yield index
    index.close()


def found(index: IndexBackend, encoder: FakeEncoder, mode: str, **keys) -> set[str]:
    service = SearchService(index, encoder)
    within = parse_filter(keys) if keys else None
    response = service.ask("envoy met المبعوث", k=10, mode=mode, filter=within)
    return {hit.document.id for hit in response.passages}


@pytest.mark.parametrize("mode", ["dense", "lexical", "hybrid"])
@pytest.mark.parametrize(
    ("keys", "expected"),
    [
        ({}, {"r1", "r2", "a1", "a2"}),
        ({"documents": ["r2", "a2", "missing"]}, {"r2", "a2"}),
        ({"sources": ["AFP"]}, {"a1", "a2"}),
        ({"tags": ["ru", "nothing"]}, {"a1"}),
        ({"tags": ["un"]}, {"r1", "a1", "a2"}),
        ({"lang": "ar"}, {"a2"}),
        ({"published_after": "2019-01-31"}, {"r2", "a1"}),  # inclusive; undated a2 left out
        ({"published_before": "2019-02-01"}, {"r1", "a1"}),  # exclusive
        ({"published_after": "2019-01-11", "published_before": "2019-02-01"}, {"a1"}),
        ({"sources": ["Reuters"], "tags": ["un"]}, {"r1"}),  # keys combine with AND
        ({"sources": ["Nobody"]}, set()),
        ({"published_after": "2019-02-01", "published_before": "2019-01-01"}, set()),  # an empty range
    ],
)
def test_each_filter_key_keeps_only_matching_documents(news_index, fake_encoder, mode, keys, expected):
    assert found(news_index, fake_encoder, mode, **keys) == expected


def test_metadata_is_stored_and_read_back(news_index):
    with news_index.view() as view:
        stored = view.document("a1")
        listed = {document.id: document for document in view.list_documents()}
        exported = {document.id: document for document in view.iter_documents()}
        by_ids = view.documents(["a1"])
    expected = NEWS[2].meta
    assert stored is not None
    for got in (stored.meta, listed["a1"].meta, exported["a1"].meta, by_ids["a1"].meta):
        assert (got.published, got.lang, got.url, got.tags) == (
            expected.published,
            expected.lang,
            expected.url,
            expected.tags,
        )


def test_changing_only_metadata_replaces_the_document(news_index, fake_encoder):
    retagged = news("r1", NEWS[0].text, "Reuters", "2019-01-10", ["un", "geneva"])
    report = ingest_documents(news_index, fake_encoder, [retagged, NEWS[1]])
    assert report.replaced == ["r1"] and report.unchanged == ["r2"]
    assert found(news_index, fake_encoder, "dense", tags=["geneva"]) == {"r1"}


def test_a_document_without_metadata_keeps_its_old_content_hash():
    plain = Document(id="x", title="t", text="body", source="s")
    import hashlib

    assert plain.content_hash == hashlib.sha256(b"t\0body").hexdigest()


# -- recall: the filter is applied inside the search, not to its top k --------------------------


def _corpus(documents: int, per_document: int, dimension: int, seed: int = 7):
    """Clustered unit vectors (news passages cluster by topic), one source per document."""
    rng = np.random.default_rng(seed)
    centers = rng.standard_normal((40, dimension)).astype(np.float32)
    upserts, vectors = [], []
    for number in range(documents):
        mine = centers[rng.integers(0, 40, per_document)] + 0.7 * rng.standard_normal(
            (per_document, dimension)
        ).astype(np.float32)
        mine /= np.linalg.norm(mine, axis=1, keepdims=True)
        vectors.append(mine)
        text = " ".join(f"w{number}" for _ in range(per_document))
        passages = [PassageUpsert(2 * i, 2 * i + 1, mine[i], f"w{number}") for i in range(per_document)]
        upserts.append(
            DocumentUpsert(
                id=f"d{number:04d}",
                title=f"d{number}",
                source=f"s{number % 100}",  # one source in 100: a filter keeping 1 % of documents
                text=text,
                content_hash=str(number),
                passages=passages,
                sentences=[],
                meta=Metadata(published=f"2019-01-{1 + number % 28:02d}", tags=(f"t{number % 2}",)),
            )
        )
    return upserts, np.concatenate(vectors), rng


def _exact_top(view, allowed_documents: set[str], vectors_by_passage, query, k):
    candidates = [p for p in view.iter_passages() if p.document_id in allowed_documents]
    scores = [(float(vectors_by_passage[p.id] @ query), p.id) for p in candidates]
    return [pid for _, pid in sorted(scores, reverse=True)[:k]]


@pytest.mark.parametrize("kind", ["flat", "hnsw"])
def test_a_selective_filter_finds_what_exact_filtered_search_finds(tmp_path, kind):
    """400 documents x 8 passages; a source filter keeps 1 % of the documents. Filtered top 5
    must equal the exact top 5 of those documents, before and after compaction into the kind."""
    dimension = 32
    upserts, _, rng = _corpus(400, 8, dimension)
    identity = ModelIdentity("synthetic", "synthetic-v1", dimension)
    with open_index(tmp_path / kind, identity, vector_kind=kind) as index:
        index.write(upserts[:200])
        index.compact()  # half in the checkpoint (of `kind`), half in the log's exact segments
        index.write(upserts[200:])
        within = SearchFilter(sources=("s7",))
        allowed = {u.id for u in upserts if u.source == "s7"}
        with index.view() as view:
            ids = [p.id for p in view.iter_passages()]
            vectors_by_passage = dict(zip(ids, view.passage_vectors(ids), strict=True))
            for _ in range(20):
                query = rng.standard_normal(dimension).astype(np.float32)
                query /= np.linalg.norm(query)
                got = [pid for pid, _ in view.dense_search(query, 5, within)]
                assert got == _exact_top(view, allowed, vectors_by_passage, query, 5)
        described = index.describe()
    assert kind in json.dumps(described)


def test_a_broad_filter_on_a_graph_index_keeps_its_recall(tmp_path, monkeypatch):
    """A filter keeping half the documents walks the HNSW graph (the exact path is turned off
    here) with a widened candidate list: recall@5 against exact filtered search stays >= 0.95."""
    from qa.index.local import faiss_index

    monkeypatch.setattr(faiss_index, "EXACT_SEARCH_WITHIN", 0)
    dimension = 32
    upserts, _, rng = _corpus(600, 8, dimension, seed=11)
    identity = ModelIdentity("synthetic", "synthetic-v1", dimension)
    with open_index(tmp_path / "hnsw", identity, vector_kind="hnsw") as index:
        index.write(upserts)
        index.compact()
        within = SearchFilter(tags=("t1",))
        allowed = {u.id for u in upserts if "t1" in u.meta.tags}
        with index.view() as view:
            ids = [p.id for p in view.iter_passages()]
            vectors_by_passage = dict(zip(ids, view.passage_vectors(ids), strict=True))
            hits = 0
            for _ in range(30):
                query = rng.standard_normal(dimension).astype(np.float32)
                query /= np.linalg.norm(query)
                got = {pid for pid, _ in view.dense_search(query, 5, within)}
                hits += len(got & set(_exact_top(view, allowed, vectors_by_passage, query, 5)))
        assert index.describe()["vector_index"]["kind"] == "hnsw"
    assert hits / (30 * 5) >= 0.95


# -- the surfaces: API, web form, CLI ------------------------------------------------------------


@pytest.fixture
def news_service(tmp_path: Path, fake_encoder: FakeEncoder) -> SearchService:
    service = open_service(tmp_path / "index", encoder=fake_encoder)
    ingest_documents(service.index, fake_encoder, NEWS)
    return service


@pytest.fixture
def news_client(news_service: SearchService) -> Iterator[TestClient]:
    with TestClient(create_app(news_service, settings=ApiSettings(api_token=None))) as news_client:
        yield news_client


def ids_of(body: dict) -> set[str]:
    return {hit["document"]["id"] for hit in body["passages"]}


def test_post_ask_takes_a_filter(news_client):
    body = {
        "question": "envoy met",
        "k": 10,
        "filter": {"sources": ["AFP"], "published_before": "2019-02-01"},
    }
    response = news_client.post("/api/ask", json=body)
    assert response.status_code == 200, response.text
    assert ids_of(response.json()) == {"a1"}
    hit = response.json()["passages"][0]["document"]
    assert hit["published"] == "2019-01-31T23:00:00Z" and hit["url"] == "https://news.example/a1"
    assert hit["tags"] == ["un", "ru"] and hit["lang"] == "en" and hit["source"] == "AFP"


def test_get_ask_takes_the_filter_as_query_parameters(news_client):
    response = news_client.get("/api/ask?q=envoy+met&k=10&tags=un&tags=ru&lang=en")
    assert response.status_code == 200, response.text
    assert ids_of(response.json()) == {"r1", "a1"}
    response = news_client.get("/api/ask", params={"q": "envoy met", "k": 10, "documents": ["r2", "a2"]})
    assert ids_of(response.json()) == {"r2", "a2"}


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({"filter": {"source": ["AFP"]}}, "unknown field `source`"),
        ({"filter": {"sources": "AFP"}}, "got `str` - at `$.filter.sources`"),
        ({"filter": {"tags": [1]}}, "at `$.filter.tags[0]`"),
        ({"filter": {"published_after": "31/01/2019"}}, "is not an ISO 8601 date"),
        ({"filter": {"published_after": "2019-02-30"}}, "is not a real date"),
        ({"filter": {"tags": []}}, "filter.tags is an empty list"),
        ({"filter": "sources=AFP"}, "at `$.filter`"),
    ],
)
def test_post_ask_refuses_a_bad_filter_with_400(news_client, body, fragment):
    response = news_client.post("/api/ask", json={"question": "envoy", **body})
    assert response.status_code == 400, response.text
    assert fragment in response.text


@pytest.mark.parametrize(
    ("query", "fragment"),
    [
        ("q=envoy&source=AFP", "unknown query parameter 'source'"),
        ("q=envoy&published_after=yesterday", "is not an ISO 8601 date"),
        ("q=envoy&lang=xx-!", "is not a language code"),
    ],
)
def test_get_ask_refuses_a_bad_filter_with_400(news_client, query, fragment):
    response = news_client.get(f"/api/ask?{query}")
    assert response.status_code == 400, response.text
    assert fragment in response.text


def test_the_web_form_filters_by_source_and_date_range(news_client):
    page = news_client.get("/", params={"q": "envoy met", "k": 10, "source": "AFP", "since": "", "until": ""})
    assert page.status_code == 200
    assert 'data-document="a1"' in page.text and 'data-document="a2"' in page.text
    assert 'data-document="r1"' not in page.text
    assert 'name="source"' in page.text and 'value="AFP"' in page.text
    # "Until" includes its day: a1 was published late on 2019-01-31.
    page = news_client.get(
        "/", params={"q": "envoy met", "k": 10, "since": "2019-01-11", "until": "2019-01-31"}
    )
    assert 'data-document="a1"' in page.text and 'data-document="r2"' not in page.text
    assert '<time datetime="2019-01-31T23:00:00Z">2019-01-31</time>' in page.text
    page = news_client.get("/", params={"q": "envoy", "since": "2019-02-01", "until": "2019-01-01"})
    assert page.status_code == 200 and "No passage answers this question" in page.text  # an empty range
    page = news_client.get("/", params={"q": "envoy", "until": "31/01/2019"})
    assert page.status_code == 400 and "until must be a date such as 2019-01-31" in page.text


def test_documents_sent_to_the_api_keep_their_metadata(news_client, news_service):
    sent = {"text": "Quokkas\n\nQuokkas were seen in Aleppo.", "id": "q1", "tags": "animals", "lang": "en"}
    auth = {"Authorization": "Bearer writer-secret"}
    client_with_writes = TestClient(create_app(news_service, settings=ApiSettings(api_token="writer-secret")))
    client_with_writes.headers.update(auth)
    with client_with_writes:
        response = client_with_writes.post("/api/documents", json=sent)
        assert response.status_code == 201, response.text
        assert response.json()["document"]["tags"] == ["animals"]
        bad = client_with_writes.post("/api/documents", json=sent | {"published": "soon"})
        assert bad.status_code == 400 and "published 'soon' is not an ISO 8601" in bad.text
        detail = client_with_writes.get("/api/documents/q1").json()
        assert detail["tags"] == ["animals"] and detail["lang"] == "en"


def test_jsonl_metadata_fields_are_read(tmp_path):
    path = tmp_path / "news.jsonl"
    rows = [
        {"id": "n1", "text": "Envoy met", "date": "2019-01-02", "tags": ["un"], "author": "Ali", "url": "u"},
        {"id": "n2", "text": "Envoy met", "published": "2019-01-03T10:00:00+01:00", "lang": "ar"},
        {"id": "n3", "text": "Envoy met", "published": "yesterday"},
    ]
    path.write_text("\n".join(json.dumps(row) for row in rows), encoding="utf-8")
    items = list(iter_documents([path]))
    first, second, skipped = items
    assert first.meta.published == "2019-01-02" and first.meta.tags == ("un",) and first.meta.author == "Ali"
    assert first.source == "u" and first.meta.url is None  # the source still; not a web address to cite
    assert second.meta.published == "2019-01-03T09:00:00Z" and second.meta.lang == "ar"
    assert "published 'yesterday' is not an ISO 8601" in skipped.reason


# -- the real model: the seeds with metadata, through the CLI ------------------------------------

BRUSSELS = "002_b8689e71eb8b336f"


@pytest.fixture(scope="module")
def dated_seeds(tmp_path_factory, real_encoder) -> Path:
    """The seed articles as a JSONL collection with sources, dates and tags, in a real index."""
    folder = tmp_path_factory.mktemp("dated")
    rows = []
    for number, document in enumerate(d for d in iter_documents([SEEDS]) if isinstance(d, Document)):
        rows.append(
            {
                "id": document.id,
                "text": document.text,
                "source": "Elaph" if number % 2 == 0 else "Asharq",
                "published": f"2020-0{number + 1}-15",
                "tags": ["syria"] if document.id != BRUSSELS else ["syria", "diplomacy"],
            }
        )
    collection = folder / "seeds.jsonl"
    collection.write_text("\n".join(json.dumps(row, ensure_ascii=False) for row in rows), encoding="utf-8")
    index_dir = folder / "index"
    service = open_service(index_dir, encoder=real_encoder)
    report = ingest_documents(service.index, real_encoder, list(iter_documents([collection])))
    service.index.close()
    assert len(report.added) == len(rows)
    return index_dir


def _cli_ask(index_dir: Path, *options: str) -> list[dict]:
    result = CliRunner().invoke(
        main, ["ask", "who met Jeffrey in Brussels", "--index", str(index_dir), "-k", "3", "--json", *options]
    )
    assert result.exit_code == 0, result.output
    return json.loads(result.output.strip().splitlines()[-1])["passages"]


@pytest.mark.model
def test_the_cli_filters_and_the_answer_survives_a_filter_that_keeps_it(dated_seeds):
    hits = _cli_ask(dated_seeds, "--tag", "diplomacy")
    assert {hit["document"]["id"] for hit in hits} == {BRUSSELS}
    assert "عبد الرحمن مصطفى" in hits[0]["text"]
    assert hits[0]["document"]["tags"] == ["syria", "diplomacy"] and hits[0]["document"]["lang"] == "ar"
    brussels_date = hits[0]["document"]["published"]
    elsewhere = _cli_ask(dated_seeds, "--before", brussels_date)
    assert elsewhere and all(hit["document"]["published"] < brussels_date for hit in elsewhere)
    assert all(hit["document"]["id"] != BRUSSELS for hit in elsewhere)


# -- edges found in review ------------------------------------------------------------------------


def test_dates_at_the_ends_of_the_calendar_are_a_clear_error_or_a_padded_year(tmp_path):
    assert parse_metadata(published="0999-05-01T10:00:00").published == "0999-05-01T10:00:00Z"
    with pytest.raises(QuestionError, match="out of the range of dates"):
        parse_filter({"published_after": "0001-01-01T00:00:00+01:00"})
    path = tmp_path / "edge.jsonl"
    rows = [
        {"id": "ok", "text": "fine"},
        {"id": "far", "text": "x", "published": "9999-12-31T23:30:00-02:00"},
    ]
    path.write_text("\n".join(json.dumps(row) for row in rows), encoding="utf-8")
    ok, skipped = list(iter_documents([path]))
    assert ok.id == "ok" and "out of the range of dates" in skipped.reason


def test_the_api_and_the_form_answer_calendar_edges_without_a_500(client):
    response = client.post(
        "/api/ask", json={"question": "envoy", "filter": {"published_before": "9999-12-31T23:00:00-05:00"}}
    )
    assert response.status_code == 400 and "out of the range of dates" in response.text
    assert client.get("/", params={"q": "envoy", "until": "9999-12-31"}).status_code == 200


def test_a_language_filter_matches_regional_codes(index_location, fake_encoder):
    documents = [
        news("sa", "الرياض\nالتقى المبعوث الوزير في الرياض.", "SPA", None, lang="ar-SA"),
        news("en", "Riyadh\nThe envoy met the minister in Riyadh.", "AP", None, lang="en"),
    ]
    with open_index(index_location, model_identity(fake_encoder)) as index:
        ingest_documents(index, fake_encoder, documents)
        assert found(index, fake_encoder, "dense", lang=["ar"]) == {"sa"}
        assert found(index, fake_encoder, "lexical", lang=["ar"]) == {"sa"}
        assert found(index, fake_encoder, "dense", lang=["ar-sa"]) == {"sa"}
        assert found(index, fake_encoder, "dense", lang=["ar-eg"]) == set()


def test_a_new_source_or_metadata_is_written_even_when_the_text_is_the_same(news_index, fake_encoder):
    moved = Document(NEWS[0].id, NEWS[0].title, NEWS[0].text, "AP", NEWS[0].meta)
    report = ingest_documents(news_index, fake_encoder, [moved, NEWS[1]])
    assert report.replaced == ["r1"] and report.unchanged == ["r2"]
    assert found(news_index, fake_encoder, "dense", sources=["AP"]) == {"r1"}


def test_citation_urls_are_web_addresses_and_tags_may_be_one_string():
    from qa.errors import DocumentError

    with pytest.raises(DocumentError, match="is not an http"):
        parse_metadata(url="javascript:alert(1)")
    assert parse_metadata(url="https://news.example/a").url == "https://news.example/a"
    assert parse_metadata(tags="syria, un؛ geneva").tags == ("syria", "un", "geneva")
