"""The web form at `/`: plain GET requests, as a browser without JavaScript sends them. Escaping
and the page's security headers: tests/test_security.py."""

from __future__ import annotations

from pathlib import Path

import pytest
from litestar.testing import TestClient

from qa.api import ApiSettings, create_app
from qa.search import MAX_QUESTION_CHARS
from qa.service import open_service
from tests.fakes import FakeEncoder
from tests.helpers import Page


def test_first_visit_shows_the_form(client: TestClient) -> None:
    response = client.get("/")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    page = Page(response.text)
    assert page.find("form", method="get", action="/")
    assert page.find("input", name="q", dir="auto")
    assert page.find("input", name="k", type="number", value="5")
    assert page.find("link", rel="stylesheet", href="/assets/form.css")
    assert not page.find("script")
    assert not page.classes("li", "hit") and not page.classes("p", "message")


def test_stylesheet_is_served(client: TestClient) -> None:
    response = client.get("/assets/form.css")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/css")
    assert "mark" in response.text


def test_question_by_get_shows_results_with_the_answer_marked(client: TestClient) -> None:
    response = client.get("/", params={"q": "Jeffrey Brussels بروكسل", "k": "3"})
    assert response.status_code == 200
    page = Page(response.text)
    assert len(page.classes("li", "hit")) == 3
    assert len(page.classes("p", "passage")) == 3
    assert all(p.get("dir") == "auto" for p in page.classes("p", "passage"))
    assert len(page.find("h2", dir="auto")) == 3
    assert len(page.find("mark")) == 3
    assert page.find("input", name="q", value="Jeffrey Brussels بروكسل")
    assert page.find("input", name="k", value="3")
    assert "بروكسل" in page.visible


def test_the_page_shows_what_the_api_answers(client: TestClient) -> None:
    api = client.get("/api/ask", params={"q": "Rayburn Syria", "k": 2}).json()
    page = Page(client.get("/", params={"q": "Rayburn Syria", "k": "2"}).text)
    titles = [hit["document"]["title"] for hit in api["passages"]]
    assert all(title in page.visible for title in titles)
    assert all(hit["answer"]["text"] in page.visible for hit in api["passages"])
    links = [a["href"] for a in page.find("a") if (a.get("href") or "").startswith("/api/documents/")]
    assert links == [f"/api/documents/{hit['document']['id']}" for hit in api["passages"]]


@pytest.mark.parametrize(
    ("params", "words"),
    [
        ({"q": ""}, "the question is empty"),
        ({"q": "   "}, "the question is empty"),
        ({"q": "x" * (MAX_QUESTION_CHARS + 1)}, "the limit is 2000"),
        ({"q": "Brussels", "k": "0"}, "k must be a whole number from 1 to 50"),
        ({"q": "Brussels", "k": "51"}, "k must be a whole number from 1 to 50"),
        ({"q": "Brussels", "k": "lots"}, "k must be a whole number from 1 to 50"),
    ],
)
def test_bad_question_shows_a_message(client: TestClient, params: dict, words: str) -> None:
    response = client.get("/", params=params)
    assert response.status_code == 400
    assert response.headers["content-type"].startswith("text/html")
    page = Page(response.text)
    assert page.find("p", **{"class": "message", "role": "alert"})
    assert words in page.visible
    assert page.find("form")  # the form is still there to try again
    assert not page.classes("li", "hit")


def test_empty_index_says_so(tmp_path: Path, fake_encoder: FakeEncoder) -> None:
    service = open_service(tmp_path / "empty", encoder=fake_encoder)
    with TestClient(create_app(service, settings=ApiSettings())) as client:
        response = client.get("/", params={"q": "who met Jeffrey in Brussels"})
    assert response.status_code == 200
    page = Page(response.text)
    assert page.classes("p", "empty")
    assert "No passage answers this question" in page.visible and "qa ingest" in page.visible
