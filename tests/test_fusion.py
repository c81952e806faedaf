"""Fusion: scores scaled to each list's best, and reciprocal ranks."""

from __future__ import annotations

import pytest

from qa.fusion import convex_fusion, reciprocal_rank_fusion, scale_to_best


def test_scaling_to_the_best():
    assert scale_to_best([1.6, 1.5, 1.2], span=0.25) == pytest.approx([1.0, 0.6, 0.0])
    assert scale_to_best([8.0, 4.0, 2.0], span=None) == [1.0, 0.5, 0.25]
    assert scale_to_best([0.0, 0.0], span=None) == [1.0, 1.0]


def test_a_strong_keyword_match_beats_a_slightly_closer_vector():
    dense = [(1, 1.60), (2, 1.58), (3, 1.40)]
    lexical = [(2, 9.0), (3, 2.0)]
    fused = convex_fusion([dense, lexical], [0.7, 0.3], [0.25, None])
    assert [item for item, _ in fused] == [2, 1, 3]


def test_the_best_passage_keeps_its_score_when_weaker_candidates_change():
    lexical = [(1, 5.0), (2, 1.0)]
    before = dict(convex_fusion([[(1, 1.6), (2, 1.5)], lexical], [0.7, 0.3], [0.25, None]))
    after = dict(convex_fusion([[(1, 1.6), (2, 1.5), (9, 1.0)], lexical], [0.7, 0.3], [0.25, None]))
    assert before[1] == after[1] == pytest.approx(1.0)


def test_a_zero_weight_or_empty_list_contributes_nothing():
    dense = [(1, 1.6), (2, 1.5)]
    assert convex_fusion([dense, [(2, 3.0)]], [0.7, 0.0], [0.25, None]) == convex_fusion(
        [dense, []], [0.7, 0.3], [0.25, None]
    )


def test_reciprocal_rank_fusion_ignores_scores():
    fused = reciprocal_rank_fusion([[(1, 0.9), (2, 0.1)], [(2, 50.0), (1, 49.0)]], [1.0, 1.0], k=60)
    assert {item for item, _ in fused} == {1, 2}
    assert fused[0][1] == pytest.approx(1 / 61 + 1 / 62)
