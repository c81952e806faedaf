"""In-process figures: question latency (ours and txtai's, interleaved), recall@1, the profile."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from embeddings.encoder import TextEncoder
from qa.bench import txtai_side
from qa.bench.corpus import Corpus, Question
from qa.bench.indexes import BuiltIndex
from qa.bench.load import time_interleaved
from qa.bench.machine import load_average
from qa.bench.profiling import profile_questions
from qa.bench.stats import Latency
from qa.search import SearchService


def measure_corpus(
    corpus: Corpus,
    encoder: TextEncoder,
    ours: BuiltIndex,
    theirs: BuiltIndex | None,
    *,
    prefix: str,
    latency_questions: list[str],
    repeats: int,
    recall_questions: list[Question],
    max_seconds: float,
    profile: bool = False,
) -> tuple[dict[str, Any], str]:
    """Figures `{prefix}_inproc_*`, `{prefix}_recall_at_1` and txtai's twins; the profile text."""
    from qa.service import open_service

    figures: dict[str, Any] = {}
    service = open_service(ours.path, encoder=encoder, create=False)
    rival = txtai_side.TxtaiSearch(theirs.path / "index") if theirs is not None else None
    profile_text = ""
    try:
        calls: dict[str, Callable[[str], object]] = {"ours": lambda q: service.ask(q, k=5)}
        if rival is not None:
            calls["txtai"] = lambda q: rival.search(q, 5)
        figures[f"{prefix}_inproc_load_average"] = load_average()
        timings = time_interleaved(calls, latency_questions, repeats=repeats, max_seconds=max_seconds)
        figures.update(Latency.of(timings["ours"]).figures(f"{prefix}_inproc"))
        if "txtai" in timings:
            figures.update(Latency.of(timings["txtai"]).figures(f"txtai_{prefix}_inproc"))

        figures[f"{prefix}_recall_questions"] = len(recall_questions)
        figures[f"{prefix}_recall_at_1"] = our_recall(service, recall_questions)
        if rival is not None:
            tops = rival.top_documents([q.text for q in recall_questions])
            figures[f"txtai_{prefix}_recall_at_1"] = recall(tops, recall_questions)

        if profile:
            # cProfile follows one thread: here the model runs on the caller's, not on the
            # batching encoder's own thread, so its time shows as encoding, not as waiting.
            direct = SearchService(service.index, encoder, service.settings)
            stages, profile_text = profile_questions(lambda q: direct.ask(q, k=5), latency_questions)
            figures.update(stages)
    finally:
        service.index.close()
        if rival is not None:
            rival.close()
    return figures, profile_text


def our_recall(service: SearchService, questions: list[Question], batch: int = 32) -> float:
    tops: list[str | None] = []
    for start in range(0, len(questions), batch):
        chunk = [q.text for q in questions[start : start + batch]]
        for response in service.ask_many(chunk, k=1):
            tops.append(response.passages[0].document.id if response.passages else None)
    return recall(tops, questions)


def recall(tops: list[str | None], questions: list[Question]) -> float:
    """Share of questions whose top answer comes from their gold document."""
    hits = sum(top == question.gold for top, question in zip(tops, questions, strict=True))
    return round(hits / max(len(questions), 1), 4)
