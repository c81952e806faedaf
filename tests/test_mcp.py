"""The MCP tools through the SDK's own client: in memory and over streamable HTTP on a fake
encoder (fast), then over stdio (`qa mcp`) and HTTP (`qa serve`) on the real model."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from litestar.testing import TestClient
from mcp import ClientSession, StdioServerParameters
from mcp.client import Client
from mcp.client.stdio import stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client
from mcp_types import CallToolResult

from qa.api import ApiSettings, create_app
from qa.mcp import build_server
from qa.reliability.serve import QaServe
from qa.search import SearchService
from tests.helpers import AUTH, BRUSSELS, REPO, SEED_IDS, SEEDS, TOKEN, qa_env, serve_in_thread

READ_TOOLS = {"ask", "get_document", "list_documents"}
WRITE_TOOLS = {"add_document", "remove_document"}
CITATION_FIELDS = {"id", "title", "source", "published", "lang", "url", "author", "tags"}
START_TIMEOUT_S = 600  # a bound for a hung start-up (model load on a busy machine), not a measurement


def run(session_factory, steps) -> Any:
    """Run `steps(session)` inside a client session opened by `session_factory()`."""

    async def main() -> Any:
        async with session_factory() as session:
            return await steps(session)

    return anyio.run(main)


def in_memory(service: SearchService, *, writes: bool):
    return lambda: Client(build_server(lambda: service, writes=writes))


def text_of(result: CallToolResult) -> str:
    return "\n".join(block.text for block in result.content if block.type == "text")


async def tool_names(session) -> set[str]:
    return {tool.name for tool in (await session.list_tools()).tools}


def check_citation(hit: dict[str, Any], document_text: str | None = None) -> None:
    """A passage carries what a host needs to cite it, and its offsets point into the document."""
    assert hit["document"].keys() >= CITATION_FIELDS
    assert hit["document"]["id"] and hit["document"]["title"] and hit["document"]["source"]
    assert hit["start"] <= hit["answer"]["start"] < hit["answer"]["end"] <= hit["end"]
    assert hit["answer"]["text"] and hit["answer"]["text"] in hit["text"]
    if document_text is not None:
        assert document_text[hit["start"] : hit["end"]] == hit["text"]
        assert document_text[hit["answer"]["start"] : hit["answer"]["end"]] == hit["answer"]["text"]


# -- in memory, fake encoder ---------------------------------------------------------------------


def test_only_a_server_that_may_write_lists_the_write_tools(service: SearchService) -> None:
    assert run(in_memory(service, writes=False), tool_names) == READ_TOOLS
    assert run(in_memory(service, writes=True), tool_names) == READ_TOOLS | WRITE_TOOLS


def test_tools_are_described_for_a_model_with_schemas(service: SearchService) -> None:
    async def steps(session):
        return {tool.name: tool for tool in (await session.list_tools()).tools}

    tools = run(in_memory(service, writes=True), steps)
    ask = tools["ask"]
    assert "Example: ask(" in ask.description and "published_after" in ask.description
    assert ask.input_schema["required"] == ["question"]
    assert set(ask.input_schema["properties"]["filter"]["properties"]) == {
        "documents",
        "sources",
        "tags",
        "lang",
        "published_after",
        "published_before",
    }
    assert ask.input_schema["properties"]["k"]["maximum"] == 50
    assert ask.annotations.read_only_hint is True
    passage = ask.output_schema["properties"]["passages"]["items"]
    assert passage["properties"]["document"]["properties"].keys() >= CITATION_FIELDS
    assert tools["remove_document"].annotations.destructive_hint is True
    for tool in tools.values():
        assert tool.output_schema["type"] == "object" and "$ref" not in str(tool.output_schema)


def test_ask_returns_passages_with_citations_as_structured_content_and_text(service: SearchService) -> None:
    async def steps(session):
        return await session.call_tool("ask", {"question": "who met Jeffrey in Brussels", "k": 3})

    result = run(in_memory(service, writes=False), steps)
    assert not result.is_error
    answer = result.structured_content
    assert answer["question"] == "who met Jeffrey in Brussels" and len(answer["passages"]) == 3
    with service.index.view() as view:
        for hit in answer["passages"]:
            check_citation(hit, view.document(hit["document"]["id"]).text)
    first = answer["passages"][0]
    readable = text_of(result)
    assert first["document"]["title"] in readable and first["answer"]["text"] in readable
    assert f"document {first['document']['id']}" in readable


@pytest.mark.parametrize(
    ("arguments", "request_body"),
    [
        ({"question": ""}, {"question": ""}),
        ({"question": "   "}, {"question": "   "}),
        ({"question": "\u200b\u200f"}, {"question": "\u200b\u200f"}),  # nothing visible
        ({"question": "x" * 2001}, {"question": "x" * 2001}),
        ({"question": "who", "k": 0}, {"question": "who", "k": 0}),
        ({"question": "who", "k": 51}, {"question": "who", "k": 51}),
        ({"question": "who", "mode": "fast"}, {"question": "who", "mode": "fast"}),
    ],
)
def test_a_bad_question_is_a_tool_error_with_the_apis_message(
    service: SearchService, arguments: dict[str, Any], request_body: dict[str, Any]
) -> None:
    with TestClient(create_app(service, settings=ApiSettings())) as client:
        detail = client.post("/api/ask", json=request_body).json()["detail"]

    async def steps(session):
        return await session.call_tool("ask", arguments)

    result = run(in_memory(service, writes=False), steps)
    assert result.is_error and text_of(result) == detail


def test_an_unknown_filter_key_is_a_tool_error_naming_it(service: SearchService) -> None:
    async def steps(session):
        unknown = await session.call_tool("ask", {"question": "who", "filter": {"bogus": 1}})
        bad_date = await session.call_tool(
            "ask", {"question": "who", "filter": {"published_after": "last week"}}
        )
        return unknown, bad_date

    unknown, bad_date = run(in_memory(service, writes=False), steps)
    assert unknown.is_error and "'bogus'" in text_of(unknown) and "documents" in text_of(unknown)
    assert bad_date.is_error and "filter.published_after" in text_of(bad_date)


def test_a_filter_on_documents_restricts_the_answer_to_them(service: SearchService) -> None:
    """Needs filtered search in the index backends (`view.dense_search(..., within)`)."""
    only = SEED_IDS[0]

    async def steps(session):
        return await session.call_tool(
            "ask", {"question": "who met Jeffrey in Brussels", "k": 5, "filter": {"documents": [only]}}
        )

    result = run(in_memory(service, writes=False), steps)
    assert not result.is_error, text_of(result)
    passages = result.structured_content["passages"]
    assert passages and {hit["document"]["id"] for hit in passages} == {only}


def test_list_documents_pages_and_get_document_reads_one(service: SearchService) -> None:
    async def steps(session):
        first = await session.call_tool("list_documents", {"offset": 0, "limit": 2})
        rest = await session.call_tool("list_documents", {"offset": 2, "limit": 50})
        one = await session.call_tool("get_document", {"id": BRUSSELS})
        missing = await session.call_tool("get_document", {"id": "no-such-document"})
        bad_page = await session.call_tool("list_documents", {"limit": 0})
        return first, rest, one, missing, bad_page

    first, rest, one, missing, bad_page = run(in_memory(service, writes=False), steps)
    pages = [first.structured_content, rest.structured_content]
    assert [page["total"] for page in pages] == [len(SEED_IDS)] * 2
    assert [d["id"] for page in pages for d in page["documents"]] == SEED_IDS
    assert all(d["passages"] > 0 and d.keys() >= CITATION_FIELDS for d in pages[0]["documents"])
    document = one.structured_content
    with service.index.view() as view:
        assert document["text"] == view.document(BRUSSELS).text
    assert document["id"] == BRUSSELS and document["title"] in text_of(one)
    with TestClient(create_app(service, settings=ApiSettings())) as client:
        detail = client.get("/api/documents/no-such-document").json()["detail"]
    assert missing.is_error and text_of(missing) == detail
    assert bad_page.is_error and "limit must be a whole number from 1 to 500" in text_of(bad_page)


def test_write_tools_add_and_remove_documents(service: SearchService) -> None:
    text = "Zebra crossing opened in Timbuktu.\nThe mayor of Timbuktu opened a zebra crossing on Monday."

    async def steps(session):
        added = await session.call_tool(
            "add_document",
            {"text": text, "id": "zebra", "source": "Reuters", "published": "2020-01-02", "tags": ["town"]},
        )
        again = await session.call_tool("add_document", {"text": text, "id": "zebra", "source": "Reuters"})
        found = await session.call_tool("ask", {"question": "zebra crossing Timbuktu mayor", "k": 1})
        bad = await session.call_tool("add_document", {"text": "Hello", "published": "yesterday"})
        empty = await session.call_tool("add_document", {"text": "  "})
        removed = await session.call_tool("remove_document", {"id": "zebra"})
        gone = await session.call_tool("get_document", {"id": "zebra"})
        removed_again = await session.call_tool("remove_document", {"id": "zebra"})
        return added, again, found, bad, empty, removed, gone, removed_again

    added, again, found, bad, empty, removed, gone, removed_again = run(
        in_memory(service, writes=True), steps
    )
    assert not added.is_error, text_of(added)
    assert added.structured_content["status"] == "added"
    assert added.structured_content["document"]["id"] == "zebra"
    assert added.structured_content["document"]["source"] == "Reuters"
    assert again.structured_content["status"] == "replaced"  # other metadata: a changed document
    assert found.structured_content["passages"][0]["document"]["id"] == "zebra"
    assert bad.is_error and "published 'yesterday'" in text_of(bad)
    assert empty.is_error and text_of(empty) == "empty document (no text)"
    assert not removed.is_error and removed.structured_content == {"removed": "zebra"}
    assert gone.is_error and removed_again.is_error
    assert text_of(removed_again) == "no document with id 'zebra' in the index"


# -- streamable HTTP mounted in the app, fake encoder --------------------------------------------


@pytest.fixture
def http_url(service: SearchService) -> Iterator[str]:
    """MCP over streamable HTTP, mounted in the app served by uvicorn in a thread."""
    with serve_in_thread(create_app(service, settings=ApiSettings(api_token=TOKEN))) as url:
        yield f"{url}/mcp"


@pytest.fixture
def http_url_without_token(service: SearchService) -> Iterator[str]:
    with serve_in_thread(create_app(service, settings=ApiSettings(api_token=None))) as url:
        yield f"{url}/mcp"


def over_http(url: str, headers: dict[str, str] | None = None):
    @asynccontextmanager
    async def session() -> AsyncIterator[ClientSession]:
        async with (
            create_mcp_http_client(headers=headers) as http,
            streamable_http_client(url, http_client=http) as (read, write),
            ClientSession(read, write) as session,
        ):
            await session.initialize()
            yield session

    return session


def test_http_lists_write_tools_only_to_a_client_with_the_token(http_url: str) -> None:
    assert run(over_http(http_url), tool_names) == READ_TOOLS
    bearer = AUTH
    assert run(over_http(http_url, bearer), tool_names) == READ_TOOLS | WRITE_TOOLS


def test_http_asks_and_writes_with_the_token(http_url: str) -> None:
    async def steps(session):
        asked = await session.call_tool("ask", {"question": "who met Jeffrey in Brussels", "k": 2})
        added = await session.call_tool(
            "add_document", {"text": "Kites over Kabul.\nKites flew.", "id": "kites"}
        )
        listed = await session.call_tool("list_documents", {})
        removed = await session.call_tool("remove_document", {"id": "kites"})
        return asked, added, listed, removed

    bearer = AUTH
    asked, added, listed, removed = run(over_http(http_url, bearer), steps)
    assert len(asked.structured_content["passages"]) == 2
    check_citation(asked.structured_content["passages"][0])
    assert added.structured_content["status"] == "added"
    assert "kites" in [d["id"] for d in listed.structured_content["documents"]]
    assert not removed.is_error


def test_http_refuses_a_wrong_token_as_the_api_does(http_url: str) -> None:
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
    headers = {"Authorization": "Bearer wrong", "Accept": "application/json, text/event-stream"}
    response = httpx.post(http_url, json=body, headers=headers, timeout=30)
    assert response.status_code == 401
    assert response.json()["detail"].startswith("missing or wrong API token")
    assert response.headers["www-authenticate"] == 'Bearer realm="qa"'


def test_http_without_a_configured_token_is_read_only_whatever_the_client_sends(
    http_url_without_token: str,
) -> None:
    bearer = AUTH
    assert run(over_http(http_url_without_token, bearer), tool_names) == READ_TOOLS


def test_http_refuses_a_foreign_host_header_on_a_loopback_server(http_url: str) -> None:
    """DNS rebinding: a web page whose name resolves to 127.0.0.1 sends its own name as Host."""
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
    accept = {"Accept": "application/json, text/event-stream"}
    foreign = httpx.post(http_url, json=body, headers=accept | {"Host": "evil.example:80"}, timeout=30)
    assert foreign.status_code == 421
    localhost = httpx.post(http_url.replace("127.0.0.1", "localhost"), json=body, headers=accept, timeout=30)
    assert localhost.status_code == 200 and localhost.json()["result"]["tools"]


# -- the real model: `qa mcp` over stdio and `qa serve` over HTTP --------------------------------


QA = [sys.executable, "-c", "from qa.cli import main; main()"]


@pytest.fixture(scope="module")
def seeded_index(tmp_path_factory: pytest.TempPathFactory) -> Path:
    index_dir = tmp_path_factory.mktemp("mcp") / "index"
    subprocess.run(
        [*QA, "ingest", str(SEEDS)],
        env=qa_env(QA_INDEX_DIR=str(index_dir)),
        cwd=REPO,
        check=True,
        capture_output=True,
    )
    return index_dir


def over_stdio(index_dir: Path, *flags: str):
    params = StdioServerParameters(
        command=sys.executable,
        args=[*QA[1:], "mcp", "--index", str(index_dir), *flags],
        env=qa_env(),
    )

    @asynccontextmanager
    async def session() -> AsyncIterator[ClientSession]:
        async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
            await session.initialize()
            yield session

    return session


async def ask_brussels(session) -> tuple[CallToolResult, CallToolResult]:
    answer = await session.call_tool("ask", {"question": "who met Jeffrey in Brussels", "k": 3})
    document = await session.call_tool(
        "get_document", {"id": answer.structured_content["passages"][0]["document"]["id"]}
    )
    return answer, document


def check_brussels(answer: CallToolResult, document: CallToolResult) -> None:
    """The done-when of the issue: the passage naming عبد الرحمن مصطفى first, citable."""
    assert not answer.is_error, text_of(answer)
    first = answer.structured_content["passages"][0]
    assert first["document"]["id"] == BRUSSELS
    assert "عبد الرحمن مصطفى" in first["text"] and "جيمس جيفري" in first["text"]
    assert first["document"]["title"] == document.structured_content["title"]
    assert first["document"]["source"].endswith(f"{BRUSSELS}.txt")
    check_citation(first, document.structured_content["text"])
    assert "عبد الرحمن مصطفى" in text_of(answer)


@pytest.mark.model
def test_stdio_answers_the_brussels_question_first_with_its_citation(seeded_index: Path) -> None:
    async def steps(session):
        names = await tool_names(session)
        answer, document = await ask_brussels(session)
        listed = await session.call_tool("list_documents", {"limit": 10})
        empty = await session.call_tool("ask", {"question": " "})
        unknown = await session.call_tool("get_document", {"id": "no-such-document"})
        bogus = await session.call_tool("ask", {"question": "who", "filter": {"bogus": 1}})
        return names, answer, document, listed, empty, unknown, bogus

    names, answer, document, listed, empty, unknown, bogus = run(over_stdio(seeded_index), steps)
    assert names == READ_TOOLS  # no --allow-writes
    check_brussels(answer, document)
    assert [d["id"] for d in listed.structured_content["documents"]] == SEED_IDS
    assert empty.is_error and text_of(empty).startswith("the question is empty")
    assert unknown.is_error and text_of(unknown) == "no document with id 'no-such-document' in the index"
    assert bogus.is_error and "'bogus'" in text_of(bogus)


@pytest.mark.model
def test_stdio_passes_a_filter_through_to_the_search(seeded_index: Path) -> None:
    """Needs filtered search in the index backends (`view.dense_search(..., within)`)."""
    only = SEED_IDS[0]

    async def steps(session):
        question = {"question": "who met Jeffrey in Brussels", "k": 5}
        return await session.call_tool("ask", question | {"filter": {"documents": [only]}})

    within = run(over_stdio(seeded_index), steps)
    assert not within.is_error, text_of(within)
    assert {hit["document"]["id"] for hit in within.structured_content["passages"]} == {only}


@pytest.mark.model
def test_stdio_writes_only_with_allow_writes(seeded_index: Path) -> None:
    text = (
        "Kites over Kabul.\nHundreds of children flew kites over Kabul on Friday, the city's kite festival."
    )

    async def steps(session):
        names = await tool_names(session)
        added = await session.call_tool("add_document", {"text": text, "id": "kites", "source": "AFP"})
        asked = await session.call_tool("ask", {"question": "where did children fly kites?", "k": 1})
        removed = await session.call_tool("remove_document", {"id": "kites"})
        return names, added, asked, removed

    names, added, asked, removed = run(over_stdio(seeded_index, "--allow-writes"), steps)
    assert names == READ_TOOLS | WRITE_TOOLS
    assert added.structured_content["status"] == "added", text_of(added)
    assert asked.structured_content["passages"][0]["document"]["id"] == "kites"
    assert not removed.is_error


@pytest.mark.model
def test_stdio_writes_nothing_but_protocol_to_standard_output(seeded_index: Path) -> None:
    """A host reads standard output as JSON-RPC: one `initialize` and one answer, nothing else."""
    initialize = (
        '{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18",'
        '"capabilities":{},"clientInfo":{"name":"test","version":"0"}}}\n'
    )
    done = subprocess.run(
        [*QA, "mcp", "--index", str(seeded_index)],
        input=initialize,
        env=qa_env(),
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=START_TIMEOUT_S,
    )
    lines = done.stdout.splitlines()
    assert len(lines) == 1 and '"id":1' in lines[0] and '"serverInfo"' in lines[0], (done.stdout, done.stderr)


@pytest.fixture(scope="module")
def served(seeded_index: Path) -> Iterator[str]:
    """`qa serve` with the write token on a free port over the seeded index; yields the MCP URL."""
    with QaServe(seeded_index, seeded_index.parent / "logs", env={"QA_API_TOKEN": TOKEN}) as server:
        yield f"{server.start(timeout_s=START_TIMEOUT_S)}/mcp"


@pytest.mark.model
def test_http_of_qa_serve_answers_the_brussels_question_first(served: str) -> None:
    async def steps(session):
        return await tool_names(session), *await ask_brussels(session)

    names, answer, document = run(over_http(served), steps)
    assert names == READ_TOOLS
    check_brussels(answer, document)


@pytest.mark.model
def test_http_of_qa_serve_writes_with_the_token(served: str) -> None:
    async def steps(session):
        names = await tool_names(session)
        added = await session.call_tool(
            "add_document", {"text": "Kites over Kabul.\nKites flew.", "id": "kites"}
        )
        removed = await session.call_tool("remove_document", {"id": "kites"})
        return names, added, removed

    names, added, removed = run(over_http(served, AUTH), steps)
    assert names == READ_TOOLS | WRITE_TOOLS
    assert added.structured_content["status"] == "added" and not removed.is_error
