"""The MCP tools: a thin shell over `SearchService`, checking arguments as the HTTP API does.

Every tool returns a `CallToolResult` it builds itself: on success the structured content (the
shapes of `qa.mcp.shapes`) with a readable rendering of it as text; on a domain error an error
result (`isError`) whose text is the error's message, word for word what the HTTP API puts in
`detail`. Raising instead would make the SDK prefix "Error executing tool ..." to it. Anything
unexpected is left to the SDK, which logs it and tells the client no more than the tool's name.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

import msgspec
from mcp_types import CallToolResult, TextContent
from pydantic import Field, WithJsonSchema

from qa.api.documents import MAX_OFFSET, MAX_PAGE
from qa.api.memory import release_free_memory
from qa.documents import document_from_text
from qa.errors import NotFoundError, QAError
from qa.filters import FILTER_HELP, FILTER_KEYS, parse_filter
from qa.ingest import add_document, remove_document
from qa.mcp.shapes import (
    DocumentInfo,
    DocumentList,
    DocumentRemoved,
    DocumentText,
    DocumentWritten,
    output_model,
)
from qa.metadata import parse_metadata
from qa.schema import AskResponse, DocumentRef
from qa.search import MAX_K, MAX_QUESTION_CHARS, MODES, SearchService, validate_k

EXAMPLE_ID = "002_b8689e71eb8b336f"
DEFAULT_SOURCE = "mcp"

# ---------------------------------------------------------------------------------------------
# Arguments. The JSON Schemas are written out: they are what a model reads to call a tool well.
# Validation stays with the service's own checks (lax types here), so a bad value gets the
# message the HTTP API gives, not pydantic's.

_STRINGS = {"anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]}
FILTER_SCHEMA = {
    "type": ["object", "null"],
    "properties": {
        "documents": {**_STRINGS, "description": "Document ids (from list_documents or earlier answers)."},
        "sources": {**_STRINGS, "description": "Source names, as documents report them."},
        "tags": {**_STRINGS, "description": "Tags; a document with any of them matches."},
        "lang": {**_STRINGS, "description": "Language codes such as 'ar' or 'en'."},
        "published_after": {"type": "string", "description": "ISO date or datetime, inclusive."},
        "published_before": {"type": "string", "description": "ISO date or datetime, exclusive."},
    },
    "additionalProperties": False,
    "default": None,
}
Question = Annotated[
    str,
    Field(
        description=f"The question in the user's words, in any language (up to {MAX_QUESTION_CHARS} "
        "characters), e.g. 'who met Jeffrey in Brussels' or 'من التقى جيفري في بروكسل'."
    ),
]
K = Annotated[
    int,
    WithJsonSchema({"type": "integer", "minimum": 1, "maximum": MAX_K, "default": 5}),
    Field(description=f"How many passages to return, best first (1 to {MAX_K})."),
]
Filter = Annotated[
    dict[str, Any] | None,
    WithJsonSchema(FILTER_SCHEMA),
    Field(
        description=f"Optional. {FILTER_HELP} Keys: {', '.join(FILTER_KEYS)}. Example: "
        f'{{"sources": ["Reuters"], "published_after": "2019-01-01"}} or {{"documents": ["{EXAMPLE_ID}"]}}.'
    ),
]
Mode = Annotated[
    str | None,
    WithJsonSchema({"type": ["string", "null"], "enum": [*MODES, None], "default": None}),
    Field(
        description="Optional ranking method: hybrid (default: meaning and words), dense (meaning "
        "only) or lexical (words only, for exact names and numbers)."
    ),
]
DocumentId = Annotated[str, Field(description=f"A document id, e.g. '{EXAMPLE_ID}'.")]
Offset = Annotated[
    int,
    WithJsonSchema({"type": "integer", "minimum": 0, "default": 0}),
    Field(description="How many documents to skip."),
]
Limit = Annotated[
    int,
    WithJsonSchema({"type": "integer", "minimum": 1, "maximum": MAX_PAGE, "default": 50}),
    Field(description=f"Page size (1 to {MAX_PAGE})."),
]
Text = Annotated[str, Field(description="The article's plain text, exactly as it should be quoted.")]
OptionalText = Annotated[str | None, Field(description="Optional.")]
NewId = Annotated[
    str | None,
    Field(description="Optional id; an existing id is replaced. Default: derived from the text."),
]
Title = Annotated[str | None, Field(description="Optional title; default: the text's first line.")]
Source = Annotated[
    str | None, Field(description=f"Optional source name (publisher or feed); default '{DEFAULT_SOURCE}'.")
]
Published = Annotated[
    str | None, Field(description="Optional publication date: ISO date or datetime, e.g. '2019-01-31'.")
]
Url = Annotated[str | None, Field(description="Optional URL of the original article.")]
Lang = Annotated[str | None, Field(description="Optional language code, e.g. 'ar'; detected when not given.")]
Tags = Annotated[list[str] | None, Field(description="Optional tags, e.g. ['politics', 'EU'].")]
Author = Annotated[str | None, Field(description="Optional author.")]


# ---------------------------------------------------------------------------------------------
# Results. A return annotation Annotated[CallToolResult, X] is how the SDK learns a tool's
# outputSchema (from X) while the tool builds its CallToolResult itself.

AskOutput = output_model(AskResponse)
DocumentTextOutput = output_model(DocumentText)
DocumentListOutput = output_model(DocumentList)
WrittenOutput = output_model(DocumentWritten)
RemovedOutput = output_model(DocumentRemoved)


def _result(shape: msgspec.Struct, text: str) -> CallToolResult:
    return CallToolResult(
        content=[TextContent(type="text", text=text)], structured_content=msgspec.to_builtins(shape)
    )


def _error(message: str) -> CallToolResult:
    return CallToolResult(content=[TextContent(type="text", text=message)], is_error=True)


def _passages(count: int) -> str:
    return f"{count} passage{'' if count == 1 else 's'}"


def _citation(document: DocumentRef) -> str:
    """One line naming a document the way a citation would."""
    details = [document.source, document.published, document.lang, document.url]
    shown = " · ".join(item for item in details if item)
    tags = f" · tags: {', '.join(document.tags)}" if document.tags else ""
    return f"«{document.title}» — {shown}{tags} (document {document.id})"


def render_answer(response: AskResponse) -> str:
    if not response.passages:
        return f"No passages found for: {response.question}"
    lines = [f"{_passages(len(response.passages))} for: {response.question} (best first)"]
    for hit in response.passages:
        lines += [
            "",
            f"[{hit.rank}] {_citation(hit.document)}",
            f"    passage: characters {hit.start}-{hit.end} of the document; score {hit.score:.4f}",
            f"    answer (characters {hit.answer.start}-{hit.answer.end}): {hit.answer.text}",
            "    " + hit.text.replace("\n", "\n    "),
        ]
    return "\n".join(lines)


def render_document(document: DocumentText) -> str:
    return f"{_citation(document)}, {_passages(document.passages)}\n\n{document.text}"


def render_page(page: DocumentList) -> str:
    first = page.offset + 1 if page.documents else page.offset
    lines = [f"Documents {first}-{page.offset + len(page.documents)} of {page.total}, ordered by id:"]
    lines += [f"- {_citation(d)}, {_passages(d.passages)}" for d in page.documents]
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# The tools


def _whole_number(value: int, name: str, low: int, high: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise QAError(f"{name} must be a whole number from {low} to {high}, not {value!r}")
    return value


def _mib(size: int) -> str:
    return f"{size / 1024 / 1024:.1f} MiB"


class SearchTools:
    """The tools over one search service, which `service()` returns when a tool runs (the HTTP
    app registers its routes before its lifespan loads the service).

    `max_document_bytes` bounds the text `add_document` accepts, as QA_MAX_API_DOCUMENT_BYTES
    does over HTTP; None leaves `qa ingest`'s own limit for files.
    """

    def __init__(
        self, service: Callable[[], SearchService], *, max_document_bytes: int | None = None
    ) -> None:
        self._service = service
        self._max_document_bytes = max_document_bytes

    def ask(
        self, question: Question, k: K = 5, filter: Filter = None, mode: Mode = None
    ) -> Annotated[CallToolResult, AskOutput]:
        try:
            response = self._service().ask(question, k=validate_k(k), mode=mode, filter=parse_filter(filter))
        except QAError as exc:
            return _error(str(exc))
        return _result(response, render_answer(response))

    def get_document(self, id: DocumentId) -> Annotated[CallToolResult, DocumentTextOutput]:
        try:
            with self._service().index.view() as view:
                stored = view.document(id)
            if stored is None:
                raise NotFoundError(f"no document with id {id!r} in the index")
        except QAError as exc:
            return _error(str(exc))
        document = DocumentText.of(stored)
        return _result(document, render_document(document))

    def list_documents(
        self, offset: Offset = 0, limit: Limit = 50
    ) -> Annotated[CallToolResult, DocumentListOutput]:
        try:
            _whole_number(offset, "offset", 0, MAX_OFFSET)
            _whole_number(limit, "limit", 1, MAX_PAGE)
            with self._service().index.view() as view:  # one view: the total and the page agree
                page = DocumentList(
                    total=view.count_documents(),
                    offset=offset,
                    limit=limit,
                    documents=[DocumentInfo.of(d) for d in view.list_documents(offset, limit)],
                )
        except QAError as exc:
            return _error(str(exc))
        return _result(page, render_page(page))

    def add_document(
        self,
        text: Text,
        id: NewId = None,
        title: Title = None,
        source: Source = None,
        published: Published = None,
        url: Url = None,
        lang: Lang = None,
        tags: Tags = None,
        author: Author = None,
    ) -> Annotated[CallToolResult, WrittenOutput]:
        try:
            written = self._add(text, id, title, source, published, url, lang, tags, author)
        except QAError as exc:
            return _error(str(exc))
        action = {"added": "Added", "replaced": "Replaced", "unchanged": "Already indexed, unchanged:"}
        return _result(
            written,
            f"{action[written.status]} {_citation(written.document)}, {_passages(written.document.passages)}",
        )

    def _add(
        self,
        text: str,
        id: str | None,
        title: str | None,
        source: str | None,
        published: str | None,
        url: str | None,
        lang: str | None,
        tags: list[str] | None,
        author: str | None,
    ) -> DocumentWritten:
        limit = self._max_document_bytes
        if limit is not None and len(text.encode("utf-8", "surrogatepass")) > limit:
            # The API's words (qa/api/documents.py) for the same limit.
            raise QAError(
                f"the document's text is larger than the {_mib(limit)} limit for documents sent over "
                "HTTP (QA_MAX_API_DOCUMENT_BYTES): encoding it would keep the server busy for minutes. "
                "Add it on the server with: qa ingest FILE"
            )
        meta = parse_metadata(published=published, lang=lang, url=url, author=author, tags=tags)
        document = document_from_text(text, id=id, title=title, source=source or DEFAULT_SOURCE, meta=meta)
        service = self._service()
        try:
            status, stored = add_document(service.index, service.encoder, document)
        finally:
            release_free_memory()  # the encoder's temporary tensors, kept by malloc otherwise
        written = DocumentInfo.of(stored)
        return DocumentWritten(status, written)

    def remove_document(self, id: DocumentId) -> Annotated[CallToolResult, RemovedOutput]:
        try:
            remove_document(self._service().index, id)
        except QAError as exc:
            return _error(str(exc))
        return _result(DocumentRemoved(id), f"Removed document {id} and its passages from the index.")
