"""Results a person can read: no overlapping passages of one document, an optional cap per
document, the ranking as it is on request; titles without site names; the answer sentence a
body sentence rather than the headline when one scores close."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from litestar.testing import TestClient

from qa.api import ApiSettings, create_app
from qa.documents import document_from_text, document_from_upload, without_site_name
from qa.errors import QuestionError
from qa.index import SentenceVector, StoredDocument, StoredPassage
from qa.ingest import ingest_documents
from qa.reliability.serve import qa_command
from qa.search import SearchService, _Candidate
from qa.service import open_service
from tests.fakes import FakeEncoder
from tests.helpers import SEEDS

# One long article about the harbour (many passages, each sharing a sentence with the next) and
# two short ones.
HARBOUR = "Harbour report\n" + " ".join(
    f"The harbour of Tartus loaded ship number {n} with wheat and the harbour cranes worked late."
    for n in range(40)
)
OTHERS = {
    "market": "Market news\nThe market of Aleppo opened early and the harbour trade was discussed.",
    "council": "Council news\nThe council met to discuss the harbour budget for next year.",
}


def overlapping_pairs(hits) -> list[tuple[int, int]]:
    return [
        (a.rank, b.rank)
        for n, a in enumerate(hits)
        for b in hits[n + 1 :]
        if a.document.id == b.document.id and a.start < b.end and b.start < a.end
    ]


@pytest.fixture
def harbour_service(tmp_path: Path, fake_encoder: FakeEncoder) -> SearchService:
    harbour_service = open_service(tmp_path / "index", encoder=fake_encoder)
    documents = [document_from_text(HARBOUR, id="harbour")]
    documents += [document_from_text(text, id=doc_id) for doc_id, text in OTHERS.items()]
    ingest_documents(harbour_service.index, fake_encoder, documents)
    return harbour_service


def test_the_ranking_as_it_is_repeats_overlapping_passages_and_the_default_does_not(harbour_service):
    question = "harbour of Tartus loaded ship wheat cranes"
    raw = harbour_service.ask(question, k=10, mode="lexical", raw=True).passages
    assert overlapping_pairs(raw), "the corpus must make the ranking repeat itself"
    readable = harbour_service.ask(question, k=10, mode="lexical").passages
    assert not overlapping_pairs(readable)
    assert readable[0].start == raw[0].start  # the best one stays first
    # Later passages fill the places: every non-overlapping passage that matches is there.
    assert {hit.document.id for hit in readable} == {"harbour", "market", "council"}
    assert sum(hit.document.id == "harbour" for hit in readable) >= 2
    assert [hit.rank for hit in readable] == list(range(1, len(readable) + 1))


@pytest.mark.parametrize("cap", [1, 2])
def test_at_most_n_passages_of_one_document(harbour_service, cap):
    hits = harbour_service.ask("harbour of Tartus ship", k=10, mode="hybrid", per_document=cap).passages
    counts = {doc_id: sum(h.document.id == doc_id for h in hits) for doc_id in {h.document.id for h in hits}}
    assert max(counts.values()) <= cap
    assert len(hits) == cap + 2  # the harbour article up to the cap, and the two one-passage ones


@pytest.mark.parametrize("bad", [0, 51, -1, True, 2.5, "1"])
def test_a_bad_per_document_cap_is_refused(harbour_service, bad):
    with pytest.raises(QuestionError, match="per_document must be a whole number from 1 to 50"):
        harbour_service.ask("harbour", per_document=bad)


# -- the API and the web form --------------------------------------------------------------------


@pytest.fixture
def harbour_client(harbour_service: SearchService) -> Iterator[TestClient]:
    with TestClient(create_app(harbour_service, settings=ApiSettings())) as harbour_client:
        yield harbour_client


def test_the_api_takes_per_document_and_raw(harbour_client):
    body = {"question": "harbour of Tartus loaded ship wheat", "k": 6, "mode": "lexical"}
    capped = harbour_client.post("/api/ask", json=body | {"per_document": 1}).json()["passages"]
    assert sorted(hit["document"]["id"] for hit in capped) == ["council", "harbour", "market"]
    raw = harbour_client.post("/api/ask", json=body | {"raw": True}).json()["passages"]
    assert [hit["document"]["id"] for hit in raw[:4]] == ["harbour"] * 4  # neighbours, overlapping
    got = harbour_client.get("/api/ask", params={"q": body["question"], "k": 6, "per_document": 1}).json()
    assert [hit["document"]["id"] for hit in got["passages"]] == [hit["document"]["id"] for hit in capped]


@pytest.mark.parametrize("bad", [0, 51, "1", True, None])
def test_the_api_refuses_a_bad_per_document_with_400(harbour_client, bad):
    response = harbour_client.post("/api/ask", json={"question": "harbour", "per_document": bad})
    if bad is None:  # null: no cap
        assert response.status_code == 200
        return
    assert response.status_code == 400, response.text
    assert "per_document" in response.json()["detail"]


def test_the_web_form_has_a_per_article_field(harbour_client):
    page = harbour_client.get("/", params={"q": "harbour of Tartus ship", "k": "6", "per_document": "1"}).text
    assert 'name="per_document"' in page and 'value="1"' in page
    assert page.count('data-document="harbour"') == 1
    refused = harbour_client.get("/", params={"q": "harbour", "per_document": "many"})
    assert refused.status_code == 400 and "per_document must be a whole number" in refused.text


# -- titles and answer sentences -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("title", "expected"),
    [
        (
            "Envoy meets opposition leader in Brussels - It's Over 9000!",
            "Envoy meets opposition leader in Brussels",
        ),
        (
            "Pedersen warns of escalation in Idlib | Al Jazeera English",
            "Pedersen warns of escalation in Idlib",
        ),
        (
            "رئيس الائتلاف يبحث في بروكسل التصعيد في إدلب - بلدي نيوز",
            "رئيس الائتلاف يبحث في بروكسل التصعيد في إدلب",
        ),
        ("Assad - Putin meeting ends", "Assad - Putin meeting ends"),  # a dash inside the headline
        ("Syria talks | Reuters", "Syria talks | Reuters"),  # too short a headline to tell
        ("Breaking: envoy meets opposition leader", "Breaking: envoy meets opposition leader"),
    ],
)
def test_page_titles_lose_the_site_name(title, expected):
    assert without_site_name(title) == expected


def test_a_page_title_and_a_first_line_title_lose_the_site_name():
    page = b"<title>Ferry leaves Tartus at dawn - Harbour Times</title><body>Text.</body>"
    assert document_from_upload("ferry.html", page).title == "Ferry leaves Tartus at dawn"
    text = "Ferry leaves Tartus at dawn - Harbour Times\n\nThe ferry left at dawn."
    assert document_from_text(text, id="ferry").title == "Ferry leaves Tartus at dawn"
    assert document_from_text(text, id="ferry", title="Given - As Is").title == "Given - As Is"


def _unit(*values: float) -> np.ndarray:
    vector = np.array(values, dtype=np.float32)
    return vector / np.linalg.norm(vector)


@pytest.mark.parametrize(("body_closeness", "answer"), [(0.97, "body"), (0.5, "headline")])
def test_a_body_sentence_close_to_the_headline_is_the_answer(fake_encoder, body_closeness, answer):
    text = "Ferry leaves Tartus\nThe ferry left the harbour at dawn."
    document = StoredDocument("ferry", "Ferry leaves Tartus", "t", text, "h", 1)
    question = _unit(1, 0)
    headline = SentenceVector(0, 19, question)  # the headline: as close as can be
    body_vector = _unit(body_closeness, np.sqrt(1 - body_closeness**2))
    body = SentenceVector(20, len(text), body_vector)
    candidate = _Candidate(StoredPassage(1, "ferry", 0, len(text)), [headline, body], 0, 1.0)
    harbour_service = SearchService(index=None, encoder=fake_encoder)  # type: ignore[arg-type]
    start, end = harbour_service._answer_span(candidate, document, question)
    assert text[start:end] == {"body": text[20:], "headline": text[:19]}[answer]


@pytest.mark.model
def test_qa_ask_per_document_and_raw_with_the_real_model(tmp_path, real_encoder):
    index = tmp_path / "index"
    assert (
        subprocess.run([*qa_command(), "ingest", str(SEEDS), "--index", str(index)], check=False).returncode
        == 0
    )

    def ask(*flags: str) -> list[dict]:
        done = subprocess.run(
            [
                *qa_command(),
                "ask",
                "who met Jeffrey in Brussels",
                "--index",
                str(index),
                "--json",
                "-k",
                "5",
                *flags,
            ],
            capture_output=True,
            text=True,
            check=True,
        )
        return json.loads(done.stdout)["passages"]

    default, raw, capped = ask(), ask("--raw"), ask("--per-document", "1")
    assert default[0]["document"]["id"] == "002_b8689e71eb8b336f"
    assert "عبد الرحمن مصطفى" in default[0]["answer"]["text"]
    assert "It's Over 9000" not in default[0]["document"]["title"]
    pairs = [
        (a["document"]["id"], a["start"], a["end"], b["start"], b["end"])
        for n, a in enumerate(default)
        for b in default[n + 1 :]
        if a["document"]["id"] == b["document"]["id"]
    ]
    assert all(end_a <= start_b or end_b <= start_a for _, start_a, end_a, start_b, end_b in pairs)
    assert any(  # the ranking as it is does repeat the article
        a["document"]["id"] == b["document"]["id"] and a["start"] < b["end"] and b["start"] < a["end"]
        for n, a in enumerate(raw)
        for b in raw[n + 1 :]
    )
    assert len({hit["document"]["id"] for hit in capped}) == len(capped)
