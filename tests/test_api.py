"""The JSON API's routes and their contract through Litestar's TestClient, on a fake encoder (one
test uses the real model). Limits (413, 415, lengths) live in test_limits.py, the write token,
CORS and headers in test_security.py, odd text in test_odd_input.py."""

from __future__ import annotations

from pathlib import Path

import pytest
from litestar.testing import TestClient

from qa.api import ApiSettings, create_app
from qa.errors import IndexStateError
from qa.search import SearchService
from tests.fakes import FakeEncoder
from tests.helpers import AUTH, BRUSSELS, SEED_IDS, SEEDS, assert_error, seeded_service

# -- health and schema ---------------------------------------------------------------------------


def test_health_reports_model_and_counts(client: TestClient, service: SearchService) -> None:
    body = client.get("/health").json()
    with service.index.view() as view:
        passages = len(list(view.iter_passages()))
        assert body["version"] == view.version
    assert body["status"] == "ok"
    assert body["model"] == "fake" and body["dimension"] == 64
    assert body["documents"] == len(SEED_IDS)
    assert body["passages"] == passages > len(SEED_IDS)
    assert body["writes_enabled"] is True


def test_openapi_lists_every_route_with_a_summary(client: TestClient) -> None:
    schema = client.get("/schema/openapi.json").json()
    operations = {
        (method.upper(), path): operation
        for path, item in schema["paths"].items()
        for method, operation in item.items()
    }
    expected = {
        ("POST", "/api/ask"),
        ("GET", "/api/ask"),
        ("GET", "/api/documents"),
        ("POST", "/api/documents"),
        ("GET", "/api/documents/{document_id}"),
        ("DELETE", "/api/documents/{document_id}"),
        ("GET", "/health"),
    }
    assert set(operations) == expected  # the web form and its stylesheet stay out of the API docs
    for operation in operations.values():
        assert operation["summary"] and operation["operationId"]
    upload_body = operations["POST", "/api/documents"]["requestBody"]["content"]
    assert set(upload_body) == {"application/json", "multipart/form-data"}
    assert operations["DELETE", "/api/documents/{document_id}"]["security"] == [{"bearer": []}]


def test_schema_has_an_interactive_page(client: TestClient) -> None:
    response = client.get("/schema")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "swagger" in response.text.lower()


# -- asking ----------------------------------------------------------------------------------------


def test_post_ask_returns_the_contract_shape(client: TestClient) -> None:
    response = client.post("/api/ask", json={"question": "Brussels Jeffrey مصطفى", "k": 3})
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"question", "passages", "took_ms", "mode"}
    assert body["question"] == "Brussels Jeffrey مصطفى" and body["mode"] == "hybrid"
    assert isinstance(body["took_ms"], float)
    assert [hit["rank"] for hit in body["passages"]] == [1, 2, 3]
    for hit in body["passages"]:
        assert set(hit) == {"rank", "score", "text", "document", "start", "end", "answer"}
        # The contract's three keys, extended with what a citation needs.
        assert set(hit["document"]) == {"id", "title", "source", "published", "lang", "url", "author", "tags"}
        assert hit["start"] <= hit["answer"]["start"] <= hit["answer"]["end"] <= hit["end"]
        document = client.get(f"/api/documents/{hit['document']['id']}").json()
        assert document["text"][hit["start"] : hit["end"]] == hit["text"]
        assert document["text"][hit["answer"]["start"] : hit["answer"]["end"]] == hit["answer"]["text"]


def test_get_ask_answers_like_post(client: TestClient) -> None:
    posted = client.post("/api/ask", json={"question": "بروكسل", "k": 4, "mode": "lexical"}).json()
    got = client.get("/api/ask", params={"q": "بروكسل", "k": 4, "mode": "lexical"}).json()
    assert got["passages"] == posted["passages"]
    assert got["mode"] == "lexical"
    assert got["passages"][0]["document"]["id"] == BRUSSELS


def test_k_defaults_to_five(client: TestClient) -> None:
    assert len(client.get("/api/ask", params={"q": "Syria"}).json()["passages"]) == 5


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({"question": ""}, "empty"),
        ({"question": "   "}, "empty"),
        ({"question": "Brussels", "k": "five"}, "k"),
        ({"question": 42}, "question"),
        ({"k": 3}, "question"),
    ],
)
def test_post_ask_refuses_bad_input_with_400(client: TestClient, body: dict, words: str) -> None:
    assert words in assert_error(client.post("/api/ask", json=body), 400)


@pytest.mark.parametrize(
    "params",
    [
        {"q": ""},
        {"q": "Brussels", "k": "many"},
        {"q": "Brussels", "mode": "magic"},
        {},
    ],
)
def test_get_ask_refuses_bad_input_with_400(client: TestClient, params: dict) -> None:
    assert_error(client.get("/api/ask", params=params), 400)


MALFORMED_JSON = [b"{bad json", b"", b'{"question": "unterminated', b"\xff\xfe", b'{"question": "\xff"}']


@pytest.mark.parametrize("raw", MALFORMED_JSON)
def test_malformed_json_is_400(client: TestClient, raw: bytes) -> None:
    response = client.post("/api/ask", content=raw, headers={"content-type": "application/json"})
    assert_error(response, 400)


# -- documents: reading ---------------------------------------------------------------------------


def test_list_documents_pages_through_all(client: TestClient) -> None:
    first = client.get("/api/documents", params={"limit": 2}).json()
    rest = client.get("/api/documents", params={"offset": 2, "limit": 10}).json()
    assert first["total"] == rest["total"] == len(SEED_IDS)
    assert (first["offset"], first["limit"]) == (0, 2)
    ids = [d["id"] for d in first["documents"] + rest["documents"]]
    assert ids == SEED_IDS
    assert all(d["passages"] > 0 and d["title"] and "text" not in d for d in first["documents"])


@pytest.mark.parametrize(
    "params", [{"limit": 0}, {"limit": 501}, {"offset": -1}, {"offset": 10**30}, {"limit": "all"}]
)
def test_list_documents_refuses_bad_paging(client: TestClient, params: dict) -> None:
    assert_error(client.get("/api/documents", params=params), 400)


def test_get_document_returns_its_text(client: TestClient) -> None:
    body = client.get(f"/api/documents/{BRUSSELS}").json()
    assert body["id"] == BRUSSELS
    assert body["text"] == (SEEDS / f"{BRUSSELS}.txt").read_text(encoding="utf-8")
    assert body["passages"] > 0 and body["title"]


def test_unknown_document_is_404(client: TestClient) -> None:
    assert "no-such-doc" in assert_error(client.get("/api/documents/no-such-doc"), 404)
    assert_error(client.delete("/api/documents/no-such-doc", headers=AUTH), 404)


def test_unknown_route_is_json_404(client: TestClient) -> None:
    assert_error(client.get("/api/nothing-here"), 404)


# -- documents: writing ---------------------------------------------------------------------------


def test_add_json_document_then_find_it(client: TestClient) -> None:
    sent = {
        "id": "zebra-1",
        "title": "Zebras",
        "text": "Zebra crossings were painted in Damascus.",
        "source": "t",
        "published": "2019-03-04T10:00:00+02:00",
        "url": "https://example.org/zebras",
        "author": "A. Writer",
        "tags": ["roads", "syria", "roads"],
    }
    response = client.post("/api/documents", json=sent, headers=AUTH)
    assert response.status_code == 201
    assert response.json() == {
        "status": "added",
        "document": {
            "id": "zebra-1",
            "title": "Zebras",
            "source": "t",
            "passages": 1,
            "published": "2019-03-04T08:00:00Z",  # normalized to UTC
            "lang": "en",  # detected
            "url": "https://example.org/zebras",
            "author": "A. Writer",
            "tags": ["roads", "syria"],
        },
    }
    top = client.post("/api/ask", json={"question": "zebra crossings Damascus", "k": 1}).json()
    assert top["passages"][0]["document"]["id"] == "zebra-1"
    assert client.get("/health").json()["documents"] == len(SEED_IDS) + 1


def test_adding_again_is_unchanged_and_new_text_replaces(client: TestClient) -> None:
    sent = {"id": "zebra-2", "text": "Zebra crossings were painted in Damascus."}
    assert client.post("/api/documents", json=sent, headers=AUTH).status_code == 201
    again = client.post("/api/documents", json=sent, headers=AUTH)
    assert (again.status_code, again.json()["status"]) == (200, "unchanged")
    changed = client.post("/api/documents", json=sent | {"text": "Quokkas visited Aleppo."}, headers=AUTH)
    assert (changed.status_code, changed.json()["status"]) == (200, "replaced")
    assert client.get("/api/documents/zebra-2").json()["text"] == "Quokkas visited Aleppo."


def test_add_without_id_derives_one_from_the_text(client: TestClient) -> None:
    body = client.post("/api/documents", json={"text": "Quokkas visited Aleppo."}, headers=AUTH).json()
    assert len(body["document"]["id"]) == 16
    assert body["document"]["title"] == "Quokkas visited Aleppo."


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({"title": "no text"}, "text"),
        ({"text": "ok", "id": "a/b"}, "/"),
        ({"text": 5}, "text"),
        ([1, 2], "document"),
    ],
)
def test_add_json_document_refuses_bad_documents_with_400(client: TestClient, body, words: str) -> None:
    assert words in assert_error(client.post("/api/documents", json=body, headers=AUTH), 400)


@pytest.mark.parametrize("raw", MALFORMED_JSON)
def test_add_json_document_malformed_is_400(client: TestClient, raw: bytes) -> None:
    headers = AUTH | {"content-type": "application/json"}
    assert_error(client.post("/api/documents", content=raw, headers=headers), 400)


def test_empty_body_is_400_with_a_clear_message(client: TestClient) -> None:
    response = client.post("/api/ask", content=b"", headers={"content-type": "application/json"})
    assert "empty" in assert_error(response, 400)


def test_upload_a_file(client: TestClient) -> None:
    files = {"file": ("quokka-news.md", b"# Quokkas\n\nQuokkas visited Aleppo today.", "text/markdown")}
    response = client.post("/api/documents", files=files, headers=AUTH)
    assert response.status_code == 201, response.text
    assert response.json()["document"] | {"passages": 0} == {
        "id": "quokka-news",
        "title": "Quokkas",
        "source": "quokka-news.md",
        "passages": 0,
        "published": None,
        "lang": None,  # too short to tell: "Quokkas visited Aleppo today." reads as Finnish
        "url": None,
        "author": None,
        "tags": [],
    }
    assert client.get("/api/documents/quokka-news").json()["text"].endswith("Aleppo today.")


def test_upload_html_keeps_only_its_text(client: TestClient) -> None:
    page = (
        b"<html><head><title>Page</title><script>var x;</script></head><body><p>Quokkas in Homs.</p></body>"
    )
    response = client.post("/api/documents", files={"file": ("page.html", page, "text/html")}, headers=AUTH)
    assert response.status_code == 201
    assert client.get("/api/documents/page").json()["text"] == "Quokkas in Homs."


@pytest.mark.parametrize(
    "data",
    [b"\x00\x01binary", b"\xff\xfebad utf-8", "\ufeff".encode("utf-16")],
    ids=["nul", "latin", "utf16"],
)
def test_upload_that_is_not_utf8_text_is_400(client: TestClient, data: bytes) -> None:
    response = client.post("/api/documents", files={"file": ("x.txt", data, "text/plain")}, headers=AUTH)
    assert_error(response, 400)


def test_multipart_without_a_file_field_is_400(client: TestClient) -> None:
    response = client.post(
        "/api/documents", data={"text": "hello"}, files={"other": ("a.txt", b"x")}, headers=AUTH
    )
    assert "'file'" in assert_error(response, 400)


def test_delete_removes_the_document_everywhere(client: TestClient) -> None:
    assert client.delete(f"/api/documents/{BRUSSELS}", headers=AUTH).status_code == 204
    assert_error(client.get(f"/api/documents/{BRUSSELS}"), 404)
    hits = client.get("/api/ask", params={"q": "بروكسل جيفري", "k": 50}).json()["passages"]
    assert hits and all(hit["document"]["id"] != BRUSSELS for hit in hits)
    assert client.get("/health").json()["documents"] == len(SEED_IDS) - 1


# -- start-up ---------------------------------------------------------------------------------


def test_app_loads_the_service_at_startup(tmp_path: Path, fake_encoder: FakeEncoder) -> None:
    seeded_service(tmp_path / "index", fake_encoder).index.close()
    app = create_app(index_dir=tmp_path / "index", encoder=fake_encoder, settings=ApiSettings())
    with TestClient(app) as client:
        assert client.get("/health").json()["documents"] == len(SEED_IDS)
        assert client.get("/api/ask", params={"q": "Brussels"}).status_code == 200


def test_startup_fails_cleanly_on_an_index_of_another_model(tmp_path: Path) -> None:
    seeded_service(tmp_path / "index", FakeEncoder(fingerprint="other")).index.close()
    app = create_app(index_dir=tmp_path / "index", encoder=FakeEncoder(), settings=ApiSettings())
    with pytest.raises(ExceptionGroup) as caught, TestClient(app):  # Litestar's task group wraps it
        pass
    assert caught.group_contains(IndexStateError)
    assert "built with the model" in app.state.startup_error


# -- the real model -------------------------------------------------------------------------------


@pytest.mark.model
def test_real_model_answers_the_brussels_question_first(tmp_path: Path, real_encoder) -> None:
    service = seeded_service(tmp_path / "index", real_encoder)
    with TestClient(create_app(service, settings=ApiSettings())) as client:
        response = client.post("/api/ask", json={"question": "who met Jeffrey in Brussels", "k": 3})
    assert response.status_code == 200
    first = response.json()["passages"][0]
    assert first["document"]["id"] == BRUSSELS
    assert "عبد الرحمن مصطفى" in first["text"] and "جيمس جيفري" in first["text"]
