"""Reciprocal-rank fusion of ranked lists (Cormack et al., 2009)."""

from __future__ import annotations

from collections.abc import Sequence


def reciprocal_rank_fusion(
    rankings: Sequence[Sequence[tuple[int, float]]], weights: Sequence[float], k: int = 60
) -> list[tuple[int, float]]:
    """Fuse lists of (id, score), best first, by weight / (k + rank); scores themselves are ignored.

    Ranks rather than scores are fused because cosine similarities and BM25 scores live on
    unrelated scales.
    """
    fused: dict[int, float] = {}
    for ranking, weight in zip(rankings, weights, strict=True):
        if weight == 0:
            continue
        for rank, (item, _) in enumerate(ranking, start=1):
            fused[item] = fused.get(item, 0.0) + weight / (k + rank)
    return sorted(fused.items(), key=lambda pair: (-pair[1], pair[0]))
