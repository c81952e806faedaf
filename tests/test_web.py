"""The web form at `/`: plain GET requests, as a browser without JavaScript sends them."""

from __future__ import annotations

from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path

import pytest
from litestar.testing import TestClient

from qa.api import ApiSettings, create_app
from qa.documents import document_from_text, iter_documents
from qa.ingest import ingest_documents
from qa.search import MAX_QUESTION_CHARS, SearchService
from qa.service import open_service
from tests.conftest import SEEDS
from tests.fakes import FakeEncoder

HOSTILE = '<script>window.__pwned = 1</script> <img src=x onerror="alert(1)"> "quoted" & zebra crossings'


class Page(HTMLParser):
    """What a browser would build from the page: elements with attributes, and visible text."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.elements: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        self.text.append(data)

    def find(self, tag: str, **attrs: str) -> list[dict[str, str | None]]:
        return [a for t, a in self.elements if t == tag and all(a.get(k) == v for k, v in attrs.items())]

    def classes(self, tag: str, name: str) -> list[dict[str, str | None]]:
        return [a for t, a in self.elements if t == tag and name in (a.get("class") or "").split()]

    @property
    def visible(self) -> str:
        return "".join(self.text)


@pytest.fixture
def service(tmp_path: Path, fake_encoder: FakeEncoder) -> SearchService:
    service = open_service(tmp_path / "index", encoder=fake_encoder)
    documents = [*iter_documents([SEEDS]), document_from_text(HOSTILE, id="hostile")]
    ingest_documents(service.index, fake_encoder, documents)
    return service


@pytest.fixture
def client(service: SearchService) -> Iterator[TestClient]:
    with TestClient(create_app(service, settings=ApiSettings())) as client:
        yield client


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


def test_pages_forbid_scripts(client: TestClient) -> None:
    policy = client.get("/").headers["content-security-policy"]
    assert "default-src 'none'" in policy and "script-src" not in policy


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


def test_document_text_is_escaped(client: TestClient) -> None:
    response = client.get("/", params={"q": "zebra crossings quoted", "k": "1"})
    page = Page(response.text)
    assert page.find("a", href="/api/documents/hostile")
    assert HOSTILE in page.visible  # shown as text, title and passage alike ...
    assert not page.find("script") and not page.find("img")  # ... and never as elements
    assert "&lt;script&gt;" in response.text and "<script>" not in response.text


def test_question_is_escaped_in_the_form_and_the_title(client: TestClient) -> None:
    question = '"><script>alert(1)</script> zebra'
    response = client.get("/", params={"q": question})
    page = Page(response.text)
    assert page.find("input", name="q", value=question)
    assert not page.find("script")
    assert "<script>" not in response.text


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
