"""BM25 in SQL, over the same tokens and with the same formula as the local backend's FTS5.

FTS5 (`unicode61 remove_diacritics 2`) splits a passage's terms on anything that is not a
letter or a digit and folds Latin diacritics; `tokens` does the same here, so a passage has the
same length and term frequencies on both backends and BM25 ranks alike (docs/scaling.md
compares this with PostgreSQL's own `ts_rank` over an `arabic` tsvector).
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Sequence

_TOKEN = re.compile(r"[^\W_]+")
# FTS5's BM25 parameters (fts5_aux.c): k1 = 1.2, b = 0.75; an idf at or below 0 becomes 1e-6.
K1 = 1.2
B = 0.75
_LATIN_WITH_MARKS = re.compile(r"[\u00c0-\u024f]")


def _without_latin_diacritics(token: str) -> str:
    if not _LATIN_WITH_MARKS.search(token):
        return token
    return "".join(c for c in unicodedata.normalize("NFD", token) if not unicodedata.combining(c))


def tokens(terms: str) -> list[str]:
    """The tokens FTS5 makes of a passage's normalized terms (or of one query term)."""
    return [_without_latin_diacritics(token) for token in _TOKEN.findall(terms.casefold())]


def postings(terms: str) -> tuple[Counter[str], int]:
    """Term frequencies of a passage and its length in tokens."""
    found = tokens(terms)
    return Counter(found), len(found)


def query_tokens(terms: Sequence[str]) -> list[str]:
    """Query terms as tokens. FTS5 reads a multi-token term as a phrase; here each token counts
    alone (such terms are rare: the analyzer's terms are single words)."""
    return [token for term in terms if term for token in tokens(term)]


BM25_SQL = """
WITH wanted AS (
    SELECT q.term, greatest(ln((%(passages)s - t.passages + 0.5) / (t.passages + 0.5)), 1e-6) AS idf
    FROM unnest(%(terms)s::text[]) AS q(term) JOIN {schema}.terms t ON t.term = q.term
    WHERE t.passages > 0
)
SELECT p.passage_id,
       sum(w.idf * p.frequency * ({k1} + 1)
           / (p.frequency + {k1} * (1 - {b} + {b} * p.passage_length / %(average_length)s))) AS score
FROM wanted w JOIN {schema}.postings p ON p.term = w.term
GROUP BY p.passage_id
ORDER BY score DESC, p.passage_id
LIMIT %(k)s
"""
