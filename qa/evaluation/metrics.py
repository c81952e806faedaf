"""Ranking metrics over the rank (1-based) at which each question's first correct passage came."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

# The rank lists are cut here: MRR@10 is the deepest metric reported.
DEPTH = 10


def first_hit(hits: Sequence[bool], depth: int = DEPTH) -> int | None:
    """The rank of the first correct item (`hits` says which are, best first) within `depth`."""
    for rank, hit in enumerate(hits[:depth], start=1):
        if hit:
            return rank
    return None


def recall_at(ranks: Sequence[int | None], k: int) -> float:
    """Share of questions with a correct passage in the top k."""
    if not ranks:
        return 0.0
    return sum(1 for r in ranks if r is not None and r <= k) / len(ranks)


def mrr_at(ranks: Sequence[int | None], k: int = DEPTH) -> float:
    """Mean reciprocal rank of the first correct passage, counting 0 beyond rank k."""
    if not ranks:
        return 0.0
    return sum(1 / r for r in ranks if r is not None and r <= k) / len(ranks)


def summarize(ranks: Sequence[int | None]) -> dict[str, float]:
    return {
        "recall@1": round(recall_at(ranks, 1), 4),
        "recall@5": round(recall_at(ranks, 5), 4),
        "mrr@10": round(mrr_at(ranks, 10), 4),
    }


def share(flags: Iterable[bool]) -> float:
    values = list(flags)
    return round(sum(values) / len(values), 4) if values else 0.0
