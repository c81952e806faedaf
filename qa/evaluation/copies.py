"""Recognizing the gold paragraph's text inside another document of the same set.

ARCD's train and test files cut some Wikipedia articles differently, so one paragraph's text
reappears, whole or with small edits, inside a longer or shifted paragraph (in the full set 133
of 460 paragraphs share half their text with another). A question written for one copy is
answered just as well by a passage of the other, so such a passage counts as a hit. Copies are
found by word 4-gram overlap, which tolerates the small edits (a dropped foreign-script name, a
comma) that defeat exact containment.
"""

from __future__ import annotations

import re

from qa.textnorm import normalize_arabic

_WORD_RE = re.compile(r"\w+")
N = 4
# Share of one text's 4-grams that must occur in the other.
THRESHOLD = 0.8
# A passage shorter than this could sit inside an unrelated paragraph by chance.
MIN_SHINGLES = 8

Shingles = frozenset[tuple[str, ...]]


def shingles(text: str) -> Shingles:
    """The set of word 4-grams of the normalized text."""
    words = _WORD_RE.findall(normalize_arabic(text))
    return frozenset(tuple(words[i : i + N]) for i in range(len(words) - N + 1))


def is_copy(passage: Shingles, gold: Shingles) -> bool:
    """Whether the passage is mostly the gold paragraph's text, or holds most of it."""
    if not passage or not gold:
        return False
    common = len(passage & gold)
    return (len(passage) >= MIN_SHINGLES and common >= THRESHOLD * len(passage)) or (
        common >= THRESHOLD * len(gold)
    )
