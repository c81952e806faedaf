"""The one place where errors become HTTP responses: always JSON `{"status_code", "detail"}`.

Domain errors carry messages written for users (see `qa.errors`), so they are passed on as the
`detail` unchanged; only the status code is chosen here.
"""

from __future__ import annotations

import logging
from typing import Any

from litestar import MediaType, Request, Response
from litestar.exceptions import HTTPException, ValidationException
from litestar.exceptions.http_exceptions import RequestEntityTooLarge
from litestar.status_codes import HTTP_500_INTERNAL_SERVER_ERROR
from litestar.types import ExceptionHandlersMap

from embeddings.errors import ModelError
from qa.errors import (
    DocumentError,
    IndexStateError,
    NotFoundError,
    QAError,
    QuestionError,
    StorageError,
    UnsupportedTypeError,
)

logger = logging.getLogger("qa.api")

# Checked in order, so a subclass comes before its base.
_DOMAIN_STATUS: dict[type[Exception], int] = {
    QuestionError: 400,
    UnsupportedTypeError: 415,
    DocumentError: 400,
    NotFoundError: 404,
    # The index or the model is broken on the server's side: nothing the client can fix.
    IndexStateError: 503,
    ModelError: 503,
}
HTTP_507_INSUFFICIENT_STORAGE = 507


def error_response(
    status_code: int, detail: str, *, headers: dict[str, str] | None = None, extra: Any = None
) -> Response[dict[str, Any]]:
    body: dict[str, Any] = {"status_code": status_code, "detail": detail}
    if extra:
        body["extra"] = extra
    return Response(body, status_code=status_code, media_type=MediaType.JSON, headers=headers)


def _domain_error(_: Request, exc: Exception) -> Response[dict[str, Any]]:
    status = next((code for kind, code in _DOMAIN_STATUS.items() if isinstance(exc, kind)), 400)
    if isinstance(exc, StorageError) and exc.disk_full:
        # 507 tells an operator what to fix; the write was refused whole and reads go on.
        status = HTTP_507_INSUFFICIENT_STORAGE
    return error_response(status, str(exc))


def _undecodable_body(_: Request, exc: UnicodeDecodeError) -> Response[dict[str, Any]]:
    # msgspec raises this (not a DecodeError) for a JSON string that is not UTF-8, and Litestar
    # lets it escape as if it were a bug.
    return error_response(400, f"malformed JSON: a string in the body is not UTF-8 ({exc.reason})")


def _too_deep(request: Request, exc: RecursionError) -> Response[dict[str, Any]]:
    # msgspec stops at Python's recursion limit (about 1,000 levels) with this error instead of a
    # DecodeError, so Litestar would answer 500 to `[[[[...]]]]`. Any other RecursionError is a bug.
    if "deserializing" in str(exc):
        return error_response(400, "malformed JSON: the body is nested too deeply (about 1,000 levels)")
    return _unexpected_error(request, exc)


def _validation_error(request: Request, exc: ValidationException) -> Response[dict[str, Any]]:
    # Litestar's detail alone ("Validation failed for POST /api/ask") does not say what is wrong;
    # a chatbot developer reads `detail` first, so the field-level messages are folded into it.
    items = [item for item in (exc.extra if isinstance(exc.extra, list) else []) if isinstance(item, dict)]
    if any(item.get("key") == "data" and item.get("message") == "'data'" for item in items):
        # What Litestar reports for an empty body.
        return error_response(400, "the request body is empty: send a JSON object", headers=exc.headers)
    problems = [
        f"{item.get('key')}: {item.get('message')}" if item.get("key") else str(item.get("message"))
        for item in items
    ]
    detail = f"{exc.detail} ({'; '.join(problems)})" if problems else exc.detail
    return error_response(400, detail, headers=exc.headers, extra=exc.extra)


def _http_error(request: Request, exc: HTTPException) -> Response[dict[str, Any]]:
    detail = exc.detail
    if isinstance(exc, RequestEntityTooLarge):  # Litestar's own, which does not name the limit
        limit = request.route_handler.resolve_request_max_body_size()
        if limit:
            detail = f"the request body is larger than this route's limit of {limit / 1024 / 1024:.1f} MiB"
    return error_response(exc.status_code, detail, headers=exc.headers, extra=exc.extra)


def _unexpected_error(request: Request, exc: Exception) -> Response[dict[str, Any]]:
    logger.error("%s %s failed", request.method, request.url.path, exc_info=exc)
    return error_response(HTTP_500_INTERNAL_SERVER_ERROR, "internal server error (logged on the server)")


EXCEPTION_HANDLERS: ExceptionHandlersMap = {
    QAError: _domain_error,
    ValidationException: _validation_error,
    UnicodeDecodeError: _undecodable_body,
    RecursionError: _too_deep,
    HTTPException: _http_error,
    Exception: _unexpected_error,
}
