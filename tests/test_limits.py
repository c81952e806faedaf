"""Input limits over HTTP: body size, question length, k, mode, document size and type, JSON
depth, and the settings that set them. Each has one clear outcome, never a 500."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from litestar.testing import TestClient

from qa.api import ApiSettings, create_app
from qa.api.settings import DEFAULT_MAX_API_DOCUMENT_BYTES, MAX_JSON_BYTES, MAX_UPLOAD_BYTES, RateLimit
from qa.api.validation import VISIBLE_CHARACTER
from qa.documents import MAX_DOCUMENT_BYTES
from qa.errors import ConfigurationError, QuestionError
from qa.search import MAX_QUESTION_CHARS, SearchService
from qa.textnorm import clean_text
from tests.helpers import AUTH, SEED_IDS, TOKEN, assert_error

SMALL_LIMIT = 4096  # a document limit small enough to test both sides of it quickly


@pytest.fixture
def small_limit_client(service: SearchService) -> Iterator[TestClient]:
    settings = ApiSettings(api_token=TOKEN, max_document_bytes=SMALL_LIMIT)
    with TestClient(create_app(service, settings=settings)) as client:
        yield client


def post_json(client: TestClient, url: str, raw: bytes, headers: dict | None = None) -> httpx.Response:
    return client.post(url, content=raw, headers={"content-type": "application/json", **(headers or {})})


# -- request body size ---------------------------------------------------------------------------


@pytest.mark.parametrize("url", ["/api/ask", "/api/documents"])
def test_a_json_body_at_the_limit_is_read_and_one_byte_more_is_413(client: TestClient, url: str) -> None:
    def body(size: int) -> bytes:
        head, tail = b'{"question": "', b'", "text": "x"}'
        return head + b"a" * (size - len(head) - len(tail)) + tail

    at_limit = post_json(client, url, body(MAX_JSON_BYTES), AUTH)
    assert at_limit.status_code in (200, 201, 400), at_limit.text  # read, then judged on its content
    detail = assert_error(post_json(client, url, body(MAX_JSON_BYTES + 1), AUTH), 413)
    assert "1.0 MiB" in detail


# -- question length, k and mode ----------------------------------------------------------------


def test_the_service_answers_a_question_at_the_length_limit_and_refuses_one_more(service) -> None:
    service.ask("a" * MAX_QUESTION_CHARS)
    with pytest.raises(QuestionError, match=r"2001 characters.*limit is 2000"):
        service.ask("a" * (MAX_QUESTION_CHARS + 1))


@pytest.mark.parametrize("k", [0, 51, -1, True])
def test_the_service_refuses_k_out_of_range(service, k) -> None:
    with pytest.raises(QuestionError, match="k must be"):
        service.ask("Brussels", k=k)


def ask_three_ways(client: TestClient, question: str, k: object = 5) -> list[httpx.Response]:
    """The same question through POST /api/ask, GET /api/ask and the web form."""
    return [
        client.post("/api/ask", json={"question": question, "k": k}),
        client.get("/api/ask", params={"q": question, "k": str(k)}),
        client.get("/", params={"q": question, "k": str(k)}),
    ]


def test_a_question_at_the_length_limit_is_answered_everywhere(client: TestClient) -> None:
    question = ("Brussels " * MAX_QUESTION_CHARS)[:MAX_QUESTION_CHARS]
    assert [r.status_code for r in ask_three_ways(client, question)] == [200, 200, 200]


def test_a_question_one_character_over_is_400_everywhere(client: TestClient) -> None:
    post, get, form = ask_three_ways(client, "x" * (MAX_QUESTION_CHARS + 1))
    assert "limit is 2000" in assert_error(post, 400)
    assert "limit is 2000" in assert_error(get, 400)
    assert form.status_code == 400 and "limit is 2000" in form.text


@pytest.mark.parametrize("k", [1, 50])
def test_k_at_both_ends_of_its_range_is_answered(client: TestClient, k: int) -> None:
    assert [r.status_code for r in ask_three_ways(client, "Brussels", k)] == [200, 200, 200]


@pytest.mark.parametrize("k", [0, 51, -1, 2**63, 10**30])
def test_k_out_of_range_is_400_everywhere(client: TestClient, k: int) -> None:
    post, get, form = ask_three_ways(client, "Brussels", k)
    assert "k must be a whole number from 1 to 50" in assert_error(post, 400)
    assert "k must be a whole number from 1 to 50" in assert_error(get, 400)
    assert form.status_code == 400 and "k must be a whole number from 1 to 50" in form.text


@pytest.mark.parametrize("k", [True, "5", 2.5, None, [5]])
def test_k_of_another_json_type_is_400(client: TestClient, k: object) -> None:
    assert "k" in assert_error(client.post("/api/ask", json={"question": "Brussels", "k": k}), 400)


def test_k_written_as_a_whole_float_is_an_integer_as_in_json_schema(client: TestClient) -> None:
    response = client.post("/api/ask", json={"question": "Brussels", "k": 1.0})
    assert response.status_code == 200 and len(response.json()["passages"]) == 1


@pytest.mark.parametrize(
    ("mode", "status"), [(None, 200), ("", 200), ("dense", 200), ("DENSE", 400), ("magic", 400)]
)
def test_mode_is_one_of_the_documented_ones(client: TestClient, mode: str | None, status: int) -> None:
    response = client.post("/api/ask", json={"question": "Brussels", "mode": mode})
    assert response.status_code == status, response.text


# -- JSON nesting depth --------------------------------------------------------------------------


def nested(depth: int, *, closed: bool = True) -> bytes:
    inner = b"[" * depth + (b"]" * depth if closed else b"")
    return b'{"question": "Brussels", "text": "Brussels", "extra": ' + inner + b"}"


@pytest.mark.parametrize("url", ["/api/ask", "/api/documents"])
@pytest.mark.parametrize("depth", [10, 100])
def test_moderately_nested_unknown_fields_are_ignored(client: TestClient, url: str, depth: int) -> None:
    assert post_json(client, url, nested(depth), AUTH).status_code in (200, 201)


@pytest.mark.parametrize("url", ["/api/ask", "/api/documents"])
@pytest.mark.parametrize("depth", [1_000, 10_000, 300_000])
@pytest.mark.parametrize("closed", [True, False], ids=["closed", "unclosed"])
def test_deeply_nested_json_is_400(client: TestClient, url: str, depth: int, closed: bool) -> None:
    detail = assert_error(post_json(client, url, nested(depth, closed=closed), AUTH), 400)
    assert "nested too deeply" in detail


@pytest.mark.parametrize("url", ["/api/ask", "/api/documents"])
def test_a_deeply_nested_array_as_the_whole_body_is_400(client: TestClient, url: str) -> None:
    assert_error(post_json(client, url, b"[" * 5000 + b"]" * 5000, AUTH), 400)


# -- document size and type ------------------------------------------------------------------------


def upload(client: TestClient, name: str, data: bytes) -> httpx.Response:
    return client.post(
        "/api/documents", files={"file": (name, data, "application/octet-stream")}, headers=AUTH
    )


def test_an_upload_at_the_document_limit_is_indexed_and_one_byte_more_is_413(
    small_limit_client: TestClient,
) -> None:
    text = ("Quokkas visited Aleppo. " * SMALL_LIMIT).encode()
    assert upload(small_limit_client, "at-limit.txt", text[:SMALL_LIMIT]).status_code == 201
    detail = assert_error(upload(small_limit_client, "over.txt", text[: SMALL_LIMIT + 1]), 413)
    assert "QA_MAX_API_DOCUMENT_BYTES" in detail and "qa ingest FILE" in detail


def test_a_json_document_over_the_document_limit_is_413(small_limit_client: TestClient) -> None:
    response = small_limit_client.post("/api/documents", json={"text": "ab" * SMALL_LIMIT}, headers=AUTH)
    assert "qa ingest" in assert_error(response, 413)


def test_a_declared_upload_size_over_the_limit_is_413_before_the_body_is_read(
    small_limit_client: TestClient,
) -> None:
    size = SMALL_LIMIT + 256 * 1024  # past the limit and any multipart framing
    headers = AUTH | {"content-type": "multipart/form-data; boundary=x"}
    response = small_limit_client.post("/api/documents", content=b"--x--\r\n".ljust(size), headers=headers)
    assert "qa ingest" in assert_error(response, 413)


def test_a_ten_megabyte_document_is_413_and_points_to_qa_ingest(client: TestClient) -> None:
    paragraph = "بحث مصطفى مع جيفري التصعيد في إدلب. " * 20 + "\n\n"
    data = (paragraph * (10_000_000 // len(paragraph.encode()) + 1)).encode()
    assert len(data) > 10_000_000 > DEFAULT_MAX_API_DOCUMENT_BYTES
    detail = assert_error(upload(client, "huge.txt", data), 413)
    assert "qa ingest FILE" in detail and "2.0 MiB" in detail  # the default limit, in words
    as_json = post_json(client, "/api/documents", b'{"text": "' + data + b'"}', AUTH)
    assert "qa ingest FILE" in assert_error(as_json, 413)
    assert client.get("/health").json()["documents"] == len(SEED_IDS)  # nothing was indexed


def test_a_multipart_body_past_the_largest_upload_is_413(client: TestClient) -> None:
    data = b"a" * (MAX_UPLOAD_BYTES + 1024 * 1024)
    response = client.post("/api/documents", files={"file": ("big.txt", data, "text/plain")}, headers=AUTH)
    assert_error(response, 413)


@pytest.mark.parametrize("name", ["notes.TXT", "page.Html", "readme.MD", "a.htm"])
def test_supported_suffixes_are_accepted_in_any_case(client: TestClient, name: str) -> None:
    assert upload(client, name, b"<p>Quokkas visited Aleppo.</p>").status_code == 201


@pytest.mark.parametrize("name", ["report.odt", "docs.jsonl", "noext", "evil.txt.exe", ".txt", "photo.png"])
def test_unsupported_upload_types_are_415_with_the_supported_ones(client: TestClient, name: str) -> None:
    detail = assert_error(upload(client, name, b"Quokkas visited Aleppo."), 415)
    assert ".txt, .md, .html, .htm, .pdf, .docx" in detail


@pytest.mark.parametrize(
    "content_type", ["text/plain", "application/xml", "application/x-www-form-urlencoded"]
)
def test_a_body_of_another_type_is_415(client: TestClient, content_type: str) -> None:
    response = client.post(
        "/api/documents", content=b"text=hello", headers=AUTH | {"content-type": content_type}
    )
    assert "application/json" in assert_error(response, 415)


# -- settings --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("60/minute", RateLimit(60, "minute")),
        ("5/second", RateLimit(5, "second")),
        (" 100 / Hours ", RateLimit(100, "hour")),
    ],
)
def test_rate_limits_are_parsed(text: str, expected: RateLimit) -> None:
    assert RateLimit.parse(text) == expected


@pytest.mark.parametrize("text", ["60", "0/minute", "x/minute", "60/week", "-5/second", "60 per minute"])
def test_a_bad_rate_limit_is_a_configuration_error(text: str) -> None:
    with pytest.raises(ConfigurationError, match="QA_RATE_LIMIT must look like 60/minute"):
        RateLimit.parse(text)


@pytest.mark.parametrize("raw", ["abc", "0", "-1", str(MAX_DOCUMENT_BYTES + 1), "2MB"])
def test_a_bad_document_limit_is_a_configuration_error(monkeypatch: pytest.MonkeyPatch, raw: str) -> None:
    monkeypatch.setenv("QA_MAX_API_DOCUMENT_BYTES", raw)
    with pytest.raises(ConfigurationError, match="QA_MAX_API_DOCUMENT_BYTES must be a number of bytes"):
        ApiSettings.from_env()


# -- the documented question pattern ---------------------------------------------------------------


def test_the_question_pattern_in_the_schema_matches_what_cleaning_keeps() -> None:
    import re

    visible = re.compile(VISIBLE_CHARACTER)
    planes = [*range(0x30000), *range(0xE0000, 0xE1000)]
    surrogates = range(0xD800, 0xE000)
    wrong = [
        cp
        for cp in planes
        if cp not in surrogates and bool(visible.search(chr(cp))) != bool(clean_text(chr(cp)))
    ]
    assert wrong == []
