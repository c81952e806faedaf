"""Document metadata and search filters on the PostgreSQL backend, against a real server: the
metadata round trip, each filter key alone and combined on both search paths (exact over the
filtered passages, HNSW with the filter inside its scan), recall against exact filtered search
in numpy, and the upgrade of a version-1 index."""

from __future__ import annotations

import threading
from collections.abc import Sequence

import numpy as np
import psycopg
import pytest
from pgvector import HalfVector
from pgvector.psycopg import register_vector
from psycopg import sql

from qa.chunking import ChunkingSettings
from qa.errors import IndexStateError
from qa.filters import SearchFilter
from qa.index import open_index
from qa.index.base import DocumentUpsert, ModelIdentity, PassageUpsert
from qa.index.postgres import backend, schema
from qa.index.postgres.location import PostgresLocation
from qa.language import detect_language
from qa.metadata import Metadata

DIMENSION = 16
TOY = ModelIdentity("toy", "toy-1", DIMENSION)


def unit_vectors(rng: np.random.Generator, count: int, dimension: int = DIMENSION) -> np.ndarray:
    vectors = rng.normal(size=(count, dimension)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def upsert(
    document_id: str,
    vectors: np.ndarray,
    meta: Metadata = Metadata(),  # noqa: B008 - frozen, never changed
    source: str = "s",
    terms: Sequence[str] = (),
) -> DocumentUpsert:
    """A document of one-character passages, passage i at offset i, with handmade vectors."""
    passages = [
        PassageUpsert(i, i + 1, vector, terms[i] if terms else "common") for i, vector in enumerate(vectors)
    ]
    return DocumentUpsert(
        document_id, f"title {document_id}", source, "x" * len(vectors), "h", passages, [], meta=meta
    )


# -- each key alone and combined --------------------------------------------------------------

CORPUS_META = {
    "a": ("Reuters", Metadata(published="2019-01-31", lang="ar", tags=("politics", "syria"))),
    "b": ("AFP", Metadata(published="2019-01-31T09:30:00Z", lang="en", tags=("sports",))),
    "c": ("Reuters", Metadata(published="2019-02-01", lang="en", tags=("politics",))),
    "d": ("BBC", Metadata(lang="ar")),  # no date, no tags
    "e": ("AFP", Metadata(published="2018-12-31T23:59:59Z", lang="ar", tags=("economy", "syria"))),
}

FILTERS = [
    (SearchFilter(documents=("a", "d", "nowhere")), "ad"),
    (SearchFilter(sources=("Reuters",)), "ac"),
    (SearchFilter(sources=("AFP", "BBC")), "bde"),
    (SearchFilter(tags=("syria",)), "ae"),
    (SearchFilter(tags=("sports", "economy")), "be"),
    (SearchFilter(langs=("en",)), "bc"),
    # A date is the start of its day; documents without a date fail any date bound.
    (SearchFilter(published_after="2019-01-31"), "abc"),
    (SearchFilter(published_after="2019-01-31T00:00:00Z"), "bc"),
    (SearchFilter(published_before="2019-01-31"), "e"),
    (SearchFilter(published_before="2019-02-01"), "abe"),
    (SearchFilter(published_after="2019-01-01", published_before="2019-02-01"), "ab"),
    (SearchFilter(sources=("Reuters", "AFP"), langs=("ar",)), "ae"),
    (SearchFilter(tags=("politics",), langs=("en",), published_after="2019-01-01"), "c"),
    (SearchFilter(sources=("AFP",), tags=("syria",), published_before="2019-01-01"), "e"),
    (SearchFilter(documents=("a", "b", "c"), sources=("Reuters",), tags=("politics",)), "ac"),
]
NOTHING = [
    SearchFilter(sources=("nobody",)),
    SearchFilter(documents=("nowhere",)),
    SearchFilter(langs=("en",), tags=("economy",)),
    SearchFilter(published_after="2030-01-01"),
]


@pytest.fixture(params=["exact", "hnsw"])
def search_path(request, monkeypatch) -> str:
    """Each filter test on both dense paths: HNSW whenever any passage matches, or exact."""
    if request.param == "hnsw":
        monkeypatch.setattr(backend, "EXACT_SEARCH_LIMIT", 0)
    return request.param


@pytest.fixture
def corpus(postgres_url):
    rng = np.random.default_rng(11)
    with open_index(postgres_url, TOY) as index:
        index.write(
            [
                upsert(doc_id, unit_vectors(rng, 2), meta, source, [f"common {doc_id}", "common word word"])
                for doc_id, (source, meta) in CORPUS_META.items()
            ]
        )
        yield index


def documents_of(view, ranked: list[tuple[int, float]]) -> list[str]:
    passages = view.passages([pid for pid, _ in ranked])
    return [passages[pid].document_id for pid, _ in ranked]


@pytest.mark.parametrize(
    ("within", "expected"), FILTERS, ids=lambda x: str(x) if isinstance(x, str) else None
)
def test_each_filter_key_alone_and_combined(corpus, search_path, within, expected):
    """Every passage of the matching documents and none other, dense and lexical; k is their
    number, so the HNSW path answers from its scan (fewer than k would fall back to exact)."""
    rng = np.random.default_rng(5)
    k = 2 * len(expected)
    with corpus.view() as view:
        dense = view.dense_search(unit_vectors(rng, 1)[0], k, within)
        lexical = view.lexical_search(["common"], 100, within)
        assert sorted(documents_of(view, dense)) == sorted(expected * 2)
        assert sorted(documents_of(view, lexical)) == sorted(expected * 2)


def test_filtered_bm25_keeps_the_global_term_statistics(corpus):
    """A filter removes passages from the ranking; it changes no score of those it keeps."""
    within = SearchFilter(tags=("syria",))
    with corpus.view() as view:
        everything = view.lexical_search(["common", "word", "a"], 100)
        kept = [
            hit
            for hit, document in zip(everything, documents_of(view, everything), strict=True)
            if document in "ae"
        ]
        assert view.lexical_search(["common", "word", "a"], 100, within) == kept
        assert view.lexical_search(["common", "word", "a"], 2, within) == kept[:2]


@pytest.mark.parametrize("within", NOTHING, ids=str)
def test_a_filter_matching_nothing_finds_nothing(corpus, search_path, within):
    with corpus.view() as view:
        assert view.dense_search(np.ones(DIMENSION, dtype=np.float32) / 4, 5, within) == []
        assert view.lexical_search(["common"], 5, within) == []


def test_an_empty_filter_is_no_filter(corpus):
    query = np.ones(DIMENSION, dtype=np.float32) / 4
    with corpus.view() as view:
        assert view.dense_search(query, 10, SearchFilter()) == view.dense_search(query, 10)
        assert view.lexical_search(["common"], 10, SearchFilter()) == view.lexical_search(["common"], 10)


# -- metadata ------------------------------------------------------------------------------------


def test_metadata_round_trip(postgres_url):
    rng = np.random.default_rng(2)
    full = Metadata(
        published="2019-01-31T09:30:00Z",
        lang="ar",
        url="https://example.org/a?x=1",
        author="Reuters staff",
        tags=("politics", "syria", "سوريا"),
    )
    with open_index(postgres_url, TOY) as index:
        index.write([upsert("full", unit_vectors(rng, 3), full), upsert("bare", unit_vectors(rng, 1))])
        with index.view() as view:
            assert view.document("full").meta == full and view.document("full").passages == 3
            assert view.document("bare").meta == Metadata()
            assert isinstance(view.document("full").meta.tags, tuple)
            assert {d.id: d.meta for d in view.documents(["full", "bare"]).values()} == {
                "full": full,
                "bare": Metadata(),
            }
            assert [(d.id, d.meta, d.passages) for d in view.list_documents()] == [
                ("bare", Metadata(), 1),
                ("full", full, 3),
            ]
            assert [d.meta for d in view.iter_documents()] == [Metadata(), full]
        changed = Metadata(published="2020-05-01", lang="en", tags=("sports",))
        index.write([upsert("full", unit_vectors(rng, 2), changed)])
        with index.view() as view:
            assert view.document("full").meta == changed and view.document("full").passages == 2
            assert not view.dense_search(rng.normal(size=DIMENSION), 5, SearchFilter(tags=("syria",)))


# -- recall against exact filtered search ----------------------------------------------------------

RECALL_DOCUMENTS = 300
RECALL_PASSAGES = 10  # a document
RECALL_DIMENSION = 32


@pytest.fixture
def recall_corpus(postgres_url):
    """3,000 random unit vectors in 300 documents; 3 documents (1 %) tagged "rare", every other
    one "half", each document one of 10 sources; and their float16 values, as stored."""
    rng = np.random.default_rng(42)
    vectors = unit_vectors(rng, RECALL_DOCUMENTS * RECALL_PASSAGES, RECALL_DIMENSION)
    tags = {
        i: (("rare",) if i % 100 == 17 else ()) + (("half",) if i % 2 == 0 else ())
        for i in range(RECALL_DOCUMENTS)
    }
    upserts = [
        upsert(
            f"d{i:03}",
            vectors[i * RECALL_PASSAGES : (i + 1) * RECALL_PASSAGES],
            Metadata(published=f"2019-{1 + i % 12:02}-01", lang="ar" if i % 3 else "en", tags=tags[i]),
            source=f"source{i % 10}",
        )
        for i in range(RECALL_DOCUMENTS)
    ]
    model = ModelIdentity("toy", "toy-1", RECALL_DIMENSION)
    with open_index(postgres_url, model) as index:
        index.write(upserts)
        analyze(postgres_url)  # the statistics autovacuum gathers in its own time: plans as on a real index
        with index.view() as view:
            rows = {(p.document_id, p.start): p.id for p in view.iter_passages()}
        ids = np.array(
            [rows[(f"d{i // RECALL_PASSAGES:03}", i % RECALL_PASSAGES)] for i in range(len(vectors))]
        )
        yield index, ids, vectors.astype(np.float16).astype(np.float32)


def analyze(url: str) -> None:
    where = PostgresLocation.parse(url)
    with psycopg.connect(where.conninfo, autocommit=True) as connection:
        for table in ("documents", "passages"):
            connection.execute(
                sql.SQL("ANALYZE {}.{}").format(sql.Identifier(where.schema), sql.Identifier(table))
            )


def exact_top(ids: np.ndarray, stored: np.ndarray, keep: np.ndarray, query: np.ndarray, k: int) -> list[int]:
    """The exact filtered top k in numpy, with the query in float16 as PostgreSQL gets it."""
    scores = stored @ query.astype(np.float16).astype(np.float32)
    candidates = np.flatnonzero(keep)
    best = candidates[np.argsort(-scores[candidates], kind="stable")[:k]]
    return [int(ids[i]) for i in best]


def kept(within: SearchFilter) -> np.ndarray:
    documents = np.arange(RECALL_DOCUMENTS * RECALL_PASSAGES) // RECALL_PASSAGES
    if within.tags == ("rare",):
        return documents % 100 == 17
    if within.tags == ("half",):
        return documents % 2 == 0
    if within.documents is not None:
        return np.isin(documents, [int(d[1:]) for d in within.documents])
    raise AssertionError(within)


class QueryLog:
    """The SQL a view runs, with its parameters, to see which path a search took."""

    def __init__(self, view) -> None:
        self.queries: list[tuple[str, object, object]] = []
        rows = view._rows

        def logged(query, parameters=(), **options):
            text = query if isinstance(query, str) else query.as_string(view._db)
            self.queries.append((text, query, parameters))
            return rows(query, parameters, **options)

        view._rows = logged

    def ran(self, fragment: str) -> bool:
        return any(fragment in text for text, _, _ in self.queries)

    def plan(self, view, fragment: str) -> str:
        """EXPLAIN of the last query holding `fragment`, with its own parameters."""
        _, query, parameters = next(q for q in reversed(self.queries) if fragment in q[0])
        return "\n".join(row[0] for row in view._db.execute(sql.SQL("EXPLAIN ") + query, parameters))


@pytest.mark.parametrize(
    "within",
    [SearchFilter(tags=("rare",)), SearchFilter(documents=("d005", "d123", "d299"))],
    ids=["tag", "documents"],
)
def test_a_selective_filter_finds_the_exact_top_5(recall_corpus, within):
    index, ids, stored = recall_corpus
    rng = np.random.default_rng(8)
    with index.view() as view:
        log = QueryLog(view)
        for query in unit_vectors(rng, 20, RECALL_DIMENSION):
            found = [pid for pid, _ in view.dense_search(query, 5, within)]
            assert found == exact_top(ids, stored, kept(within), query, 5)
        assert log.ran("CROSS JOIN LATERAL") and not log.ran("ORDER BY p.embedding <#>")


def test_a_broad_filter_searches_hnsw_with_high_recall(recall_corpus, monkeypatch):
    """Half the documents: the HNSW path, its threshold lowered to reach it at this size, and the
    planner kept from sorting: for 1,500 rows it rightly prefers a sort to starting an HNSW scan
    (at 100,000 passages it takes the HNSW index by itself). recall@5 >= 0.95."""
    monkeypatch.setattr(backend, "EXACT_SEARCH_LIMIT", 100)
    index, ids, stored = recall_corpus
    within = SearchFilter(tags=("half",))
    rng = np.random.default_rng(9)
    recalls = []
    with index.view() as view:
        view._db.execute("SET LOCAL enable_sort = off")
        log = QueryLog(view)
        for query in unit_vectors(rng, 20, RECALL_DIMENSION):
            found = [pid for pid, _ in view.dense_search(query, 5, within)]
            assert len(found) == 5
            recalls.append(len(set(found) & set(exact_top(ids, stored, kept(within), query, 5))) / 5)
        assert not log.ran("CROSS JOIN LATERAL")  # no fallback to exact
        plan = log.plan(view, "ORDER BY p.embedding <#>")
    assert "passages_by_embedding" in plan
    print(f"recall@5 with a 50 % filter on the HNSW path: {np.mean(recalls):.3f}")
    assert np.mean(recalls) >= 0.95


def test_an_hnsw_scan_that_ends_short_of_k_falls_back_to_exact(recall_corpus, monkeypatch):
    """When the HNSW path returns fewer than k passages (in production: its scan stopped at
    hnsw.max_scan_tuples), the search is done again exactly. Here it is reached with a threshold
    of 1 and k above the 10 passages the filter keeps; the exact search returns all 10, in order."""
    monkeypatch.setattr(backend, "EXACT_SEARCH_LIMIT", 1)
    index, ids, stored = recall_corpus
    within = SearchFilter(documents=("d042",))
    query = unit_vectors(np.random.default_rng(10), 1, RECALL_DIMENSION)[0]
    with index.view() as view:
        view._db.execute("SET LOCAL enable_sort = off")  # the HNSW plan, as in the test above
        log = QueryLog(view)
        found = [pid for pid, _ in view.dense_search(query, 15, within)]
    assert log.ran("ORDER BY p.embedding <#>") and log.ran("CROSS JOIN LATERAL")
    assert found == exact_top(ids, stored, kept(within), query, 15) and len(found) == 10


# -- the upgrade from version 1 ----------------------------------------------------------------------

# The tables of schema version 1, as the first release created them.
V1_TABLES = """
CREATE TABLE {schema}.meta (
    id integer PRIMARY KEY CHECK (id = 1),
    schema_version integer NOT NULL,
    model jsonb NOT NULL,
    chunking jsonb NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE {schema}.state (
    id integer PRIMARY KEY CHECK (id = 1),
    version bigint NOT NULL,
    documents bigint NOT NULL,
    passages bigint NOT NULL,
    lexical_length bigint NOT NULL,  -- terms in every passage: BM25's average length
    updated_at timestamptz NOT NULL
);
CREATE TABLE {schema}.documents (
    id text PRIMARY KEY,
    title text NOT NULL,
    source text NOT NULL,
    text text NOT NULL,
    content_hash text NOT NULL,
    added_at timestamptz NOT NULL
);
CREATE SEQUENCE {schema}.passage_ids;
CREATE TABLE {schema}.passages (
    id bigint PRIMARY KEY,
    document_id text NOT NULL REFERENCES {schema}.documents(id) ON DELETE CASCADE,
    char_start integer NOT NULL,
    char_end integer NOT NULL,
    lexical_length integer NOT NULL,
    embedding halfvec({dimension}) NOT NULL
);
CREATE INDEX passages_by_document ON {schema}.passages (document_id);
CREATE INDEX passages_by_embedding ON {schema}.passages
    USING hnsw (embedding halfvec_ip_ops) WITH (m = {m}, ef_construction = {ef_construction});
CREATE TABLE {schema}.sentences (
    document_id text NOT NULL REFERENCES {schema}.documents(id) ON DELETE CASCADE,
    char_start integer NOT NULL,
    char_end integer NOT NULL,
    vector bytea NOT NULL
);
CREATE INDEX sentences_by_document ON {schema}.sentences (document_id, char_start);
CREATE TABLE {schema}.postings (
    term text NOT NULL,
    passage_id bigint NOT NULL REFERENCES {schema}.passages(id) ON DELETE CASCADE,
    frequency integer NOT NULL,
    passage_length integer NOT NULL,
    PRIMARY KEY (term, passage_id)
);
CREATE INDEX postings_by_passage ON {schema}.postings (passage_id);
CREATE TABLE {schema}.terms (term text PRIMARY KEY, passages integer NOT NULL);
CREATE TABLE {schema}.words (id bigserial PRIMARY KEY, word text NOT NULL UNIQUE);
INSERT INTO {schema}.state VALUES (1, 0, 0, 0, 0, now());
"""


def create_version_1(url: str) -> None:
    """An index as version 1 wrote it, holding one document with two passages."""
    where = PostgresLocation.parse(url)
    name = sql.Identifier(where.schema)
    with psycopg.connect(where.conninfo, autocommit=True) as connection:
        register_vector(connection)
        connection.execute(sql.SQL("CREATE SCHEMA {}").format(name))
        connection.execute(
            sql.SQL(V1_TABLES).format(
                schema=name,
                dimension=sql.Literal(DIMENSION),
                m=sql.Literal(16),
                ef_construction=sql.Literal(64),
            )
        )
        connection.execute(
            sql.SQL("INSERT INTO {}.meta (id, schema_version, model, chunking) VALUES (1, 1, %s, %s)").format(
                name
            ),
            (psycopg.types.json.Jsonb(TOY.to_dict()), psycopg.types.json.Jsonb(ChunkingSettings().to_dict())),
        )
        connection.execute(
            sql.SQL("INSERT INTO {}.documents VALUES ('old', 'Old', 'archive', 'xy', 'h', now())").format(
                name
            )
        )
        for start in (0, 1):
            vector = np.zeros(DIMENSION, dtype=np.float32)
            vector[start] = 1.0
            connection.execute(
                sql.SQL("INSERT INTO {}.passages VALUES (nextval(%s), 'old', %s, %s, 1, %s)").format(name),
                (f"{where.schema}.passage_ids", start, start + 1, HalfVector(vector)),
            )
        connection.execute(
            sql.SQL("UPDATE {}.state SET version = 1, documents = 1, passages = 2").format(name)
        )


def meta_version(url: str) -> int:
    where = PostgresLocation.parse(url)
    with psycopg.connect(where.conninfo, autocommit=True) as connection:
        return schema.read_meta(connection, where.schema)["schema_version"]


def test_a_version_1_index_is_upgraded_on_open(postgres_url):
    create_version_1(postgres_url)
    query = np.eye(DIMENSION, dtype=np.float32)[0]
    with open_index(postgres_url, TOY) as index:
        assert meta_version(postgres_url) == schema.SCHEMA_VERSION == 2
        with index.view() as view:
            old = view.document("old")
            # The language is detected at the upgrade, from the text, as ingest does; nothing else.
            assert (
                old.meta == Metadata(lang=detect_language("xy")) and old.passages == 2 and old.title == "Old"
            )
            assert len(view.dense_search(query, 5, SearchFilter(sources=("archive",)))) == 2
            assert view.dense_search(query, 5, SearchFilter(tags=("syria",))) == []
            indexes = {
                name
                for (name,) in view._rows(
                    "SELECT indexname FROM pg_indexes WHERE schemaname = %s",
                    (PostgresLocation.parse(postgres_url).schema,),
                )
            }
        tagged = Metadata(published="2020-01-01", tags=("syria",))
        index.write([upsert("new", np.eye(DIMENSION, dtype=np.float32)[:1], tagged)])
        with index.view() as view:
            assert view.document("new").meta == tagged
            assert documents_of(view, view.dense_search(query, 5, SearchFilter(tags=("syria",)))) == ["new"]
    assert {
        "documents_by_tags",
        "documents_by_published",
        "documents_by_source",
        "documents_by_lang",
    } <= indexes
    with open_index(postgres_url, TOY) as again:  # opening again changes nothing
        assert again.describe()["documents"] == 2


def test_processes_opening_an_old_index_at_once_upgrade_it_once(postgres_url):
    create_version_1(postgres_url)
    ready = threading.Barrier(4)
    errors: list[BaseException] = []

    def open_it() -> None:
        ready.wait()
        try:
            open_index(postgres_url, TOY).close()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=open_it) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors and meta_version(postgres_url) == 2


def test_an_index_from_a_newer_version_is_refused(postgres_url):
    open_index(postgres_url, TOY).close()
    where = PostgresLocation.parse(postgres_url)
    with psycopg.connect(where.conninfo, autocommit=True) as connection:
        connection.execute(
            sql.SQL("UPDATE {}.meta SET schema_version = 3").format(sql.Identifier(where.schema))
        )
    with pytest.raises(IndexStateError, match=r"schema version 3.*Upgrade qa"):
        open_index(postgres_url, TOY)
