"""Run an evaluation set through the production pipeline: ingest → ask → score each ranking mode.

Each set gets its own throw-away index, built by `ingest_documents` with the same chunking and
embedding as `qa ingest`, and every question is ranked by `SearchService.rank`, the code behind
`qa ask`, from one encoding of the question per mode.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from embeddings.encoder import TextEncoder
from qa.chunking import ChunkingSettings
from qa.documents import Document
from qa.evaluation.copies import Shingles, is_copy, shingles
from qa.evaluation.datasets import EvalSet
from qa.evaluation.metrics import DEPTH, first_hit, share, summarize
from qa.index import IndexBackend, IndexView, open_index
from qa.ingest import ingest_documents, prepare_document
from qa.search import MODES, SearchService, SearchSettings, validate_question
from qa.service import model_identity
from qa.textnorm import clean_text, normalize_arabic


@dataclass
class ModeResult:
    ranks: list[int | None]  # rank of the first passage from the gold document, per question
    ms_per_question: float  # ranking only: the question is encoded once for all modes
    evidence_at_1: list[bool] | None = None  # the evidence phrase is inside the top passage
    hits_via_copy: int = 0  # first hits that came from another copy of the gold paragraph's text

    def metrics(self) -> dict[str, float]:
        result: dict[str, float] = summarize(self.ranks)
        if self.evidence_at_1 is not None:
            result["evidence@1"] = share(self.evidence_at_1)
        result["ms_per_question"] = round(self.ms_per_question, 3)
        return result


@dataclass
class SetResult:
    name: str
    description: str
    documents: int
    passages: int
    questions: int
    modes: dict[str, ModeResult]
    timings: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {mode: result.metrics() for mode, result in self.modes.items()}

    def info(self) -> dict:
        return {
            "description": self.description,
            "documents": self.documents,
            "passages": self.passages,
            "questions": self.questions,
            "hits_via_copy": {mode: result.hits_via_copy for mode, result in self.modes.items()},
            "seconds": {k: round(v, 3) for k, v in self.timings.items()},
        }


class _TextRecorder:
    """Stands in for the encoder during a dry run of chunking, to learn which texts ingest embeds."""

    def __init__(self, encoder: TextEncoder) -> None:
        self.name, self.dimension, self.fingerprint = encoder.name, encoder.dimension, encoder.fingerprint
        self.count_tokens = encoder.count_tokens
        self.texts: list[str] = []

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        raise NotImplementedError

    def encode_documents(self, texts: Sequence[str], *, show_progress: bool | None = None) -> np.ndarray:
        self.texts.extend(texts)
        return np.zeros((len(texts), self.dimension), dtype=np.float32)


def embed_in_bulk(documents: Sequence[Document], encoder: TextEncoder, chunking: ChunkingSettings) -> int:
    """Encode every passage and sentence of `documents` in one call before ingesting them.

    `ingest_documents` encodes one document at a time; with a caching encoder, one big call
    sorted by length wastes less on padding, and the per-document calls that follow are all hits.
    """
    recorder = _TextRecorder(encoder)
    for document in documents:
        prepare_document(document, recorder, chunking)
    encoder.encode_documents(recorder.texts)
    return len(recorder.texts)


@dataclass(frozen=True)
class IndexedPassage:
    document_id: str
    shingles: Shingles  # for recognizing a copy of another paragraph


@contextmanager
def scratch_location(name: str, index_url: str | None) -> Iterator[Path | str]:
    if index_url is None:
        with tempfile.TemporaryDirectory(prefix=f"qa-eval-{name}-") as tmp:
            yield Path(tmp) / "index"
        return
    from qa.index.postgres import drop_index, scratch_url

    url = scratch_url(index_url, f"eval_{name}")
    try:
        yield url
    finally:
        drop_index(url)


def build_index(
    directory: Path | str, eval_set: EvalSet, encoder: TextEncoder, chunking: ChunkingSettings
) -> tuple[IndexBackend, dict[int, IndexedPassage]]:
    """A fresh index of the set's documents, and what each passage id holds."""
    index = open_index(directory, model_identity(encoder), chunking=chunking)
    embed_in_bulk(eval_set.documents, encoder, chunking)
    ingest_documents(index, encoder, eval_set.documents)
    texts = {d.id: d.text for d in eval_set.documents}
    with index.view() as view:
        passages = {p.id: p for p in view.iter_passages()}
    return index, {
        pid: IndexedPassage(p.document_id, shingles(texts[p.document_id][p.start : p.end]))
        for pid, p in passages.items()
    }


def _evidence_in_top(view: IndexView, ranked: list[tuple[int, float]], evidence: str | None) -> bool:
    if not ranked or not evidence:
        return False
    passage = view.passages([ranked[0][0]])[ranked[0][0]]
    text = view.documents([passage.document_id])[passage.document_id].text
    return normalize_arabic(evidence) in normalize_arabic(text[passage.start : passage.end])


@dataclass
class _Run:
    """One set's index and encoded questions, shared by every mode."""

    service: SearchService
    view: IndexView
    passages: dict[int, IndexedPassage]
    gold_shingles: dict[str, Shingles]
    questions: list[str]
    vectors: np.ndarray
    eval_set: EvalSet


def _score_mode(run: _Run, mode: str) -> ModeResult:
    ranks: list[int | None] = []
    evidence: list[bool] = []
    via_copy = 0
    elapsed = 0.0
    with_evidence = any(q.evidence for q in run.eval_set.questions)
    for question, gold, vector in zip(run.questions, run.eval_set.questions, run.vectors, strict=True):
        started = time.perf_counter()
        ranked = run.service.rank(run.view, question, vector, mode)[:DEPTH]
        elapsed += time.perf_counter() - started
        found = [run.passages[pid] for pid, _ in ranked]
        own = [p.document_id == gold.gold for p in found]
        gold_shingles = run.gold_shingles[gold.gold]
        rank = first_hit([o or is_copy(p.shingles, gold_shingles) for o, p in zip(own, found, strict=True)])
        via_copy += rank is not None and not own[rank - 1]
        ranks.append(rank)
        if with_evidence:
            evidence.append(_evidence_in_top(run.view, ranked, gold.evidence))
    return ModeResult(
        ranks, elapsed * 1000 / max(len(ranks), 1), evidence if with_evidence else None, via_copy
    )


def evaluate_set(
    eval_set: EvalSet,
    encoder: TextEncoder,
    *,
    settings: SearchSettings | None = None,
    chunking: ChunkingSettings | None = None,
    modes: Sequence[str] = MODES,
    index_url: str | None = None,
) -> SetResult:
    """Index the set's documents afresh, rank every question in each mode, and score the rankings.

    The index is a temporary directory, or with `index_url` (postgresql://) a schema of its own
    in that database, dropped afterwards."""
    chunking = chunking or ChunkingSettings()
    timings: dict[str, float] = {}
    results: dict[str, ModeResult] = {}
    with scratch_location(eval_set.name, index_url) as location:
        started = time.perf_counter()
        index, passages = build_index(location, eval_set, encoder, chunking)
        timings["index"] = time.perf_counter() - started
        with index, index.view() as view:
            questions = [validate_question(q.text) for q in eval_set.questions]
            started = time.perf_counter()
            # The same text `SearchService.ask` encodes.
            vectors = encoder.encode_queries([clean_text(q) for q in questions])
            timings["encode_questions"] = time.perf_counter() - started
            run = _Run(
                service=SearchService(index, encoder, settings),
                view=view,
                passages=passages,
                gold_shingles={d.id: shingles(d.text) for d in eval_set.documents},
                questions=questions,
                vectors=vectors,
                eval_set=eval_set,
            )
            for mode in modes:
                results[mode] = _score_mode(run, mode)
                timings[f"rank_{mode}"] = results[mode].ms_per_question * len(questions) / 1000
    return SetResult(
        name=eval_set.name,
        description=eval_set.description,
        documents=len(eval_set.documents),
        passages=len(passages),
        questions=len(eval_set.questions),
        modes=results,
        timings=timings,
    )
