"""The web form at `/`: works without JavaScript (`GET /?q=...&k=5`); it only calls `SearchService`."""

from __future__ import annotations

from litestar import MediaType, Response, get
from litestar.di import NamedDependency
from litestar.params import FromQuery
from litestar.status_codes import HTTP_200_OK, HTTP_400_BAD_REQUEST

from qa.api.headers import PAGE_CSP
from qa.api.html import render_page
from qa.api.style import CSS
from qa.api.validation import checked_question
from qa.errors import QuestionError
from qa.search import MAX_K, SearchService

DEFAULT_K = 5
_PAGE_HEADERS = {"Content-Security-Policy": PAGE_CSP}  # the other security headers: qa.api.headers


def _form_number(name: str, raw: str | None, default: int | None) -> int | None:
    """A number field of the form; blank means the default (the service checks the range)."""
    if raw is None or not raw.strip():
        return default
    try:
        return int(raw)
    except ValueError:
        raise QuestionError(f"{name} must be a whole number from 1 to {MAX_K}, not {raw!r}") from None


def _empty_hint(service: SearchService) -> str:
    with service.index.view() as view:
        empty = view.count_documents() == 0
    if empty:
        return "The index is empty: add documents with qa ingest PATH."
    return "Try other words."


@get("/", include_in_schema=False, media_type=MediaType.HTML, sync_to_thread=True)
def form(
    service: NamedDependency[SearchService],
    q: FromQuery[str | None] = None,
    k: FromQuery[str | None] = None,
    per_document: FromQuery[str | None] = None,
) -> Response[str]:
    shown = {"k": k if k is not None else str(DEFAULT_K), "per_document": per_document or ""}
    if q is None:  # first visit: just the form
        return Response(render_page(**shown), headers=_PAGE_HEADERS)
    try:
        response = service.ask(
            checked_question(q),
            k=_form_number("k", k, DEFAULT_K),
            per_document=_form_number("per_document", per_document, None),
        )
    except QuestionError as exc:
        page = render_page(question=q, error=str(exc), **shown)
        return Response(page, status_code=HTTP_400_BAD_REQUEST, headers=_PAGE_HEADERS)
    hint = _empty_hint(service) if not response.passages else ""
    page = render_page(question=q, response=response, empty_hint=hint, **shown)
    return Response(page, status_code=HTTP_200_OK, headers=_PAGE_HEADERS)


@get("/assets/form.css", include_in_schema=False, media_type="text/css")
async def stylesheet() -> Response[str]:
    return Response(CSS, media_type="text/css", headers={"Cache-Control": "public, max-age=3600"})
