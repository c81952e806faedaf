"""Headers added to every response, errors included (a `before_send` hook sees them all).

Security: no MIME sniffing, no framing by other sites, no referrer leaking a question to
other sites, and a Content-Security-Policy on every response. A route that needs another policy
(the web form, the API docs page) sets its own, which is kept.
"""

from __future__ import annotations

from collections.abc import Callable

from litestar.datastructures import MutableScopeHeaders
from litestar.routes import HTTPRoute
from litestar.types import Message, Scope

# The web form runs no script at all: should any text ever slip through unescaped, the browser
# still refuses to run it. Styles come only from our own stylesheet.
PAGE_CSP = "default-src 'none'; style-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
# The interactive API docs (Swagger UI) load their script and styles from a CDN and start with an
# inline script that holds our own OpenAPI document; nothing else may load or run.
DOCS_CSP = (
    "default-src 'none'; script-src https://cdn.jsdelivr.net 'unsafe-inline'; "
    "style-src https://cdn.jsdelivr.net 'unsafe-inline'; img-src https://cdn.jsdelivr.net data:; "
    "connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
# JSON and everything else: nothing to load, nothing to run, no framing.
DEFAULT_CSP = "default-src 'none'; frame-ancestors 'none'"

SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}


def security_headers(docs_path: str) -> Callable[[Message, Scope], None]:
    """A `before_send` hook adding SECURITY_HEADERS and a CSP to every response that lacks them."""

    def add(message: Message, scope: Scope) -> None:
        if message["type"] != "http.response.start":
            return
        headers = MutableScopeHeaders.from_message(message)
        for name, value in SECURITY_HEADERS.items():
            if name not in headers:
                headers[name] = value
        if "Content-Security-Policy" not in headers:
            is_docs_page = scope.get("path", "").startswith(docs_path) and headers.get(
                "content-type", ""
            ).startswith("text/html")
            headers["Content-Security-Policy"] = DOCS_CSP if is_docs_page else DEFAULT_CSP

    return add


def complete_allow_header(message: Message, scope: Scope) -> None:
    """A `before_send` hook that lists every method of the route in an OPTIONS answer's `Allow`.

    Litestar's automatic OPTIONS handler is built with the first handler registered on a path
    and keeps listing only that one's methods (`OPTIONS /api/documents` said "OPTIONS, POST").
    """
    if message["type"] != "http.response.start" or scope.get("method") != "OPTIONS":
        return
    headers = MutableScopeHeaders.from_message(message)
    if "Allow" not in headers:  # a CORS preflight, answered by the CORS middleware
        return
    template = scope.get("path_template")
    for route in scope["litestar_app"].routes:
        if isinstance(route, HTTPRoute) and route.path_format == template:
            headers["Allow"] = ", ".join(sorted(route.methods))
            return
