"""The search service: one question in, ranked passages with their answering sentence out.

API, web form and CLI all call `SearchService.ask`; none of them ranks anything itself.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from embeddings.encoder import TextEncoder
from qa.bridge import IndexBridge
from qa.errors import QuestionError
from qa.filters import SearchFilter
from qa.fusion import FUSIONS, convex_fusion, reciprocal_rank_fusion
from qa.index import IndexBackend, IndexView, SentenceVector, StoredDocument, StoredPassage
from qa.lexical import query_terms
from qa.schema import AnswerSpan, AskResponse, DocumentRef, PassageHit
from qa.textnorm import clean_text, has_arabic

MODES = ("hybrid", "dense", "lexical")
MAX_QUESTION_CHARS = 2000
MAX_K = 50


@dataclass(frozen=True)
class SearchSettings:
    """How questions are ranked; the defaults are the best measured in docs/evaluation.md."""

    mode: str = "hybrid"
    candidates: int = 50  # passages each method contributes before fusion
    # "convex": weighted sum of scores scaled to each list's best; "rrf": weighted reciprocal ranks.
    fusion: str = "convex"
    dense_weight: float = 0.7
    lexical_weight: float = 0.3
    # The lexical weight when the question and its best dense passage differ in script (an
    # English question over Arabic text): their words never match, and on XQuAD en→ar and the
    # seed questions any weight above 0 lowered recall.
    cross_lingual_lexical_weight: float = 0.0
    # Across scripts, BM25 over the Arabic terms that sound like the question's names (`qa.bridge`)
    # gets this weight instead; 0 turns the bridge off. 0.2 was best of 0.1-0.5 on the tuning half
    # of the hard seed questions (docs/evaluation.md).
    bridge_weight: float = 0.2
    # Convex fusion: a passage this far below the best dense score (passage plus sentence
    # cosine) gets no dense support; top-50 lists span about 0.2 to 0.25 of it.
    dense_span: float = 0.25
    rrf_k: int = 60
    # A passage's dense score adds this share of its best sentence's similarity: a passage
    # whose one sentence answers the question beats a passage that is vaguely on topic.
    sentence_weight: float = 1.0
    # A body sentence this close (cosine) to the question as the headline is the answer instead.
    headline_margin: float = 0.05

    def __post_init__(self) -> None:
        if self.fusion not in FUSIONS:
            raise ValueError(f"fusion must be one of {', '.join(FUSIONS)}, not {self.fusion!r}")


@dataclass(frozen=True)
class ResultShape:
    """Which of the ranked passages a response shows."""

    per_document: int | None = None  # at most this many passages of one document
    raw: bool = False  # the ranking as it is: overlapping passages and no cap
    within: SearchFilter | None = None  # only documents that match


@dataclass
class _Candidate:
    passage: StoredPassage
    sentences: list[SentenceVector]
    best_sentence: int  # index into sentences, -1 when there are none
    best_sentence_score: float


EMPTY_QUESTION = "the question is empty; ask something, e.g. 'who met Jeffrey in Brussels'"
EMPTY_AFTER_CLEANING = (
    "the question is empty once invisible characters (control, format, bidi and zero-width marks) "
    "are removed; ask something, e.g. 'who met Jeffrey in Brussels'"
)


def validate_question(question: str) -> str:
    """The question without surrounding whitespace, or QuestionError when it is empty, too long, or
    has nothing visible.

    The one check of a question: the service calls it, so the CLI, the HTTP API, the web form and
    MCP refuse the same questions with the same words. A question made only of characters that
    cleaning removes (NUL, bidi and zero-width marks, other control and format characters,
    tatweel) passes the whitespace test but asks nothing; the OpenAPI `pattern` of a question
    (`qa.api.validation.VISIBLE_CHARACTER`) states the same rule.
    """
    if not isinstance(question, str) or not question.strip():
        raise QuestionError(EMPTY_QUESTION)
    if len(question) > MAX_QUESTION_CHARS:
        raise QuestionError(
            f"the question is {len(question)} characters long; the limit is {MAX_QUESTION_CHARS}"
        )
    if not clean_text(question):
        raise QuestionError(EMPTY_AFTER_CLEANING)
    return question.strip()


def validate_k(k: int) -> int:
    if not isinstance(k, int) or isinstance(k, bool) or not 1 <= k <= MAX_K:
        raise QuestionError(f"k must be a whole number from 1 to {MAX_K}, not {k!r}")
    return k


def validate_per_document(per_document: int | None) -> int | None:
    if per_document is None:
        return None
    if not isinstance(per_document, int) or isinstance(per_document, bool) or not 1 <= per_document <= MAX_K:
        raise QuestionError(f"per_document must be a whole number from 1 to {MAX_K}, not {per_document!r}")
    return per_document


def validate_mode(mode: str | None, default: str) -> str:
    mode = mode or default
    if mode not in MODES:
        raise QuestionError(f"mode must be one of {', '.join(MODES)}, not {mode!r}")
    return mode


class SearchService:
    def __init__(
        self, index: IndexBackend, encoder: TextEncoder, settings: SearchSettings | None = None
    ) -> None:
        self.index = index
        self.encoder = encoder
        self.settings = settings or SearchSettings()
        self._bridge = IndexBridge()

    def ask(
        self,
        question: str,
        k: int = 5,
        mode: str | None = None,
        *,
        per_document: int | None = None,
        raw: bool = False,
        filter: SearchFilter | None = None,
    ) -> AskResponse:
        return self.ask_many([question], k=k, mode=mode, per_document=per_document, raw=raw, filter=filter)[0]

    def ask_many(
        self,
        questions: Sequence[str],
        k: int = 5,
        mode: str | None = None,
        *,
        per_document: int | None = None,
        raw: bool = False,
        filter: SearchFilter | None = None,
    ) -> list[AskResponse]:
        """Answer several questions, encoding them in one batch.

        By default a response holds no two overlapping passages of one document (the better
        ranked one stays); `per_document` also caps the passages of any one document; `raw`
        returns the ranking as it is. `filter` (see `qa.filters`) limits the documents searched.
        """
        started = time.perf_counter()
        cleaned = [validate_question(q) for q in questions]
        k = validate_k(k)
        mode = validate_mode(mode, self.settings.mode)
        shape = ResultShape(validate_per_document(per_document), bool(raw), filter)
        vectors = self.encoder.encode_queries([clean_text(q) for q in cleaned])
        with self.index.view() as view:
            responses = [
                self._answer(view, q, v, k, mode, shape) for q, v in zip(cleaned, vectors, strict=True)
            ]
        took_ms = round((time.perf_counter() - started) * 1000 / max(len(questions), 1), 3)
        for response in responses:
            response.took_ms = took_ms
        return responses

    def rank(
        self,
        view: IndexView,
        question: str,
        vector: np.ndarray,
        mode: str,
        within: SearchFilter | None = None,
    ) -> list[tuple[int, float]]:
        """Passage ids with scores, best first (exposed for evaluation of each mode)."""
        ranked, _ = self._rank(view, question, vector, mode, within)
        return ranked

    def _rank(
        self,
        view: IndexView,
        question: str,
        vector: np.ndarray,
        mode: str,
        within: SearchFilter | None = None,
    ) -> tuple[list[tuple[int, float]], dict[int, _Candidate]]:
        s = self.settings
        candidates: dict[int, _Candidate] = {}
        dense: list[tuple[int, float]] = []
        lexical: list[tuple[int, float]] = []
        if mode in ("dense", "hybrid"):
            dense = self._dense(view, vector, candidates, within)
            if mode == "dense":
                return dense, candidates
        lexical_weight = s.lexical_weight
        terms = query_terms(question)
        if mode == "hybrid":
            if self._crosses_script(view, question, dense, candidates):
                # The question's own words never match; the bridge's Arabic terms may.
                lexical_weight = s.bridge_weight or s.cross_lingual_lexical_weight
                if s.bridge_weight:
                    terms = self._bridge.for_view(view).terms_for(question)
            if lexical_weight == 0 or not terms:
                return dense, candidates
        if terms:
            lexical = view.lexical_search(terms, s.candidates, within)
        if mode == "lexical":
            return lexical, candidates
        weights = [s.dense_weight, lexical_weight]
        if s.fusion == "rrf":
            return reciprocal_rank_fusion([dense, lexical], weights, s.rrf_k), candidates
        return convex_fusion([dense, lexical], weights, [s.dense_span, None]), candidates

    def _crosses_script(
        self,
        view: IndexView,
        question: str,
        dense: list[tuple[int, float]],
        candidates: dict[int, _Candidate],
    ) -> bool:
        """Whether the question and its best dense passage are in different scripts.

        An English question shares no words with Arabic passages, so plain BM25 can only add
        noise there; an English question over English passages keeps it.
        """
        if not dense:
            return False
        top = candidates[dense[0][0]].passage
        document = view.documents([top.document_id])[top.document_id]
        return has_arabic(question) != has_arabic(document.text[top.start : top.end])

    def _dense(
        self,
        view: IndexView,
        vector: np.ndarray,
        candidates: dict[int, _Candidate],
        within: SearchFilter | None = None,
    ) -> list[tuple[int, float]]:
        found = view.dense_search(vector, self.settings.candidates, within)
        passages = view.passages(passage_id for passage_id, _ in found)
        sentences = view.sentences(list(passages.values()))
        rescored = []
        for passage_id, score in found:
            passage = passages.get(passage_id)
            if passage is None:
                continue
            candidate = self._candidate(passage, sentences[passage.id], vector)
            candidates[passage.id] = candidate
            rescored.append(
                (passage.id, float(score) + self.settings.sentence_weight * candidate.best_sentence_score)
            )
        rescored.sort(key=lambda item: -item[1])
        return rescored

    @staticmethod
    def _candidate(passage: StoredPassage, sentences: list[SentenceVector], vector: np.ndarray) -> _Candidate:
        if not sentences:
            return _Candidate(passage, sentences, -1, 0.0)
        similarities = np.stack([s.vector for s in sentences]) @ vector
        best = int(np.argmax(similarities))
        return _Candidate(passage, sentences, best, float(similarities[best]))

    def _answer_span(
        self, candidate: _Candidate, document: StoredDocument, vector: np.ndarray
    ) -> tuple[int, int]:
        """The answer sentence's offsets: the passage's sentence most similar to the question,
        unless that is the headline and a body sentence scores within `headline_margin` (the
        headline is on topic for every question about the article, and answers few)."""
        if candidate.best_sentence < 0:
            return candidate.passage.start, candidate.passage.end
        best = candidate.sentences[candidate.best_sentence]
        if not _is_headline(document, best):
            return best.start, best.end
        body = [sentence for sentence in candidate.sentences if not _is_headline(document, sentence)]
        if body:
            similarities = np.stack([sentence.vector for sentence in body]) @ vector
            closest = int(np.argmax(similarities))
            if similarities[closest] >= candidate.best_sentence_score - self.settings.headline_margin:
                return body[closest].start, body[closest].end
        return best.start, best.end

    def _answer(
        self, view: IndexView, question: str, vector: np.ndarray, k: int, mode: str, shape: ResultShape
    ) -> AskResponse:
        ranked, candidates = self._rank(view, question, vector, mode, shape.within)
        top = _selected(view, ranked, candidates, k, shape)
        missing = [pid for pid, _ in top if pid not in candidates]
        passages = view.passages(missing)
        sentences = view.sentences(list(passages.values()))
        for pid, passage in passages.items():
            candidates[pid] = self._candidate(passage, sentences[pid], vector)
        documents = view.documents(candidates[pid].passage.document_id for pid, _ in top)
        hits = []
        for rank, (pid, score) in enumerate(top, start=1):
            candidate = candidates[pid]
            passage = candidate.passage
            document = documents[passage.document_id]
            start, end = self._answer_span(candidate, document, vector)
            hits.append(
                PassageHit(
                    rank=rank,
                    score=round(score, 6),
                    text=document.text[passage.start : passage.end],
                    document=document_ref(document),
                    start=passage.start,
                    end=passage.end,
                    answer=AnswerSpan(document.text[start:end], start, end),
                )
            )
        return AskResponse(question=question, passages=hits, took_ms=0.0, mode=mode)


def _selected(
    view: IndexView,
    ranked: list[tuple[int, float]],
    candidates: dict[int, _Candidate],
    k: int,
    shape: ResultShape,
) -> list[tuple[int, float]]:
    """The first `k` ranked passages a reader should see: a passage that overlaps a better one
    of its document repeats it (passages share a sentence with their neighbours), and at most
    `per_document` of one document."""
    if shape.raw:
        return ranked[:k]
    known = {pid: candidate.passage for pid, candidate in candidates.items()}
    known |= view.passages([pid for pid, _ in ranked if pid not in known])
    chosen: list[tuple[int, float]] = []
    shown: dict[str, list[StoredPassage]] = {}
    for pid, score in ranked:
        passage = known.get(pid)
        if passage is None:
            continue
        same = shown.setdefault(passage.document_id, [])
        if shape.per_document is not None and len(same) >= shape.per_document:
            continue
        if any(passage.start < other.end and other.start < passage.end for other in same):
            continue
        same.append(passage)
        chosen.append((pid, score))
        if len(chosen) == k:
            break
    return chosen


def _is_headline(document: StoredDocument, sentence: SentenceVector) -> bool:
    """A sentence that is the document's title (or the title with a site name after it)."""
    title = _folded(document.title)
    return bool(title) and _folded(document.text[sentence.start : sentence.end]).startswith(title)


def _folded(text: str) -> str:
    return " ".join(clean_text(text).casefold().split())


def document_ref(document: StoredDocument) -> DocumentRef:
    """What an answer shows of its document: enough to cite it."""
    meta = document.meta
    return DocumentRef(
        document.id,
        document.title,
        document.source,
        published=meta.published,
        lang=meta.lang,
        url=meta.url,
        author=meta.author,
        tags=list(meta.tags),
    )
