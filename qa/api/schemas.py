"""Request and response bodies of the JSON API (answers reuse `qa.schema`, shared with the CLI)."""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

from qa.api.validation import VISIBLE_CHARACTER
from qa.index import StoredDocument
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


class AskRequest(msgspec.Struct):
    question: Question
    k: K = 5
    mode: Mode = None
    per_document: PerDocument = None
    raw: Raw = False


class AskRequestTypes(msgspec.Struct):
    """The JSON types AskRequest accepts, checked strictly before Litestar's lenient conversion
    (which would take "5" for 5). As in JSON Schema, 31.0 counts as an integer."""

    question: str
    k: int | float = 5
    mode: str | None = None
    per_document: int | float | None = None
    raw: bool = False


class DocumentIn(msgspec.Struct):
    """A document sent as JSON text; without an id, the id is derived from the text."""

    text: str
    id: str | None = None
    title: str | None = None
    source: str = "api"


class DocumentSummary(msgspec.Struct):
    id: str
    title: str
    source: str
    passages: int

    @classmethod
    def of(cls, document: StoredDocument) -> DocumentSummary:
        return cls(document.id, document.title, document.source, document.passages)


class DocumentDetail(msgspec.Struct):
    id: str
    title: str
    source: str
    passages: int
    text: str

    @classmethod
    def of(cls, document: StoredDocument) -> DocumentDetail:
        return cls(document.id, document.title, document.source, document.passages, document.text)


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
