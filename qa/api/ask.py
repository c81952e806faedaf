"""`/api/ask`: questions in, ranked passages with their answer sentence out."""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, get, post
from litestar.di import NamedDependency
from litestar.params import JSONBody, QueryParameter

from qa.api.responses import errors
from qa.api.schemas import (
    DATE_SCHEMA,
    FILTER_LIST_SCHEMA,
    K_SCHEMA,
    LANG_LIST_SCHEMA,
    MODE_SCHEMA,
    PER_DOCUMENT_HELP,
    PER_DOCUMENT_SCHEMA,
    QUESTION_SCHEMA,
    RAW_HELP,
    AskRequest,
    AskRequestTypes,
)
from qa.api.validation import refuse_unknown_parameters, strict_json_body
from qa.filters import FILTER_KEYS, filter_from_options
from qa.schema import AskResponse
from qa.search import MAX_K, MAX_QUESTION_CHARS, MODES, SearchService

# Every query parameter GET /api/ask reads: the filter's keys beside the question's options.
ASK_GET_PARAMETERS = ("q", "k", "mode", "per_document", "raw", *FILTER_KEYS)


class AskController(Controller):
    path = "/api/ask"
    tags = ("ask",)

    # Sync handlers run in a worker thread (sync_to_thread): encoding a question takes milliseconds
    # of CPU (docs/benchmarks.md) and must not stall the event loop that serves every other request.
    @post(
        summary="Ask a question",
        description="Returns the passages that answer the question, best first, each with the "
        "sentence that answers it. Same shape as `qa ask --json`.",
        operation_id="ask",
        status_code=200,
        responses=errors(400, 413, 429, 503),
        before_request=strict_json_body(AskRequestTypes),
        sync_to_thread=True,
    )
    def ask(self, data: JSONBody[AskRequest], service: NamedDependency[SearchService]) -> AskResponse:
        return service.ask(
            data.question,
            k=data.k,
            mode=data.mode,
            per_document=data.per_document,
            raw=data.raw,
            filter=data.filter.parsed() if data.filter else None,
        )

    @get(
        summary="Ask a question (query string)",
        description="The same as POST /api/ask, for links and quick tests: "
        "`?q=...&k=5&mode=hybrid&per_document=1&raw=false`. The filter's keys are query parameters "
        "(`&sources=Reuters&sources=AFP&published_after=2019-01-01`); repeat a key for several values. "
        "Unknown parameters are refused.",
        operation_id="askGet",
        responses=errors(400, 429, 503),
        sync_to_thread=True,
        before_request=refuse_unknown_parameters(ASK_GET_PARAMETERS),
    )
    def ask_get(
        self,
        service: NamedDependency[SearchService],
        q: Annotated[
            str,
            QueryParameter(
                description=f"The question (1 to {MAX_QUESTION_CHARS} characters).",
                schema_extra=QUESTION_SCHEMA,
            ),
        ],
        k: Annotated[
            int, QueryParameter(description=f"How many passages (1 to {MAX_K}).", schema_extra=K_SCHEMA)
        ] = 5,
        mode: Annotated[
            str | None, QueryParameter(description=f"One of {', '.join(MODES)}.", schema_extra=MODE_SCHEMA)
        ] = None,
        per_document: Annotated[
            int | None, QueryParameter(description=PER_DOCUMENT_HELP, schema_extra=PER_DOCUMENT_SCHEMA)
        ] = None,
        raw: Annotated[bool, QueryParameter(description=RAW_HELP)] = False,
        documents: Annotated[
            list[str] | None,
            QueryParameter(description="Only these document ids.", schema_extra=FILTER_LIST_SCHEMA),
        ] = None,
        sources: Annotated[
            list[str] | None,
            QueryParameter(description="Only these sources.", schema_extra=FILTER_LIST_SCHEMA),
        ] = None,
        tags: Annotated[
            list[str] | None,
            QueryParameter(description="Documents with any of these tags.", schema_extra=FILTER_LIST_SCHEMA),
        ] = None,
        lang: Annotated[
            list[str] | None,
            QueryParameter(description="Only these languages (ar, en, ...).", schema_extra=LANG_LIST_SCHEMA),
        ] = None,
        published_after: Annotated[
            str | None,
            QueryParameter(
                description="Published on or after (ISO 8601 date or datetime).", schema_extra=DATE_SCHEMA
            ),
        ] = None,
        published_before: Annotated[
            str | None,
            QueryParameter(
                description="Published before (ISO 8601 date or datetime).", schema_extra=DATE_SCHEMA
            ),
        ] = None,
    ) -> AskResponse:
        within = filter_from_options(
            documents=documents,
            sources=sources,
            tags=tags,
            lang=lang,
            published_after=published_after,
            published_before=published_before,
        )
        return service.ask(q, k=k, mode=mode, per_document=per_document, raw=raw, filter=within)
