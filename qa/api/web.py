"""The web form at `/`: works without JavaScript (`GET /?q=...&k=5&source=...&since=...&until=...`);
it only calls `SearchService`."""

from __future__ import annotations

from datetime import date, timedelta

from litestar import MediaType, Response, get
from litestar.di import NamedDependency
from litestar.params import FromQuery
from litestar.status_codes import HTTP_200_OK, HTTP_400_BAD_REQUEST

from qa.api.headers import PAGE_CSP
from qa.api.html import render_page
from qa.api.style import CSS
from qa.errors import QuestionError
from qa.filters import SearchFilter, filter_from_options
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


def _form_filter(source: str | None, since: str | None, until: str | None) -> SearchFilter | None:
    """The filter of the form's fields. "Until" names the last day to include, as people read a
    date range; the filter's `published_before` excludes its day, so it gets the day after."""
    before = None
    if until and until.strip():
        try:
            last = date.fromisoformat(until.strip())
        except ValueError:
            raise QuestionError(f"until must be a date such as 2019-01-31, not {until!r}") from None
        # The calendar's last day has no day after it: it bounds nothing.
        before = (last + timedelta(days=1)).isoformat() if last < date.max else None
    try:
        return filter_from_options(
            sources=source.strip() if source else None, published_after=since, published_before=before
        )
    except QuestionError as exc:  # the form's words for the filter's keys
        raise QuestionError(
            str(exc).replace("filter.published_after", "from").replace("filter.published_before", "until")
        ) from None


@get("/", include_in_schema=False, media_type=MediaType.HTML, sync_to_thread=True)
def form(
    service: NamedDependency[SearchService],
    q: FromQuery[str | None] = None,
    k: FromQuery[str | None] = None,
    per_document: FromQuery[str | None] = None,
    source: FromQuery[str | None] = None,
    since: FromQuery[str | None] = None,
    until: FromQuery[str | None] = None,
) -> Response[str]:
    shown = {
        "k": k if k is not None else str(DEFAULT_K),
        "per_document": per_document or "",
        "source": source or "",
        "since": since or "",
        "until": until or "",
    }
    if q is None:  # first visit: just the form
        return Response(render_page(**shown), headers=_PAGE_HEADERS)
    try:
        response = service.ask(
            q,
            k=_form_number("k", k, DEFAULT_K),
            per_document=_form_number("per_document", per_document, None),
            filter=_form_filter(source, since, until),
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
