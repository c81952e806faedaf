"""Odd text in questions and documents: each gets a clear outcome, nothing crashes, in the
service and over HTTP (API and web form)."""

from __future__ import annotations

import html

import anyio
import pytest
from click.testing import CliRunner
from litestar.testing import TestClient
from mcp.client import Client
from mcp_types import CallToolResult

from qa.cli import main
from qa.documents import document_from_text
from qa.errors import DocumentError, QuestionError
from qa.ingest import ingest_documents
from qa.mcp import build_server
from qa.search import EMPTY_AFTER_CLEANING, SearchService
from tests.helpers import AUTH

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


@pytest.mark.parametrize("question", ODD_TEXTS.values(), ids=ODD_TEXTS.keys())
@pytest.mark.parametrize("mode", ["dense", "lexical", "hybrid"])
def test_odd_questions_are_answered_without_error(service, question, mode):
    response = service.ask(question, k=3, mode=mode)
    assert response.question == question.strip()
    for hit in response.passages:
        assert hit.text and hit.answer.text


@pytest.mark.parametrize("question", ["", "   ", "\n\t", "\u200b", " \u200b\u200f "])
def test_empty_questions_are_refused(service, question):
    with pytest.raises(QuestionError, match="empty"):
        service.ask(question)


INDEXABLE = {name: text for name, text in ODD_TEXTS.items() if "\x00" not in text}


@pytest.mark.parametrize("text", INDEXABLE.values(), ids=INDEXABLE.keys())
def test_odd_documents_are_indexed_and_offsets_stay_exact(service, fake_encoder, text):
    if not text.strip("?!؟. "):
        pytest.skip("no words to index")
    ingest_documents(service.index, fake_encoder, [document_from_text(text, id="odd")])
    with service.index.view() as view:
        stored = view.document("odd")
    assert stored is not None and stored.text == text
    for hit in service.ask(text[:100], k=5).passages:
        with service.index.view() as view:
            document = view.document(hit.document.id)
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


# -- over HTTP -------------------------------------------------------------------------------------

# Questions that cleaning empties: nothing to ask, so 400, like an empty one.
INVISIBLE = {
    "nul": "\x00",
    "nuls and spaces": " \x00 \x00\t",
    "right-to-left mark": "\u200f",
    "bidi marks": "\u200e\u200f\u202b\u202c\u2066\u2069",
    "zero width": "\u200b\u200c\u200d\u2060",
    "byte order mark": "\ufeff",
    "tatweel": "\u0640\u0640",
    "language tags": "\U000e0001\U000e0065\U000e006e",
}


@pytest.mark.parametrize("question", ODD_TEXTS.values(), ids=ODD_TEXTS.keys())
def test_odd_questions_are_answered_over_http(client, question):
    posted = client.post("/api/ask", json={"question": question, "k": 3})
    assert posted.status_code == 200, posted.text
    assert posted.json()["question"] == question.strip()
    got = client.get("/api/ask", params={"q": question, "k": 3})
    assert got.status_code == 200 and got.json()["passages"] == posted.json()["passages"]
    assert client.get("/", params={"q": question}).status_code == 200


@pytest.mark.parametrize("question", INVISIBLE.values(), ids=INVISIBLE.keys())
def test_questions_with_nothing_visible_are_400_everywhere(client, question):
    posted = client.post("/api/ask", json={"question": question})
    assert (posted.status_code, posted.json()["detail"]) == (400, EMPTY_AFTER_CLEANING)
    got = client.get("/api/ask", params={"q": question})
    assert (got.status_code, got.json()["detail"]) == (400, EMPTY_AFTER_CLEANING)
    form = client.get("/", params={"q": question})
    assert form.status_code == 400 and "the question is empty" in form.text


ZERO_WIDTH_SPACE = "\u200b"


def test_a_zero_width_space_question_is_refused_in_the_same_words_on_every_surface(
    service: SearchService, client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The CLI gets the fake-encoder service: had it no check of its own, the service's would run.
    monkeypatch.setattr("qa.service.open_service", lambda *args, **kwargs: service)
    cli = CliRunner().invoke(main, ["ask", ZERO_WIDTH_SPACE])
    assert cli.exit_code == 1 and cli.stderr.strip() == f"Error: {EMPTY_AFTER_CLEANING}"

    posted = client.post("/api/ask", json={"question": ZERO_WIDTH_SPACE})
    assert (posted.status_code, posted.json()["detail"]) == (400, EMPTY_AFTER_CLEANING)
    got = client.get("/api/ask", params={"q": ZERO_WIDTH_SPACE})
    assert (got.status_code, got.json()["detail"]) == (400, EMPTY_AFTER_CLEANING)

    form = client.get("/", params={"q": ZERO_WIDTH_SPACE})
    assert form.status_code == 400 and html.escape(EMPTY_AFTER_CLEANING) in form.text

    async def ask_over_mcp() -> CallToolResult:
        async with Client(build_server(lambda: service, writes=False)) as session:
            return await session.call_tool("ask", {"question": ZERO_WIDTH_SPACE})

    refused = anyio.run(ask_over_mcp)
    assert refused.is_error and [block.text for block in refused.content] == [EMPTY_AFTER_CLEANING]


@pytest.mark.parametrize("text", INDEXABLE.values(), ids=INDEXABLE.keys())
@pytest.mark.parametrize("how", ["json", "upload"])
def test_odd_documents_round_trip_exactly_over_http(client, text, how):
    if how == "json":
        added = client.post("/api/documents", json={"id": "odd", "text": text}, headers=AUTH)
    else:
        files = {"file": ("odd.txt", text.encode(), "text/plain")}
        added = client.post("/api/documents", files=files, headers=AUTH)
    assert added.status_code == 201, added.text
    assert client.get("/api/documents/odd").json()["text"] == text


@pytest.mark.parametrize(
    ("text", "words"),
    [(ODD_TEXTS["nul bytes"], "binary file"), ("\u200f\u200b \ufeff", "empty document"), ("", "empty")],
    ids=["nul bytes", "nothing visible", "empty"],
)
def test_documents_that_cannot_be_indexed_are_400_over_http(client, text, words):
    response = client.post("/api/documents", json={"id": "odd", "text": text}, headers=AUTH)
    assert response.status_code == 400 and words in response.json()["detail"]
    assert client.get("/api/documents/odd").status_code == 404


def test_a_document_with_a_lone_surrogate_is_400_over_http(client):
    body = b'{"id": "odd", "text": "broken \\ud800 text"}'
    response = client.post(
        "/api/documents", content=body, headers=AUTH | {"content-type": "application/json"}
    )
    assert response.status_code == 400 and "surrogate" in response.json()["detail"]
