"""`create_app()`: the Litestar application of the JSON API and the web form.

The search service (model + index) is heavy: it is loaded once, in the lifespan handler, and
kept on `app.state`; a ready one can be passed in instead (tests pass one on a fake encoder).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path

import anyio.to_thread
from litestar import Litestar
from litestar.config.cors import CORSConfig
from litestar.datastructures import State
from litestar.di import Provide
from litestar.middleware.rate_limit import RateLimitConfig
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import SwaggerRenderPlugin
from litestar.openapi.spec import Components, SecurityScheme

from embeddings.encoder import TextEncoder
from qa.api.ask import AskController
from qa.api.dependencies import provide_service, provide_settings
from qa.api.documents import DocumentController
from qa.api.errors import EXCEPTION_HANDLERS
from qa.api.headers import complete_allow_header, security_headers
from qa.api.health import health
from qa.api.openapi_bodies import ClosedStructSchemaPlugin
from qa.api.settings import MAX_JSON_BYTES, ApiSettings
from qa.api.web import form, stylesheet
from qa.errors import QAError
from qa.search import SearchService
from qa.service import open_service

DOCS_PATH = "/schema"
DESCRIPTION = """Semantic retrieval and question answering over Arabic news (questions in any language).

`POST /api/ask` answers a question with the passages that answer it, best first, each with the
sentence that answers it highlighted by offsets. Write routes need `Authorization: Bearer <QA_API_TOKEN>`.
Errors are JSON `{"status_code", "detail"}`."""


def _open_warm(
    index_dir: Path | str | None, read_location: str | None, encoder: TextEncoder | None
) -> SearchService:
    service = open_service(index_dir, encoder=encoder, read_location=read_location)
    # The first encoding pays for torch's lazy set-up (about a second here); paying it now keeps
    # it out of the first user's question.
    service.encoder.encode_queries(["warm-up"])
    return service


def _lifespan(
    service: SearchService | None,
    index_dir: Path | str | None,
    read_location: str | None,
    encoder: TextEncoder | None,
) -> Callable[[Litestar], AbstractAsyncContextManager[None]]:
    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        loaded = service
        if loaded is None:
            try:
                # Loading the model takes seconds of CPU; a thread keeps the loop responsive.
                loaded = await anyio.to_thread.run_sync(lambda: _open_warm(index_dir, read_location, encoder))
            except QAError as exc:
                app.state.startup_error = str(exc)  # for `qa serve` to report as one clean line
                raise
        app.state.service = loaded
        try:
            yield
        finally:
            if service is None:  # we opened it, we close it
                # The micro-batcher's encoder thread.
                await anyio.to_thread.run_sync(loaded.encoder.close)
                loaded.index.close()

    return lifespan


def _openapi_config() -> OpenAPIConfig:
    from importlib.metadata import PackageNotFoundError, version

    try:
        app_version = version("qa-arabic-news")
    except PackageNotFoundError:  # running from a source tree that was never installed
        app_version = "0"
    return OpenAPIConfig(
        title="qa: question answering over Arabic news",
        version=app_version,
        description=DESCRIPTION,
        path=DOCS_PATH,
        render_plugins=[SwaggerRenderPlugin(path=["/", "/swagger"])],
        components=Components(
            security_schemes={
                "bearer": SecurityScheme(type="http", scheme="bearer", description="QA_API_TOKEN")
            }
        ),
    )


def create_app(
    service: SearchService | None = None,
    *,
    index_dir: Path | str | None = None,
    read_location: str | None = None,
    encoder: TextEncoder | None = None,
    settings: ApiSettings | None = None,
    debug: bool = False,
    host: str = "127.0.0.1",
) -> Litestar:
    """The application; without `service`, it opens `index_dir` (default $QA_INDEX_DIR or
    data/index; reads from `read_location`, default $QA_INDEX_READ_URL, when given) with
    `encoder` (default: the real model) when it starts. `host` is the interface it is served on
    (the MCP endpoint checks Host headers when that is a loopback one)."""
    # Imported here: qa.mcp uses the API's validation and guard, so importing it at the top of
    # this module (which `qa.api` imports) would be circular when qa.mcp is imported first.
    from qa.mcp.http import McpEndpoint

    settings = settings or ApiSettings.from_env()
    mcp = McpEndpoint(settings, host=host)
    middleware = []
    if settings.rate_limit:
        # Per client address; /health stays free for load balancers and monitors.
        limit = RateLimitConfig(
            rate_limit=(settings.rate_limit.period, settings.rate_limit.requests), exclude=["/health"]
        )
        middleware.append(limit.middleware)
    return Litestar(
        route_handlers=[form, stylesheet, health, AskController, DocumentController, mcp.handler],
        dependencies={
            "service": Provide(provide_service, sync_to_thread=False),
            "settings": Provide(provide_settings, sync_to_thread=False),
        },
        state=State({"settings": settings, "startup_error": None}),
        # The MCP endpoint's session managers run inside the app's lifespan, after the service loads.
        lifespan=[_lifespan(service, index_dir, read_location, encoder), mcp.lifespan],
        exception_handlers=EXCEPTION_HANDLERS,
        request_max_body_size=MAX_JSON_BYTES,
        cors_config=_cors(settings),
        middleware=middleware,
        before_send=[security_headers(DOCS_PATH), complete_allow_header],
        openapi_config=_openapi_config(),
        plugins=[ClosedStructSchemaPlugin()],
        debug=debug,
    )


def _cors(settings: ApiSettings) -> CORSConfig | None:
    """None (no CORS headers at all: browsers keep other sites out) unless origins are set."""
    if not settings.cors_origins:
        return None
    return CORSConfig(
        allow_origins=list(settings.cors_origins),
        allow_methods=["GET", "POST", "DELETE", "OPTIONS"],
        allow_headers=["Authorization", "Content-Type"],
    )
