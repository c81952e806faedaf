"""Odd text in questions and documents: each gets a clear outcome, nothing crashes."""

from __future__ import annotations

import pytest

from qa.documents import document_from_text
from qa.errors import DocumentError, QuestionError
from qa.index import Index
from qa.ingest import ingest_documents
from qa.search import SearchService
from qa.service import model_identity

ODD_TEXTS = {
    "bidi marks": "\u200fمن التقى\u200e Jeffrey \u202bفي بروكسل\u202c؟",
    "zero width": "Jef\u200bfrey\u200c in Bru\u200dssels\ufeff",
    "emoji": "who met 🤝 Jeffrey in Brussels 🇧🇪?",
    "nul bytes": "who met\x00 Jeffrey\x00 in Brussels",
    "mixed scripts": "who met جيفري in بروكسل and Пётр in 東京?",
    "long line": "Brussels " * 200,
    "only punctuation": "?!؟...",
    "lone surrogate-free astral": "𝔅𝔯𝔲𝔰𝔰𝔢𝔩𝔰 𐎀",
    "combining marks": "بُرُوكْسِلْ جِيفْرِي",
}


@pytest.fixture
def service(tmp_path, fake_encoder) -> SearchService:
    index = Index.open(tmp_path / "index", model_identity(fake_encoder))
    ingest_documents(
        index,
        fake_encoder,
        [document_from_text("Mustafa met Jeffrey in Brussels. بحث مصطفى مع جيفري في بروكسل.", id="b")],
    )
    return SearchService(index, fake_encoder)


@pytest.mark.parametrize("question", ODD_TEXTS.values(), ids=ODD_TEXTS.keys())
@pytest.mark.parametrize("mode", ["dense", "lexical", "hybrid"])
def test_odd_questions_are_answered_without_error(service, question, mode):
    response = service.ask(question, k=3, mode=mode)
    assert response.question == question.strip()
    for hit in response.passages:
        assert hit.text and hit.answer.text


@pytest.mark.parametrize("question", ["", "   ", "\n\t", "\u200b"[:0]])
def test_empty_questions_are_refused(service, question):
    with pytest.raises(QuestionError, match="empty"):
        service.ask(question)


def test_a_question_over_the_limit_is_refused_and_one_at_the_limit_is_not(service):
    service.ask("a" * 2000)
    with pytest.raises(QuestionError, match=r"2001 characters.*limit is 2000"):
        service.ask("a" * 2001)


@pytest.mark.parametrize("k", [0, 51, -1, True])
def test_k_out_of_range_is_refused(service, k):
    with pytest.raises(QuestionError, match="k must be"):
        service.ask("Brussels", k=k)


INDEXABLE = {name: text for name, text in ODD_TEXTS.items() if "\x00" not in text}


@pytest.mark.parametrize("text", INDEXABLE.values(), ids=INDEXABLE.keys())
def test_odd_documents_are_indexed_and_offsets_stay_exact(service, fake_encoder, text):
    if not text.strip("?!؟. "):
        pytest.skip("no words to index")
    ingest_documents(service.index, fake_encoder, [document_from_text(text, id="odd")])
    stored = service.index.snapshot().store.get_document("odd")
    assert stored is not None and stored.text == text
    for hit in service.ask(text[:100], k=5).passages:
        document = service.index.snapshot().store.get_document(hit.document.id)
        assert document.text[hit.start : hit.end] == hit.text


def test_a_document_with_nul_bytes_is_refused_as_binary():
    with pytest.raises(DocumentError, match="NUL"):
        document_from_text(ODD_TEXTS["nul bytes"])


def test_a_document_without_visible_text_is_refused(service):
    with pytest.raises(DocumentError):
        document_from_text(" \n\t ")


def test_a_ten_megabyte_document_is_indexed(service, fake_encoder):
    paragraph = "بحث مصطفى مع جيفري التصعيد في إدلب. " * 20 + "\n\n"
    text = paragraph * (10_000_000 // len(paragraph.encode()))
    assert len(text.encode()) > 9_000_000
    report = ingest_documents(service.index, fake_encoder, [document_from_text(text, id="huge")])
    assert report.added == ["huge"] and report.passages > 1000
    assert service.ask("جيفري إدلب", k=5).passages
