"""OpenAPI for the one route that reads its body by hand: POST /api/documents takes JSON or a file.

Litestar documents a request body from a handler's `data` type, which can name only one media
type; this operation class describes both.
"""

from __future__ import annotations

from dataclasses import dataclass

from litestar.openapi.spec import OpenAPIFormat, OpenAPIMediaType, OpenAPIType, Operation, RequestBody, Schema

from qa.documents import SUPPORTED_SUFFIXES

_UPLOAD_SUFFIXES = ", ".join(s for s in SUPPORTED_SUFFIXES if s != ".jsonl")

_DOCUMENT_JSON = Schema(
    type=OpenAPIType.OBJECT,
    required=["text"],
    properties={
        "text": Schema(type=OpenAPIType.STRING, description="The document's text (up to 1 MiB of JSON)."),
        "id": Schema(
            type=OpenAPIType.STRING,
            description="Document id; an existing id is replaced. Default: derived from the text.",
        ),
        "title": Schema(type=OpenAPIType.STRING, description="Default: the first line of the text."),
        "source": Schema(type=OpenAPIType.STRING, description="Where it comes from (a URL).", default="api"),
    },
)

_DOCUMENT_FILE = Schema(
    type=OpenAPIType.OBJECT,
    required=["file"],
    properties={
        "file": Schema(
            type=OpenAPIType.STRING,
            format=OpenAPIFormat.BINARY,
            description=f"A {_UPLOAD_SUFFIXES} file up to 20 MiB; its name without suffix becomes the id.",
        )
    },
)


@dataclass
class AddDocumentOperation(Operation):
    def __post_init__(self) -> None:
        self.request_body = RequestBody(
            required=True,
            content={
                "application/json": OpenAPIMediaType(schema=_DOCUMENT_JSON),
                "multipart/form-data": OpenAPIMediaType(schema=_DOCUMENT_FILE),
            },
        )
