"""`build_server`: the MCP server (tools, their descriptions for a model, the server's
instructions) over one search service, for any transport: stdio (`qa mcp`) and HTTP (`/mcp`)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from importlib.metadata import PackageNotFoundError, version

from mcp.server.mcpserver import MCPServer
from mcp_types import ToolAnnotations

from qa.filters import FILTER_HELP
from qa.mcp.tools import EXAMPLE_ID, SearchTools
from qa.search import SearchService

NAME = "qa"
INSTRUCTIONS = """Question answering over a collection of news articles, most of them in Arabic.
Call `ask` with the user's question, in the user's own words and language (English questions
find Arabic articles); answer from the passages it returns, quoting the answer sentence and
citing each passage by its document's title and source (with url or published date when given).
`list_documents` shows what is indexed; `get_document` reads one article in full."""
WRITES_OFF = (
    " This server is read-only: adding and removing documents needs `qa mcp --allow-writes` over "
    "stdio, or the server's API token (Authorization: Bearer <QA_API_TOKEN>) over HTTP."
)

ASK = f"""Search the indexed news articles for the passages that answer a question, best first.

Each passage comes with the sentence that best answers the question (`answer`, with character
offsets into the document) and what a citation needs: document id, title, source, published date,
url, language, tags, and the passage's own offsets. Questions may be in any language: an English
question finds Arabic articles, and names may be written in either script.

Use it for any question the news may answer. Quote the answer sentence and cite title and source.
When the passages miss, ask again in other words or with a larger k; read a whole article with
get_document. `filter` limits the documents searched: {FILTER_HELP}

Example: ask(question="who met Jeffrey in Brussels", k=3), or with a filter:
ask(question="what did the minister say", filter={{"published_after": "2019-01-01", "lang": "ar"}})"""

GET_DOCUMENT = f"""Read one document in full: its text and metadata (title, source, published date,
url, language, tags, author, passage count), by its id. The offsets `ask` returns (passage start/end,
answer start/end) are character offsets into this text.

Use it to read the context around an answer before quoting or summarising it.
Example: get_document(id="{EXAMPLE_ID}")"""

LIST_DOCUMENTS = """List the indexed documents, ordered by id, one page at a time: id, title,
source, published date, url, language, tags and passage count, without the text; `total` counts
all documents.

Use it to see what the collection holds, or to find ids for ask's `documents` filter.
Example: list_documents(offset=0, limit=50)"""

ADD_DOCUMENT = """Add a news article (plain text) to the index, or replace the document with the
same id. It can be asked about as soon as this returns; the answer says whether it was added,
replaced, or already indexed unchanged, with its id and passage count.

Without an id, one is derived from the text (the same text always gets the same id); the title
defaults to the first line, the language is detected when not given. `published` is an ISO date or
datetime, `tags` a list of strings.
Example: add_document(text="...", title="...", source="Reuters", published="2019-01-31",
url="https://example.com/article", tags=["EU"])"""

REMOVE_DOCUMENT = f"""Remove a document and all its passages from the index, by id. It cannot be
undone except by adding the document again. Example: remove_document(id="{EXAMPLE_ID}")"""


def _version() -> str:
    try:
        return version("qa-arabic-news")
    except PackageNotFoundError:  # a source tree that was never installed
        return "0"


def build_server(
    service: Callable[[], SearchService],
    *,
    writes: bool,
    max_document_bytes: int | None = None,
) -> MCPServer:
    """The MCP server over `service()`; the write tools are there only when `writes` is true,
    so a host that may not write never sees them. `service` is called when a tool runs: the HTTP
    app's service is loaded after its routes are built."""
    # The SDK logs every stateless HTTP request at INFO ("Terminating session: None"); `qa serve`
    # has uvicorn's request log already, and over stdio the host's log needs no more than warnings.
    logging.getLogger("mcp").setLevel(logging.WARNING)
    tools = SearchTools(service, max_document_bytes=max_document_bytes)
    server: MCPServer = MCPServer(
        NAME,
        title="qa: question answering over Arabic news",
        instructions=INSTRUCTIONS if writes else INSTRUCTIONS + WRITES_OFF,
        version=_version(),
        log_level="WARNING",  # what the SDK sets up when nothing else configured logging (stdio)
    )
    reading = ToolAnnotations(read_only_hint=True, open_world_hint=False)
    server.add_tool(
        tools.ask,
        title="Ask the news",
        description=ASK,
        annotations=reading,
    )
    server.add_tool(
        tools.get_document,
        title="Read a document",
        description=GET_DOCUMENT,
        annotations=reading,
    )
    server.add_tool(
        tools.list_documents,
        title="List documents",
        description=LIST_DOCUMENTS,
        annotations=reading,
    )
    if writes:
        server.add_tool(
            tools.add_document,
            title="Add a document",
            description=ADD_DOCUMENT,
            # Adding the same text again changes nothing; a new text under an existing id replaces it.
            annotations=ToolAnnotations(read_only_hint=False, destructive_hint=True, open_world_hint=False),
        )
        server.add_tool(
            tools.remove_document,
            title="Remove a document",
            description=REMOVE_DOCUMENT,
            annotations=ToolAnnotations(
                read_only_hint=False, destructive_hint=True, idempotent_hint=False, open_world_hint=False
            ),
        )
    return server
