"""Request and response bodies of the JSON API (answers reuse `qa.schema`, shared with the CLI)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec
from litestar.openapi.spec import OpenAPIFormat, OpenAPIType, Schema

from qa.api.validation import VISIBLE_CHARACTER
from qa.filters import FILTER_HELP, MAX_FILTER_VALUES, SearchFilter, parse_filter
from qa.index import StoredDocument
from qa.metadata import LANGUAGE_CODE_PATTERN
from qa.search import MAX_K, MAX_QUESTION_CHARS, MODES

# Ranges are documented here (the "extra" entries only shape the OpenAPI schema) and enforced by
# `SearchService`, the one place that validates a question, so the API, the web form and the CLI
# refuse the same input with the same words.
QUESTION_SCHEMA = {"min_length": 1, "max_length": MAX_QUESTION_CHARS, "pattern": VISIBLE_CHARACTER}
K_SCHEMA = {"minimum": 1, "maximum": MAX_K}
MODE_SCHEMA = {"enum": [*MODES, "", None]}  # empty or null: the default
PER_DOCUMENT_SCHEMA = {"minimum": 1, "maximum": MAX_K}
PER_DOCUMENT_HELP = (
    f"At most this many passages of one document (1 to {MAX_K}; default: no cap). Overlapping "
    "passages of one document are never shown together unless `raw` is true."
)
RAW_HELP = "Return the ranking as it is: overlapping passages of one document and no per-document cap."

Question = Annotated[
    str,
    msgspec.Meta(
        description=f"The question, in any language (1 to {MAX_QUESTION_CHARS} characters, "
        "something visible among them).",
        extra_json_schema={"extra": QUESTION_SCHEMA},
    ),
]
K = Annotated[
    int,
    msgspec.Meta(
        description=f"How many passages to return (1 to {MAX_K}).", extra_json_schema={"extra": K_SCHEMA}
    ),
]
Mode = Annotated[
    str | None,
    msgspec.Meta(
        description=f"Ranking method: {', '.join(MODES)} (default {MODES[0]}).",
        extra_json_schema={"extra": MODE_SCHEMA},
    ),
]


PerDocument = Annotated[
    int | None,
    msgspec.Meta(description=PER_DOCUMENT_HELP, extra_json_schema={"extra": PER_DOCUMENT_SCHEMA}),
]
Raw = Annotated[bool, msgspec.Meta(description=RAW_HELP)]


# The filter's values as the OpenAPI document states them (the service checks them the same way):
# something visible in each value, dates as ISO 8601 dates or datetimes, language codes.
FILTER_VALUE_SCHEMA = Schema(type=OpenAPIType.STRING, pattern=VISIBLE_CHARACTER)
FILTER_LIST_SCHEMA = {"items": FILTER_VALUE_SCHEMA, "min_items": 1, "max_items": MAX_FILTER_VALUES}
DATE_SCHEMA = {
    "type": None,
    # Formats constrain strings only, so null (no bound) passes either.
    "any_of": [Schema(format=OpenAPIFormat.DATE), Schema(format=OpenAPIFormat.DATE_TIME)],
}
LANGUAGE_CODE_SCHEMA = Schema(type=OpenAPIType.STRING, pattern=LANGUAGE_CODE_PATTERN)
LANG_LIST_SCHEMA = {"items": LANGUAGE_CODE_SCHEMA, "min_items": 1, "max_items": MAX_FILTER_VALUES}


def _filter_field(kind: object, description: str, extra: dict[str, object]) -> object:
    return Annotated[kind | None, msgspec.Meta(description=description, extra_json_schema={"extra": extra})]


class FilterIn(msgspec.Struct, forbid_unknown_fields=True):
    """Which documents may answer: every given key must match; a list matches any of its values."""

    documents: _filter_field(list[str], "Document ids.", FILTER_LIST_SCHEMA) = None  # type: ignore[valid-type]
    sources: _filter_field(list[str], "Sources, as documents give them.", FILTER_LIST_SCHEMA) = None  # type: ignore[valid-type]
    tags: _filter_field(list[str], "Documents with any of these tags.", FILTER_LIST_SCHEMA) = None  # type: ignore[valid-type]
    lang: _filter_field(list[str], "Language codes (ar, en, ...).", LANG_LIST_SCHEMA) = None  # type: ignore[valid-type]
    published_after: _filter_field(
        str, "On or after (inclusive); an ISO 8601 date or datetime.", DATE_SCHEMA
    ) = None  # type: ignore[valid-type]
    published_before: _filter_field(str, "Before (exclusive); an ISO 8601 date or datetime.", DATE_SCHEMA) = (
        None  # type: ignore[valid-type]
    )

    def parsed(self) -> SearchFilter | None:
        """The filter the search service takes; QuestionError (400) for bad dates or values."""
        return parse_filter(
            {key: value for key, value in msgspec.structs.asdict(self).items() if value is not None}
        )


class AskRequest(msgspec.Struct):
    question: Question
    k: K = 5
    mode: Mode = None
    per_document: PerDocument = None
    raw: Raw = False
    filter: Annotated[FilterIn | None, msgspec.Meta(description=FILTER_HELP)] = None


class AskRequestTypes(msgspec.Struct):
    """The JSON types AskRequest accepts, checked strictly before Litestar's lenient conversion
    (which would take "5" for 5). As in JSON Schema, 31.0 counts as an integer. Unknown filter
    keys are refused here: a misspelt key must not quietly widen the search."""

    question: str
    k: int | float = 5
    mode: str | None = None
    per_document: int | float | None = None
    raw: bool = False
    filter: FilterIn | None = None


class DocumentIn(msgspec.Struct):
    """A document sent as JSON text; without an id, the id is derived from the text. Metadata
    is optional: `published` an ISO 8601 date or datetime, `lang` a language code (detected from
    the text when absent), `tags` a list of strings."""

    text: str
    id: str | None = None
    title: str | None = None
    source: str = "api"
    published: str | None = None
    lang: str | None = None
    url: str | None = None
    author: str | None = None
    tags: str | list[str] | None = None  # one tag may be sent as a string


class DocumentSummary(msgspec.Struct):
    id: str
    title: str
    source: str
    passages: int
    published: str | None = None
    lang: str | None = None
    url: str | None = None
    author: str | None = None
    tags: list[str] = msgspec.field(default_factory=list)

    @classmethod
    def of(cls, document: StoredDocument) -> DocumentSummary:
        return cls(document.id, document.title, document.source, document.passages, **_metadata(document))


class DocumentDetail(msgspec.Struct):
    id: str
    title: str
    source: str
    passages: int
    text: str
    published: str | None = None
    lang: str | None = None
    url: str | None = None
    author: str | None = None
    tags: list[str] = msgspec.field(default_factory=list)

    @classmethod
    def of(cls, document: StoredDocument) -> DocumentDetail:
        return cls(
            document.id,
            document.title,
            document.source,
            document.passages,
            document.text,
            **_metadata(document),
        )


def _metadata(document: StoredDocument) -> dict[str, Any]:
    meta = document.meta
    return {
        "published": meta.published,
        "lang": meta.lang,
        "url": meta.url,
        "author": meta.author,
        "tags": list(meta.tags),
    }


class DocumentPage(msgspec.Struct):
    total: int
    offset: int
    limit: int
    documents: list[DocumentSummary]


class DocumentWritten(msgspec.Struct):
    """What a POST did: `unchanged` when the same title and text were already indexed."""

    status: Literal["added", "replaced", "unchanged"]
    document: DocumentSummary


class Health(msgspec.Struct):
    status: Literal["ok"]
    model: str
    dimension: int
    documents: int
    passages: int
    version: int  # of the index: grows with every write, from any process
    writes_enabled: bool
