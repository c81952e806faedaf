"""OpenAPI beyond what Litestar infers: POST /api/documents takes JSON or a file (Litestar
documents a request body from a handler's `data` type, which can name only one media type; the
operation class describes both), and closed objects (structs that refuse unknown fields).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from litestar._openapi.schema_generation.plugins.struct import StructSchemaPlugin
from litestar.openapi.spec import OpenAPIFormat, OpenAPIMediaType, OpenAPIType, Operation, RequestBody, Schema
from litestar.typing import FieldDefinition

from qa.api.validation import VISIBLE_CHARACTER
from qa.documents import MAX_ID_CHARS, UPLOAD_SUFFIXES

if TYPE_CHECKING:
    from litestar._openapi.schema_generation import SchemaCreator

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


class ClosedStructSchemaPlugin(StructSchemaPlugin):
    """Documents a msgspec Struct declared with `forbid_unknown_fields` as what it is, an object
    with no other properties (`additionalProperties: false`): clients learn that a misspelt
    filter key is refused, and the schema fuzzer sends such keys expecting the 400."""

    def is_plugin_supported_field(self, field_definition: FieldDefinition) -> bool:
        return super().is_plugin_supported_field(field_definition) and bool(
            field_definition.type_.__struct_config__.forbid_unknown_fields
        )

    def to_openapi_schema(self, field_definition: FieldDefinition, schema_creator: SchemaCreator) -> Schema:
        schema = super().to_openapi_schema(field_definition, schema_creator)
        schema.additional_properties = False
        return schema
