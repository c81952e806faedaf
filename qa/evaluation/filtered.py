"""Does a filter lose recall? Filtered dense search against exact filtered search, on an
evaluation set whose documents are spread over 100 sources, so that a filter on one source keeps
1 % of the documents.

For each question the filter names the source of its gold document. Three rankings of the
passages that filter allows are compared with the exact top 5 (every allowed passage scored):

- `filtered`: `view.dense_search(vector, 5, within)`, the filter inside the search (what `qa`
  does);
- `post-filter`: the unfiltered top 50 with the other sources dropped afterwards, the shortcut
  a filter must not take;
- and end to end, `SearchService.ask(..., filter=...)` in hybrid mode: is the gold document first?

Run: python -m qa.evaluation.filtered [--set hard-tune] [--kind hnsw] [--index postgresql://...]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import statistics
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from qa.documents import Document
from qa.filters import SearchFilter
from qa.index import IndexView
from qa.search import SearchService, validate_question
from qa.textnorm import clean_text

SOURCES = 100
K = 5
POST_FILTER_DEPTH = 50


def _source(document_id: str) -> str:
    """One of SOURCES sources, by a hash of the id: stable across runs and machines."""
    bucket = int.from_bytes(hashlib.sha256(document_id.encode()).digest()[:4], "little") % SOURCES
    return f"source-{bucket:02d}"


def _spread(documents: tuple[Document, ...]) -> list[Document]:
    return [replace(document, source=_source(document.id)) for document in documents]


def _exact_scores(view: IndexView, allowed: np.ndarray, vector: np.ndarray) -> dict[int, float]:
    vectors = view.passage_vectors([int(i) for i in allowed])
    return {int(pid): float(score) for pid, score in zip(allowed, vectors @ vector, strict=True)}


def _top(scores: dict[int, float], k: int) -> list[int]:
    return sorted(scores, key=lambda pid: -scores[pid])[:k]


def measure(set_name: str, kind: str | None, index_url: str | None, data_dir: Path | None) -> dict:
    from embeddings.cache import CachedEncoder
    from embeddings.engines import load_encoder
    from qa.evaluation.datasets import load_set
    from qa.evaluation.runner import embed_in_bulk, scratch_location
    from qa.index import open_index
    from qa.ingest import ingest_documents
    from qa.service import model_identity

    eval_set = load_set(set_name, data_dir)
    documents = _spread(eval_set.documents)
    source_of = {document.id: document.source for document in documents}
    encoder = CachedEncoder(load_encoder(), None, progress=True)
    with scratch_location("filtered", index_url) as target:
        index = open_index(target, model_identity(encoder), vector_kind=kind)
        with index:
            embed_in_bulk(documents, encoder, index.chunking)
            ingest_documents(index, encoder, documents)
            if kind:
                index.compact()  # the vectors into an index of that kind
            service = SearchService(index, encoder)
            questions = [validate_question(q.text) for q in eval_set.questions]
            vectors = encoder.encode_queries([clean_text(q) for q in questions])
            rows = _compare(service, eval_set.questions, questions, vectors, source_of)
            described = index.describe()
    encoder.close()
    return {
        "set": set_name,
        "backend": "postgresql" if index_url else "local",
        "vector_index": described.get("vector_index", {}).get("kind", described.get("backend")),
        "documents": len(documents),
        "questions": len(questions),
        "sources": SOURCES,
        **rows,
    }


def _compare(service, gold_questions, questions, vectors, source_of) -> dict:
    filtered_recall, post_recall, kept_share = [], [], []
    # A filtered top 5 that differs from the exact one only by near-ties (the stores keep float16
    # vectors, so two scores within 1e-3 may swap): the largest exact-score shortfall of a swap.
    largest_shortfall = 0.0
    first_filtered, first_unfiltered = 0, 0
    filtered_ms, unfiltered_ms = [], []
    with service.index.view() as view:
        passages = list(view.iter_passages())
        document_of = {p.id: p.document_id for p in passages}
        total_documents = len(set(document_of.values()))
        for gold, vector in zip(gold_questions, vectors, strict=True):
            source = source_of[gold.gold]
            within = SearchFilter(sources=(source,))
            allowed = np.array([p.id for p in passages if source_of[p.document_id] == source], dtype=np.int64)
            kept_share.append(len({document_of[int(i)] for i in allowed}) / total_documents)
            scores = _exact_scores(view, allowed, vector)
            exact = _top(scores, K)
            started = time.perf_counter()
            found = [pid for pid, _ in view.dense_search(vector, K, within)]
            filtered_ms.append((time.perf_counter() - started) * 1000)
            started = time.perf_counter()
            unfiltered = view.dense_search(vector, POST_FILTER_DEPTH)
            unfiltered_ms.append((time.perf_counter() - started) * 1000)
            post = [
                pid for pid, _ in unfiltered if document_of.get(pid) and source_of[document_of[pid]] == source
            ]
            filtered_recall.append(len(set(found) & set(exact)) / len(exact))
            if set(found) != set(exact):
                shortfall = scores[exact[-1]] - min(scores[pid] for pid in found)
                largest_shortfall = max(largest_shortfall, shortfall)
            post_recall.append(len(set(post[:K]) & set(exact)) / len(exact))
        for gold, question in zip(gold_questions, questions, strict=True):
            within = SearchFilter(sources=(source_of[gold.gold],))
            with_filter = service.ask(question, k=1, filter=within).passages
            without = service.ask(question, k=1).passages
            first_filtered += bool(with_filter) and with_filter[0].document.id == gold.gold
            first_unfiltered += bool(without) and without[0].document.id == gold.gold
    count = len(questions)
    return {
        "kept_documents_share_mean": round(statistics.mean(kept_share), 4),
        "dense_recall_at_5": {
            "filtered": round(statistics.mean(filtered_recall), 4),
            "post_filter_top50": round(statistics.mean(post_recall), 4),
            "filtered_exact_questions": sum(r == 1.0 for r in filtered_recall),
            "largest_score_shortfall_of_a_swap": round(largest_shortfall, 6),
        },
        "dense_ms_p50": {
            "filtered": round(statistics.median(filtered_ms), 3),
            "unfiltered_top50": round(statistics.median(unfiltered_ms), 3),
        },
        "hybrid_gold_first": {
            "with_filter": round(first_filtered / count, 4),
            "without_filter": round(first_unfiltered / count, 4),
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--set", default="hard-tune", help="evaluation set (default hard-tune)")
    parser.add_argument("--kind", default=None, help="local vector index kind: flat, ivf or hnsw")
    parser.add_argument("--index", default=None, help="a postgresql:// URL instead of a local index")
    parser.add_argument("--data", type=Path, default=None, help="evaluation data (default QA_EVAL_DATA)")
    args = parser.parse_args()
    print(json.dumps(measure(args.set, args.kind, args.index, args.data), indent=2))


if __name__ == "__main__":
    main()
