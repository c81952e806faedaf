"""What the MCP tools return as structured content, and the JSON Schemas they advertise for it.

Answers are `qa.schema.AskResponse`, the shape of `POST /api/ask` and `qa ask --json`. Documents
carry the citation fields of `qa.schema.DocumentRef` (which they extend) besides their passage
count, so a host can cite a document it only listed or read.
"""

from __future__ import annotations

from typing import Any, Literal

import msgspec
from pydantic import BaseModel, ConfigDict

from qa.index import StoredDocument
from qa.schema import DocumentRef
from qa.search import document_ref


class DocumentInfo(DocumentRef, kw_only=True):
    """A document's citation fields and how many passages it was cut into."""

    passages: int

    @classmethod
    def of(cls, document: StoredDocument) -> DocumentInfo:
        return cls(**msgspec.structs.asdict(document_ref(document)), passages=document.passages)


class DocumentText(DocumentInfo, kw_only=True):
    """A document with its full text; passage and answer offsets point into `text`."""

    text: str

    @classmethod
    def of(cls, document: StoredDocument) -> DocumentText:
        return cls(
            **msgspec.structs.asdict(document_ref(document)), passages=document.passages, text=document.text
        )


class DocumentList(msgspec.Struct):
    """One page of documents ordered by id; `total` counts them all."""

    total: int
    offset: int
    limit: int
    documents: list[DocumentInfo]


class DocumentWritten(msgspec.Struct):
    """What `add_document` did: `unchanged` when the same title, text and metadata were indexed."""

    status: Literal["added", "replaced", "unchanged"]
    document: DocumentInfo


class DocumentRemoved(msgspec.Struct):
    removed: str


def json_schema(struct: type[msgspec.Struct]) -> dict[str, Any]:
    """The JSON Schema of a msgspec struct with every `$ref` inlined: MCP wants an object schema
    at the root, and the SDK's pydantic machinery cannot follow refs into msgspec's `$defs`."""
    generated = msgspec.json.schema(struct)
    definitions = generated.get("$defs", {})

    def inline(node: Any) -> Any:
        if isinstance(node, dict):
            if "$ref" in node:
                return inline(definitions[node["$ref"].rsplit("/", 1)[1]])
            return {key: inline(value) for key, value in node.items()}
        if isinstance(node, list):
            return [inline(value) for value in node]
        return node

    return inline(generated)


def output_model(struct: type[msgspec.Struct]) -> type[BaseModel]:
    """A pydantic stand-in the SDK can derive a tool's `outputSchema` from, advertising the msgspec
    struct's own schema: the shapes are defined once, in msgspec, as the rest of the service does.
    It accepts any object: the tools build their structured content from the struct itself."""
    schema = json_schema(struct)

    class Output(BaseModel):
        model_config = ConfigDict(extra="allow")

        @classmethod
        def __get_pydantic_json_schema__(cls, core_schema: Any, handler: Any) -> dict[str, Any]:
            return schema

    Output.__name__ = Output.__qualname__ = struct.__name__
    return Output
