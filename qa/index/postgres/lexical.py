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

from psycopg import sql

# Letters and digits, and the combining marks FTS5 counts as part of a word and then drops
# (casefolding İ or ǰ leaves one: "i̇", "ǰ").
_TOKEN = re.compile(r"(?:[^\W_]|[\u0300-\u036f])+")
_COMBINING = re.compile(r"[\u0300-\u036f]")
# FTS5's BM25 parameters (fts5_aux.c): k1 = 1.2, b = 0.75; an idf at or below 0 becomes 1e-6.
K1 = 1.2
B = 0.75
# The Latin letters FTS5's remove_diacritics folds: Latin-1 to Latin Extended-B (less the few
# letters with two marks it keeps) and Latin Extended Additional (transliterations: ḥ, ṣ, ḍ).
_LATIN_WITH_MARKS = re.compile(r"[\u00c0-\u01df\u01e4-\u01ed\u01f0-\u01fb\u0200-\u024f\u1e00-\u1eff]")


def _folded(letter: str) -> str:
    if not _LATIN_WITH_MARKS.match(letter):
        return letter
    return "".join(c for c in unicodedata.normalize("NFD", letter) if not unicodedata.combining(c))


def _without_latin_diacritics(token: str) -> str:
    if not _LATIN_WITH_MARKS.search(token):
        return token
    return "".join(_folded(letter) for letter in token)


def tokens(terms: str) -> list[str]:
    """The tokens FTS5 makes of a passage's normalized terms (or of one query term)."""
    found = (_COMBINING.sub("", _without_latin_diacritics(t)) for t in _TOKEN.findall(terms.casefold()))
    return [token for token in found if token]


def postings(terms: str) -> tuple[Counter[str], int]:
    """Term frequencies of a passage and its length in tokens."""
    found = tokens(terms)
    return Counter(found), len(found)


def query_tokens(terms: Sequence[str]) -> list[str]:
    """Query terms as tokens. FTS5 reads a multi-token term as a phrase; here each token counts
    alone (such terms are rare: the analyzer's terms are single words)."""
    return [token for term in terms if term for token in tokens(term)]


_BM25_TEMPLATE = """
WITH wanted AS (
    SELECT q.term, greatest(ln((%(passages)s - t.passages + 0.5) / (t.passages + 0.5)), 1e-6) AS idf
    FROM unnest(%(terms)s::text[]) AS q(term) JOIN {schema}.terms t ON t.term = q.term
    WHERE t.passages > 0
)
SELECT p.passage_id,
       sum(w.idf * p.frequency * ({k1} + 1)
           / (p.frequency + {k1} * (1 - {b} + {b} * p.passage_length / %(average_length)s))) AS score
FROM wanted w JOIN {schema}.postings p ON p.term = w.term
{restriction}
GROUP BY p.passage_id
ORDER BY score DESC, p.passage_id
LIMIT %(k)s
"""
# The constants written in once: they are the same for every query.
BM25_SQL = _BM25_TEMPLATE.replace("{k1}", repr(K1)).replace("{b}", repr(B))
# Only postings of passages whose document matches the filter's condition on `d`. The term
# statistics (idf, average length) stay those of the whole index, as in the local backend.
_RESTRICTION = """JOIN {schema}.passages pa ON pa.id = p.passage_id
JOIN {schema}.documents d ON d.id = pa.document_id
WHERE {condition}"""


def bm25_query(schema: sql.Identifier, condition: sql.Composable | None = None) -> sql.Composed:
    """BM25 over the index in `schema`, over the passages of documents matching `condition`
    when given (see `qa.index.postgres.filters`)."""
    restriction = (
        sql.SQL(_RESTRICTION).format(schema=schema, condition=condition)
        if condition is not None
        else sql.SQL("")
    )
    return sql.SQL(BM25_SQL).format(schema=schema, restriction=restriction)
