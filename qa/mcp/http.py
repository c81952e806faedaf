"""`/mcp` of the HTTP app: streamable HTTP over the app's own search service.

Two MCP servers stand behind the one path: a read-only one, and one with the write tools that a
request reaches only by presenting the API's write token (`Authorization: Bearer <QA_API_TOKEN>`,
checked by the API's own guard). A client that may not write never sees the write tools listed.
Without a token header every request is read-only; a wrong token gets the API's 401.

Stateless: every request is served on its own, with no session kept between requests. Behind a
load balancer any worker or replica can answer any request (no session affinity), a restart
loses nothing, and no session piles up in memory. The tools need none of what sessions give:
they answer each call in one response and never call back into the client.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

from litestar import Litestar, asgi
from litestar.connection import ASGIConnection
from litestar.exceptions import PermissionDeniedException
from litestar.handlers import ASGIRouteHandler
from litestar.types import Receive, Scope, Send
from mcp.server.mcpserver import MCPServer
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager

from qa.api.security import require_write_token
from qa.api.settings import MAX_JSON_BYTES, ApiSettings
from qa.mcp.server import build_server
from qa.search import SearchService

PATH = "/mcp"


class McpEndpoint:
    """The mount and the lifespan that runs its session managers; the search service is the one
    the app's own lifespan loaded onto `app.state` (entered first, left last)."""

    def __init__(self, settings: ApiSettings, *, host: str = "127.0.0.1") -> None:
        self._state: object | None = None
        reading = build_server(self._service, writes=False)
        writing = build_server(self._service, writes=True, max_document_bytes=settings.max_document_bytes)
        self._reading = self._manager(reading, host)
        self._writing = self._manager(writing, host)
        self.handler: ASGIRouteHandler = asgi(PATH, is_mount=True, copy_scope=True)(self._handle)

    @staticmethod
    def _manager(server: MCPServer, host: str) -> StreamableHTTPSessionManager:
        server.streamable_http_app(
            stateless_http=True,
            # One JSON answer per request, no event stream: nothing for a proxy to buffer or time out.
            json_response=True,
            # The API's limit for JSON bodies: larger documents go through `qa ingest`.
            max_request_body_size=MAX_JSON_BYTES,
            # The SDK's DNS-rebinding check (Host and Origin headers) is on for a loopback `host`,
            # where a web page could otherwise reach the server through a name it controls, and
            # accepts 127.0.0.1, localhost and [::1] on any port; off on other interfaces.
            host=host,
        )
        return server.session_manager

    def _service(self) -> SearchService:
        if self._state is None:
            raise RuntimeError("the MCP endpoint was called before the app started")
        return self._state.service  # type: ignore[attr-defined]

    @asynccontextmanager
    async def lifespan(self, app: Litestar) -> AsyncIterator[None]:
        self._state = app.state
        async with AsyncExitStack() as stack:
            await stack.enter_async_context(self._reading.run())
            await stack.enter_async_context(self._writing.run())
            yield

    async def _handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        manager = self._reading
        connection: ASGIConnection = ASGIConnection(scope, receive=receive)
        if "authorization" in connection.headers:
            try:
                # 401 (through the app's error handlers) for a wrong token, as on write routes.
                require_write_token(connection, self.handler)
                manager = self._writing
            except PermissionDeniedException:
                pass  # no token configured: writes are off, reading needs no token
        await manager.handle_request(scope, receive, send)  # type: ignore[arg-type]
