"""The local vector index (FAISS): approximate kinds (HNSW, IVF) and their search effort, and the
automatic switch between exact and approximate search as the corpus grows and shrinks.

No timing assertions: speed is measured by `qa bench`, not by tests.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from qa.documents import Document
from qa.errors import IndexStateError
from qa.index import IndexBackend, open_index
from qa.index.local import MANIFEST
from qa.index.local.faiss_index import FaissBackend, VectorIndexPolicy
from qa.ingest import ingest_documents, remove_document
from qa.search import SearchService
from qa.service import model_identity
from tests.fakes import FakeEncoder

# -- approximate indexes -------------------------------------------------------------------------


def _unit_vectors(count: int, dimension: int = 32, seed: int = 0) -> np.ndarray:
    vectors = np.random.default_rng(seed).standard_normal((count, dimension)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


@pytest.mark.parametrize("kind", ["hnsw", "ivf"])
def test_an_approximate_index_finds_vectors_and_forgets_deleted_ones(kind, tmp_path):
    vectors = _unit_vectors(2000)
    ids = np.arange(1000, 3000)
    backend = FaissBackend.build(32, kind, ids, vectors)
    _, found = backend.search(vectors[:50], 1)
    assert (found[:, 0] == ids[:50]).mean() >= 0.9

    backend.delete(ids[:10])
    assert len(backend) == 1990
    _, found = backend.search(vectors[:10], 20)
    assert not set(found.ravel().tolist()) & set(ids[:10].tolist())

    backend.save(tmp_path / "v.faiss")
    loaded = FaissBackend.load(tmp_path / "v.faiss", 32)
    assert (loaded.kind, len(loaded)) == (kind, 1990)
    _, found = loaded.search(vectors[:10], 20)
    assert not set(found.ravel().tolist()) & set(ids[:10].tolist())
    live_ids, live_vectors = loaded.contents()
    assert sorted(live_ids.tolist()) == ids[10:].tolist()
    # stored as float16: each component within its rounding (~5e-4 of a unit vector's entries)
    assert loaded.describe()["stored_as"] == "float16" and live_vectors.dtype == np.float32
    np.testing.assert_allclose(live_vectors[np.argsort(live_ids)], vectors[10:], atol=1e-3)


@pytest.mark.parametrize("kind", ["flat", "hnsw", "ivf"])
def test_a_batch_of_queries_finds_what_each_query_finds_alone(kind):
    """Single questions search on the calling thread, batches on all threads: the same results."""
    vectors = _unit_vectors(3000, seed=3)
    backend = FaissBackend.build(32, kind, np.arange(3000), vectors)
    queries = _unit_vectors(40, seed=4)
    batch_scores, batch_ids = backend.search(queries, 5)
    for row, query in enumerate(queries):
        scores, ids = backend.search(query[None, :], 5)
        assert ids[0].tolist() == batch_ids[row].tolist()
        np.testing.assert_allclose(scores[0], batch_scores[row], rtol=1e-5)


@pytest.mark.parametrize(
    ("kind", "setting", "low", "high"), [("hnsw", "ef_search", 1, 256), ("ivf", "probes", 1, 64)]
)
def test_more_search_effort_finds_at_least_as_many_true_neighbours(kind, setting, low, high):
    vectors = _unit_vectors(4000, seed=5)
    backend = FaissBackend.build(32, kind, np.arange(4000), vectors)
    queries = _unit_vectors(100, seed=6)
    truth = np.argsort(-(queries @ vectors.T), axis=1)[:, :10]

    def recall(value: int) -> float:
        backend.tune(**{setting: value})
        _, found = backend.search(queries, 10)
        return float(np.mean([len(set(f) & set(t)) / 10 for f, t in zip(found, truth, strict=True)]))

    assert recall(high) > recall(low)  # the effort reaches the search: it changes the result
    assert recall(high) >= 0.9


def test_hnsw_search_effort_follows_the_corpus_size_unless_set(monkeypatch):
    from qa.index.local import faiss_index as faiss_backend

    monkeypatch.delenv("QA_HNSW_EF_SEARCH", raising=False)
    assert faiss_backend.hnsw_ef_search(1_000_000) == faiss_backend.HNSW_EF_SEARCH
    assert faiss_backend.hnsw_ef_search(100_000) == 324
    assert faiss_backend.hnsw_ef_search(20_000) == 145
    assert faiss_backend.hnsw_ef_search(50) == 128 and faiss_backend.hnsw_ef_search(10**9) == 2048
    backend = FaissBackend.build(32, "hnsw", np.arange(500), _unit_vectors(500))
    assert backend.describe()["ef_search"] == 128
    monkeypatch.setenv("QA_HNSW_EF_SEARCH", "40")
    assert backend.ef_search == 40
    backend.tune(ef_search=77)
    assert backend.describe()["ef_search"] == 77


def test_a_single_question_search_leaves_the_thread_count_as_it_found_it():
    import faiss

    backend = FaissBackend.build(32, "hnsw", np.arange(300), _unit_vectors(300))
    before = faiss.omp_get_max_threads()
    backend.search(_unit_vectors(1, seed=9), 5)
    assert faiss.omp_get_max_threads() == before


def test_an_ivf_index_written_with_float32_lists_still_loads_and_reads_back(tmp_path):
    """Indexes saved before float16 storage keep working."""
    import faiss

    vectors = _unit_vectors(500)
    quantizer = faiss.IndexFlatIP(32)
    old = faiss.IndexIVFFlat(quantizer, 32, 8, faiss.METRIC_INNER_PRODUCT)
    old.train(vectors)
    old.add_with_ids(vectors, np.arange(500, 1000))
    faiss.write_index(old, str(tmp_path / "old.faiss"))
    loaded = FaissBackend.load(tmp_path / "old.faiss", 32)
    assert loaded.describe()["stored_as"] == "float32"
    ids, stored = loaded.contents()
    np.testing.assert_array_equal(stored[np.argsort(ids)], vectors)


def test_a_copy_of_an_hnsw_index_is_independent():
    vectors = _unit_vectors(500)
    original = FaissBackend.build(32, "hnsw", np.arange(500), vectors)
    copy = original.copy()
    copy.delete(np.array([1, 2, 3]))
    assert (len(original), len(copy)) == (500, 497)
    assert original.describe()["deleted"] == 0


def test_an_hnsw_index_with_many_deleted_rows_is_rebuilt_compact():
    vectors = _unit_vectors(400)
    backend = FaissBackend.build(32, "hnsw", np.arange(400), vectors)
    backend.delete(np.arange(50))
    assert backend.adapted(VectorIndexPolicy("hnsw")) is backend  # few tombstones: kept
    backend.delete(np.arange(50, 150))
    rebuilt = backend.adapted(VectorIndexPolicy("hnsw"))
    assert rebuilt is not backend and rebuilt.describe()["deleted"] == 0
    assert sorted(rebuilt.contents()[0].tolist()) == list(range(150, 400))


# -- the automatic switch ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("count", "current", "expected"),
    [
        (0, None, "flat"),
        (99, "flat", "flat"),
        (100, "flat", "hnsw"),
        (60, "hnsw", "hnsw"),
        (49, "hnsw", "flat"),
    ],
)
def test_auto_policy_switches_at_the_threshold_with_hysteresis(count, current, expected):
    assert VectorIndexPolicy("auto", switch_at=100).kind_for(count, current) == expected


def test_a_fixed_policy_ignores_size_but_ivf_needs_vectors_to_train():
    assert VectorIndexPolicy("hnsw").kind_for(3) == "hnsw"
    assert VectorIndexPolicy("flat").kind_for(10**7) == "flat"
    assert VectorIndexPolicy("ivf").kind_for(10) == "flat"
    assert VectorIndexPolicy("ivf").kind_for(10_000) == "ivf"


def test_policy_settings_resolve_argument_then_environment_then_manifest(monkeypatch):
    recorded = {"policy": "hnsw", "switch_at": 500}
    assert VectorIndexPolicy.resolve(None, recorded) == VectorIndexPolicy("hnsw", 500)
    monkeypatch.setenv("QA_VECTOR_INDEX", "flat")
    monkeypatch.setenv("QA_VECTOR_INDEX_SWITCH_AT", "7")
    assert VectorIndexPolicy.resolve(None, recorded) == VectorIndexPolicy("flat", 7)
    assert VectorIndexPolicy.resolve("ivf", recorded).requested == "ivf"


@pytest.mark.parametrize(
    ("variable", "value"), [("QA_VECTOR_INDEX", "annoy"), ("QA_VECTOR_INDEX_SWITCH_AT", "x")]
)
def test_a_bad_vector_index_setting_is_a_clear_error(tmp_path, monkeypatch, variable, value):
    monkeypatch.setenv(variable, value)
    with pytest.raises(IndexStateError, match="QA_VECTOR_INDEX"):
        open_index(tmp_path / "index", model_identity(FakeEncoder()))


TOPICS = ["Idlib ceasefire", "Geneva constitution", "Brussels conference", "Moscow visit", "Ankara talks"]


def _documents(count: int) -> list[Document]:
    return [
        Document(
            f"doc{n:02d}", f"title {n}", f"Report {n} on the {TOPICS[n % 5]} and item{n}.", f"doc{n}.txt"
        )
        for n in range(count)
    ]


def _manifest(index: IndexBackend) -> dict:
    """What the manifest records once the logged vectors are folded into a new checkpoint (where
    the corpus size picks the kind of vector index)."""
    index.compact()
    return json.loads((Path(index.location) / MANIFEST).read_text())["vector_index"]


def _vectors(index: IndexBackend):
    with index.view() as view:
        return view.vectors


def test_the_index_switches_to_hnsw_as_it_grows_and_back_as_it_shrinks(tmp_path, monkeypatch):
    monkeypatch.setenv("QA_VECTOR_INDEX_SWITCH_AT", "10")
    encoder = FakeEncoder()
    index = open_index(tmp_path / "index", model_identity(encoder))
    assert _manifest(index) == {"kind": "flat", "stored_as": "float32", "policy": "auto", "switch_at": 10}

    documents = _documents(12)
    ingest_documents(index, encoder, documents[:6])
    assert _manifest(index)["kind"] == "flat"
    ingest_documents(index, encoder, documents[6:])
    assert _manifest(index)["kind"] == "hnsw" and len(_vectors(index)) == 12

    service = SearchService(index, encoder)
    hits = service.ask("item7 Report 7", k=3, mode="dense").passages
    assert hits[0].document.id == "doc07"

    monkeypatch.delenv("QA_VECTOR_INDEX_SWITCH_AT")
    reopened = open_index(tmp_path / "index", model_identity(encoder))  # the manifest keeps the setting
    assert reopened.vector_policy == VectorIndexPolicy("auto", 10) and _vectors(reopened).base.kind == "hnsw"
    for document in documents[:8]:
        remove_document(reopened, document.id)
    assert _manifest(reopened)["kind"] == "flat" and len(_vectors(reopened)) == 4


def test_a_fixed_kind_overrides_the_automatic_choice(tmp_path, monkeypatch):
    monkeypatch.setenv("QA_VECTOR_INDEX_SWITCH_AT", "3")
    monkeypatch.setenv("QA_VECTOR_INDEX", "flat")
    encoder = FakeEncoder()
    index = open_index(tmp_path / "index", model_identity(encoder))
    ingest_documents(index, encoder, _documents(8))
    assert _manifest(index)["kind"] == "flat" and _manifest(index)["policy"] == "flat"
