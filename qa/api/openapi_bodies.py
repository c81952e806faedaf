"""OpenAPI for the one route that reads its body by hand: POST /api/documents takes JSON or a file.

Litestar documents a request body from a handler's `data` type, which can name only one media
type; this operation class describes both.
"""

from __future__ import annotations

from dataclasses import dataclass

from litestar.openapi.spec import OpenAPIFormat, OpenAPIMediaType, OpenAPIType, Operation, RequestBody, Schema

from qa.api.validation import VISIBLE_CHARACTER
from qa.documents import MAX_ID_CHARS, UPLOAD_SUFFIXES

# The rules of `qa.documents` as a schema, so that clients (and the schema fuzzer) know which
# documents are accepted: text with something visible and no NUL (a NUL means binary data); an
# id of 1 to 200 characters without "/" or control characters, other than "." and "..".
_DOCUMENT_TEXT = Schema(
    type=OpenAPIType.STRING,
    description="The document's text (a JSON body up to 1 MiB): something visible, no NUL characters.",
    all_of=[Schema(pattern=VISIBLE_CHARACTER), Schema(pattern="^[^\\u0000]*$")],
)
_DOCUMENT_ID = Schema(
    type=[OpenAPIType.STRING, OpenAPIType.NULL],
    description="Document id; an existing id is replaced. Default (or null): derived from the text.",
    min_length=1,
    max_length=MAX_ID_CHARS,
    pattern="^[^/\\u0000-\\u001f\\u007f-\\u009f]*$",
    schema_not=Schema(enum=[".", ".."]),
)

_DOCUMENT_JSON = Schema(
    type=OpenAPIType.OBJECT,
    required=["text"],
    properties={
        "text": _DOCUMENT_TEXT,
        "id": _DOCUMENT_ID,
        "title": Schema(
            type=[OpenAPIType.STRING, OpenAPIType.NULL],
            description="Default (or null): the first line of the text.",
        ),
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
            description=f"A {', '.join(UPLOAD_SUFFIXES)} file (text files in UTF-8) up to the server's limit "
            "(QA_MAX_API_DOCUMENT_BYTES, 2 MiB by default); its name without suffix becomes the id.",
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
