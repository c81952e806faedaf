"""Security: the write token, upload names, escaping in the web page, security headers on every
response, rate limiting and CORS (both set from the environment)."""

from __future__ import annotations

import hmac
from pathlib import Path

import httpx
import pytest
from litestar.testing import TestClient

import qa.api.security
from qa.api import ApiSettings, create_app
from qa.api.headers import DEFAULT_CSP, DOCS_CSP, PAGE_CSP
from qa.search import SearchService
from tests.helpers import AUTH, BRUSSELS, SEED_IDS, TOKEN, Page, assert_error


def env_client(service: SearchService, monkeypatch: pytest.MonkeyPatch, **env: str) -> TestClient:
    """A client of an app whose settings come from these environment variables (and no others:
    conftest clears the rest)."""
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return TestClient(create_app(service))


# -- the write token -------------------------------------------------------------------------------

WRITES = [
    ("POST", "/api/documents", {"json": {"text": "Quokkas visited Aleppo."}}),
    ("POST", "/api/documents", {"files": {"file": ("q.txt", b"Quokkas visited Aleppo.")}}),
    ("DELETE", f"/api/documents/{BRUSSELS}", {}),
]


@pytest.mark.parametrize(("method", "url", "kwargs"), WRITES)
@pytest.mark.parametrize("authorization", [None, "Bearer wrong-token", f"Basic {TOKEN}", "Bearer"])
def test_write_without_the_right_token_is_401(
    client: TestClient, method: str, url: str, kwargs: dict, authorization: str | None
) -> None:
    headers = {"Authorization": authorization} if authorization else {}
    response = client.request(method, url, headers=headers, **kwargs)
    assert "QA_API_TOKEN" in assert_error(response, 401)
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert client.get("/health").json()["documents"] == len(SEED_IDS)  # nothing was written


@pytest.mark.parametrize(("method", "url", "kwargs"), WRITES)
def test_writes_are_403_when_no_token_is_configured(
    client_without_token: TestClient, method: str, url: str, kwargs: dict
) -> None:
    response = client_without_token.request(method, url, headers=AUTH, **kwargs)
    detail = assert_error(response, 403)
    assert "QA_API_TOKEN" in detail and "qa ingest" in detail
    assert client_without_token.get("/health").json()["writes_enabled"] is False


def test_reads_need_no_token(client_without_token: TestClient) -> None:
    assert client_without_token.get("/api/documents").status_code == 200
    assert client_without_token.get("/api/ask", params={"q": "Brussels"}).status_code == 200


def test_the_token_is_compared_in_constant_time(client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    compared: list[tuple[bytes, bytes]] = []
    compare_digest = hmac.compare_digest

    def spy(given: bytes, expected: bytes) -> bool:
        compared.append((given, expected))
        return compare_digest(given, expected)

    monkeypatch.setattr(qa.api.security.hmac, "compare_digest", spy)
    assert (
        client.delete("/api/documents/nothing", headers={"Authorization": "Bearer guess"}).status_code == 401
    )
    assert client.delete("/api/documents/nothing", headers=AUTH).status_code == 404
    assert compared == [(b"guess", TOKEN.encode()), (TOKEN.encode(), TOKEN.encode())]


@pytest.mark.parametrize(
    "authorization",
    [TOKEN[:-1], TOKEN + "0", TOKEN.upper(), TOKEN[1:], "", "x" * 10_000, f"{TOKEN} {TOKEN}"],
    ids=["prefix", "longer", "upper case", "suffix", "empty", "huge", "twice"],
)
def test_near_miss_tokens_are_refused(client: TestClient, authorization: str) -> None:
    headers = {"Authorization": f"Bearer {authorization}"}
    response = client.delete(f"/api/documents/{BRUSSELS}", headers=headers)
    assert response.status_code == 401
    assert TOKEN not in response.text  # the secret never comes back
    assert client.get(f"/api/documents/{BRUSSELS}").status_code == 200


# -- upload names are never paths -----------------------------------------------------------------


def test_upload_names_are_never_used_as_paths(client: TestClient, tmp_path: Path) -> None:
    victim = tmp_path / "victim.txt"
    relative = "../" * 12 + str(victim).lstrip("/")
    names = [
        str(victim),
        relative,
        relative.replace("/", "\\"),
        "../../etc/passwd.txt",
        "C:\\Windows\\win.txt",
    ]
    for name in names:
        response = client.post("/api/documents", files={"file": (name, b"Quokkas in Homs.")}, headers=AUTH)
        assert response.status_code in (200, 201), response.text
        document = response.json()["document"]
        base = name.replace("\\", "/").rsplit("/", 1)[-1]
        assert (document["id"], document["source"]) == (base.removesuffix(".txt"), base)
    assert not victim.exists()  # nothing was written where a name pointed
    index_files = sorted(p.name for p in (tmp_path / "index").iterdir())
    assert all(
        name in ("manifest.json", "write.lock", "compact.lock")
        or name.startswith(("store.sqlite", "vectors-"))
        for name in index_files
    )


def test_an_upload_named_after_a_system_file_is_refused_by_type(client: TestClient) -> None:
    response = client.post(
        "/api/documents", files={"file": ("../../etc/passwd", b"root:x:0:0")}, headers=AUTH
    )
    assert response.status_code == 415


# -- escaping in the web page -----------------------------------------------------------------------


def assert_inert(html: str) -> None:
    """No script, no image, no event-handler attribute: hostile text stayed text."""
    elements = Page(html).elements
    assert not [tag for tag, _ in elements if tag in ("script", "img", "iframe", "svg")]
    assert not [(tag, a) for tag, attrs in elements for a in attrs if a.lower().startswith("on")]


HOSTILE_ID = "<img src=x onerror=alert(1)>"
HOSTILE_TITLE = '<script>alert("title")</script>'
HOSTILE_TEXT = 'Quokka festival <script>alert(1)</script> <svg onload=alert(2)> " onmouseover="alert(3)'


def test_a_hostile_document_shows_as_text_in_the_page(client: TestClient) -> None:
    sent = {"id": HOSTILE_ID, "title": HOSTILE_TITLE, "text": HOSTILE_TEXT, "source": "javascript:alert(4)"}
    assert client.post("/api/documents", json=sent, headers=AUTH).status_code == 201
    page = client.get("/", params={"q": "Quokka festival", "k": "3"})
    assert page.status_code == 200
    assert_inert(page.text)
    visible = Page(page.text).visible
    assert HOSTILE_TITLE in visible and HOSTILE_TEXT in visible  # shown as text, title and passage alike
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text
    assert "&lt;img src=x onerror=alert(1)&gt;" in page.text
    # The source is shown as text for the citation, never as a link.
    assert "<bdi>javascript:alert(4)</bdi>" in page.text
    assert 'href="javascript:' not in page.text and "href='javascript:" not in page.text


@pytest.mark.parametrize(
    "params",
    [
        {"q": '"><script>alert(1)</script>'},
        {"q": "Brussels", "k": '"><img src=x onerror=alert(1)>'},
        {"q": "<svg onload=alert(1)>" + "x" * 2001},
    ],
    ids=["question", "k in the error message", "too long question"],
)
def test_hostile_input_is_escaped_in_results_and_in_error_messages(client: TestClient, params: dict) -> None:
    page = client.get("/", params=params).text
    assert_inert(page)
    if len(params["q"]) <= 2000:  # the question stays in the form, as the value it was
        assert ("input", params["q"]) in [(tag, attrs.get("value")) for tag, attrs in Page(page).elements]


def test_pages_allow_no_script_at_all() -> None:
    assert "default-src 'none'" in PAGE_CSP and "script-src" not in PAGE_CSP


# -- security headers on every response ---------------------------------------------------------------

SECURITY_HEADERS = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
}
REQUESTS = {
    "form": ("GET", "/", {}, 200, PAGE_CSP),
    "results": ("GET", "/?q=Brussels", {}, 200, PAGE_CSP),
    "form error": ("GET", "/?q=", {}, 400, PAGE_CSP),
    "stylesheet": ("GET", "/assets/form.css", {}, 200, DEFAULT_CSP),
    "health": ("GET", "/health", {}, 200, DEFAULT_CSP),
    "ask": ("GET", "/api/ask?q=Brussels", {}, 200, DEFAULT_CSP),
    "bad question": ("POST", "/api/ask", {"json": {"question": ""}}, 400, DEFAULT_CSP),
    "unknown document": ("GET", "/api/documents/none", {}, 404, DEFAULT_CSP),
    "no token": ("DELETE", f"/api/documents/{BRUSSELS}", {}, 401, DEFAULT_CSP),
    "too large": ("POST", "/api/ask", {"content": b"[" * (2**20 + 1)}, 413, DEFAULT_CSP),
    "wrong method": ("PUT", "/api/ask", {}, 405, DEFAULT_CSP),
    "unknown route": ("GET", "/nothing", {}, 404, DEFAULT_CSP),
    "api docs": ("GET", "/schema", {}, 200, DOCS_CSP),
    "openapi": ("GET", "/schema/openapi.json", {}, 200, DEFAULT_CSP),
}


@pytest.mark.parametrize(
    ("method", "url", "kwargs", "status", "policy"), REQUESTS.values(), ids=REQUESTS.keys()
)
def test_every_response_carries_the_security_headers(
    client: TestClient, method: str, url: str, kwargs: dict, status: int, policy: str
) -> None:
    response = client.request(method, url, **kwargs)
    assert response.status_code == status
    for name, value in SECURITY_HEADERS.items():
        assert response.headers[name] == value
    assert response.headers["content-security-policy"] == policy
    assert "frame-ancestors 'none'" in policy


def test_a_server_error_carries_them_too_and_the_server_goes_on(
    service: SearchService, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("a bug")

    with TestClient(create_app(service, settings=ApiSettings())) as client:
        monkeypatch.setattr(service, "ask", broken)
        response = client.get("/api/ask", params={"q": "Brussels"})
        assert response.status_code == 500
        assert response.json()["detail"] == "internal server error (logged on the server)"
        assert "a bug" not in response.text
        assert response.headers["x-content-type-options"] == "nosniff"
        assert client.get("/health").status_code == 200


@pytest.mark.parametrize(
    ("url", "methods"),
    [
        ("/api/documents", "GET, OPTIONS, POST"),
        (f"/api/documents/{BRUSSELS}", "DELETE, GET, OPTIONS"),
        ("/api/ask", "GET, OPTIONS, POST"),
        ("/health", "GET, OPTIONS"),
    ],
)
def test_options_lists_every_method_of_the_route(client: TestClient, url: str, methods: str) -> None:
    response = client.options(url)
    assert (response.status_code, response.headers["allow"]) == (204, methods)


# -- rate limiting ------------------------------------------------------------------------------------


def test_there_is_no_rate_limit_by_default(service: SearchService, monkeypatch: pytest.MonkeyPatch) -> None:
    with env_client(service, monkeypatch) as client:
        statuses = {client.get("/api/ask", params={"q": "Brussels"}).status_code for _ in range(30)}
    assert statuses == {200}


def test_qa_rate_limit_answers_429_past_the_limit(
    service: SearchService, monkeypatch: pytest.MonkeyPatch
) -> None:
    with env_client(service, monkeypatch, QA_RATE_LIMIT="3/minute") as client:
        statuses = [client.get("/api/ask", params={"q": "Brussels"}).status_code for _ in range(3)]
        limited = client.post("/api/ask", json={"question": "Brussels"})
        assert statuses == [200, 200, 200]
        assert limited.status_code == 429
        assert limited.json()["status_code"] == 429 and limited.json()["detail"]
        assert limited.headers["x-content-type-options"] == "nosniff"
        assert int(limited.headers["ratelimit-reset"]) > 0
        assert client.get("/health").status_code == 200  # monitors are never limited


# -- CORS ----------------------------------------------------------------------------------------------


def preflight(
    client: TestClient, origin: str, url: str = "/api/ask", headers: str = "content-type"
) -> httpx.Response:
    return client.options(
        url,
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": headers,
        },
    )


def test_cors_is_off_by_default(service: SearchService, monkeypatch: pytest.MonkeyPatch) -> None:
    with env_client(service, monkeypatch, QA_API_TOKEN=TOKEN) as client:
        for response in [
            client.get("/api/ask", params={"q": "Brussels"}, headers={"Origin": "https://chat.example"}),
            preflight(client, "https://chat.example"),
        ]:
            assert not [name for name in response.headers if name.startswith("access-control-")]


def test_qa_cors_origins_allows_exactly_those_origins(
    service: SearchService, monkeypatch: pytest.MonkeyPatch
) -> None:
    origins = "https://chat.example, https://bot.example"
    with env_client(service, monkeypatch, QA_CORS_ORIGINS=origins) as client:
        for origin in ("https://chat.example", "https://bot.example"):
            response = client.get("/api/ask", params={"q": "Brussels"}, headers={"Origin": origin})
            assert response.headers["access-control-allow-origin"] == origin
            allowed = preflight(client, origin)
            assert allowed.headers["access-control-allow-origin"] == origin
            assert "POST" in allowed.headers["access-control-allow-methods"]
        other = client.get("/api/ask", params={"q": "Brussels"}, headers={"Origin": "https://evil.example"})
        assert "access-control-allow-origin" not in other.headers
        assert "access-control-allow-origin" not in preflight(client, "https://evil.example").headers
        # A write from a browser app: its preflight lets the token's header through.
        write = preflight(client, "https://chat.example", "/api/documents", "authorization, content-type")
        assert write.status_code in (200, 204)
        assert "authorization" in write.headers["access-control-allow-headers"].lower()
