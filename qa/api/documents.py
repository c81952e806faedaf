"""`/api/documents`: list, read, add (JSON text or an uploaded file) and remove documents."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Annotated, Any

import anyio.to_thread
import msgspec
from litestar import Controller, Request, Response, delete, get, post
from litestar.datastructures import UploadFile
from litestar.di import NamedDependency
from litestar.exceptions import ClientException, HTTPException
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import FromPath, QueryParameter
from litestar.status_codes import (
    HTTP_200_OK,
    HTTP_201_CREATED,
    HTTP_413_REQUEST_ENTITY_TOO_LARGE,
    HTTP_415_UNSUPPORTED_MEDIA_TYPE,
)

from qa.api.memory import release_free_memory
from qa.api.openapi_bodies import AddDocumentOperation
from qa.api.responses import errors
from qa.api.schemas import DocumentDetail, DocumentIn, DocumentPage, DocumentSummary, DocumentWritten
from qa.api.security import require_write_token
from qa.api.settings import MAX_JSON_BYTES, MAX_MULTIPART_BYTES, ApiSettings
from qa.documents import UPLOAD_SUFFIXES, Document, document_from_text, document_from_upload
from qa.errors import NotFoundError
from qa.ingest import add_document, remove_document
from qa.metadata import parse_metadata
from qa.search import SearchService

MAX_PAGE = 500
MAX_OFFSET = 2**53  # SQLite integers are 64-bit; larger offsets would fail inside the query
_BEARER: list[dict[str, list[str]]] = [{"bearer": []}]
# Room for the multipart boundary and part headers around an uploaded file.
_MULTIPART_FRAMING = 64 * 1024


def _mib(size: int) -> str:
    return f"{size / 1024 / 1024:.1f} MiB"


def _too_large(detail: str) -> HTTPException:
    return HTTPException(status_code=HTTP_413_REQUEST_ENTITY_TOO_LARGE, detail=detail)


def _document_too_large(what: str, settings: ApiSettings) -> HTTPException:
    return _too_large(
        f"{what} is larger than the {_mib(settings.max_document_bytes)} limit for documents sent over "
        "HTTP (QA_MAX_API_DOCUMENT_BYTES): encoding it would keep the server busy for minutes. "
        "Add it on the server with: qa ingest FILE"
    )


async def _read_json_body(request: Request) -> bytes:
    """The body, refused with 413 as soon as it passes MAX_JSON_BYTES (this route allows uploads
    of several MiB, so Litestar's own limit is too loose for JSON)."""
    too_large = _too_large(
        f"the JSON body is larger than the {_mib(MAX_JSON_BYTES)} limit; upload a larger document as "
        "a file (multipart/form-data) or add it on the server with: qa ingest FILE"
    )
    if (request.content_length or 0) > MAX_JSON_BYTES:
        raise too_large
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_JSON_BYTES:
            raise too_large
        chunks.append(chunk)
    return b"".join(chunks)


async def _json_document(request: Request, settings: ApiSettings) -> Callable[[], Document]:
    body = await _read_json_body(request)
    try:
        sent = msgspec.json.decode(body, type=DocumentIn)
    except msgspec.ValidationError as exc:
        raise ClientException(detail=f"invalid document: {exc}") from None
    except msgspec.DecodeError as exc:
        raise ClientException(detail=f"malformed JSON: {exc}") from None
    if len(sent.text.encode("utf-8", "surrogatepass")) > settings.max_document_bytes:
        raise _document_too_large("the document's text", settings)
    return partial(_document_of, sent)


def _document_of(sent: DocumentIn) -> Document:
    meta = parse_metadata(
        published=sent.published, lang=sent.lang, url=sent.url, author=sent.author, tags=sent.tags
    )
    return document_from_text(sent.text, id=sent.id, title=sent.title, source=sent.source, meta=meta)


async def _uploaded_document(request: Request, settings: ApiSettings) -> Callable[[], Document]:
    # Refused from its declared size before the multipart body is parsed at all.
    if (request.content_length or 0) > settings.max_document_bytes + _MULTIPART_FRAMING:
        raise _document_too_large("the uploaded file", settings)
    form = await request.form()
    upload = form.get("file")
    if not isinstance(upload, UploadFile):
        raise ClientException(detail="no file: send it in a multipart/form-data field named 'file'")
    try:
        data = await upload.read(settings.max_document_bytes + 1)
    finally:
        await upload.close()
    if len(data) > settings.max_document_bytes:
        raise _document_too_large(f"the file {upload.filename!r}", settings)
    # The file name only picks the type and the default id; it is never used as a path.
    return partial(document_from_upload, upload.filename, data)


async def _received_document(request: Request, settings: ApiSettings) -> Callable[[], Document]:
    """Read the body on the event loop; the returned call parses it (in a worker thread)."""
    media_type, _ = request.content_type
    if media_type == "application/json":
        return await _json_document(request, settings)
    if media_type == "multipart/form-data":
        return await _uploaded_document(request, settings)
    raise HTTPException(
        status_code=HTTP_415_UNSUPPORTED_MEDIA_TYPE,
        detail=f"unsupported content type {media_type or '(none)'!r}: send application/json "
        '{"text": ..., "id"?, "title"?, "source"?, "published"?, "lang"?, "url"?, "author"?, "tags"?} '
        "or multipart/form-data with a file in the field 'file'",
    )


def _index_document(service: SearchService, build: Callable[[], Document]) -> DocumentWritten:
    document = build()
    try:
        status, stored = add_document(service.index, service.encoder, document)
    finally:
        release_free_memory()  # the encoder's temporary tensors, kept by malloc otherwise
    return DocumentWritten(status, DocumentSummary.of(stored))


class DocumentController(Controller):
    path = "/api/documents"
    tags = ("documents",)

    @get(
        summary="List documents",
        description="Documents ordered by id, without their text; page with `offset` and `limit`.",
        operation_id="listDocuments",
        responses=errors(400, 429),
        sync_to_thread=True,
    )
    def list_documents(
        self,
        service: NamedDependency[SearchService],
        offset: Annotated[
            int, QueryParameter(ge=0, le=MAX_OFFSET, description="How many documents to skip.")
        ] = 0,
        limit: Annotated[
            int, QueryParameter(ge=1, le=MAX_PAGE, description=f"Page size (1 to {MAX_PAGE}).")
        ] = 50,
    ) -> DocumentPage:
        with service.index.view() as view:  # one view: the total and the page agree
            return DocumentPage(
                total=view.count_documents(),
                offset=offset,
                limit=limit,
                documents=[DocumentSummary.of(d) for d in view.list_documents(offset, limit)],
            )

    @get(
        "/{document_id:str}",
        summary="Get a document",
        description="One document with its full text (passage offsets point into it).",
        operation_id="getDocument",
        responses=errors(400, 404, 429),
        sync_to_thread=True,
    )
    def get_document(
        self, document_id: FromPath[str], service: NamedDependency[SearchService]
    ) -> DocumentDetail:
        with service.index.view() as view:
            document = view.document(document_id)
        if document is None:
            raise NotFoundError(f"no document with id {document_id!r} in the index")
        return DocumentDetail.of(document)

    @post(
        summary="Add or replace a document",
        description="JSON `{text, id?, title?, source?}` (a body up to 1 MiB) or a multipart upload in "
        f"the field `file` ({', '.join(UPLOAD_SUFFIXES)}). A document over the server's limit "
        "(QA_MAX_API_DOCUMENT_BYTES, 2 MiB by default) is refused with 413: add it with `qa ingest`. "
        "An existing id is replaced; answers 201 when added, 200 when replaced or unchanged. "
        "Needs the bearer token.",
        operation_id="addDocument",
        guards=[require_write_token],
        security=_BEARER,
        operation_class=AddDocumentOperation,
        request_max_body_size=MAX_MULTIPART_BYTES,
        status_code=HTTP_201_CREATED,
        responses={
            HTTP_200_OK: ResponseSpec(
                data_container=DocumentWritten,
                description="Replaced, or unchanged (the same title and text were already indexed).",
                generate_examples=False,
            ),
            **errors(400, 401, 403, 413, 415, 429, 503, 507),
        },
    )
    async def add_document(
        self,
        request: Request[Any, Any, Any],
        service: NamedDependency[SearchService],
        settings: NamedDependency[ApiSettings],
    ) -> Response[DocumentWritten]:
        build = await _received_document(request, settings)
        # Chunking and embedding take seconds of CPU: off the event loop.
        written = await anyio.to_thread.run_sync(_index_document, service, build)
        return Response(written, status_code=HTTP_201_CREATED if written.status == "added" else HTTP_200_OK)

    @delete(
        "/{document_id:str}",
        summary="Remove a document",
        description="Its passages leave every index at once. Needs the bearer token.",
        operation_id="deleteDocument",
        guards=[require_write_token],
        security=_BEARER,
        responses=errors(400, 401, 403, 404, 429, 503, 507),
        sync_to_thread=True,
    )
    def delete_document(self, document_id: FromPath[str], service: NamedDependency[SearchService]) -> None:
        remove_document(service.index, document_id)
