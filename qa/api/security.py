"""Bearer-token guard for write routes: the token is `QA_API_TOKEN`; without it writes are off."""

from __future__ import annotations

import hmac

from litestar.connection import ASGIConnection
from litestar.exceptions import NotAuthorizedException, PermissionDeniedException
from litestar.handlers import BaseRouteHandler

WRITES_DISABLED = (
    "writes are disabled on this server: start it with QA_API_TOKEN set to a secret and send "
    "'Authorization: Bearer <that secret>' (or add documents locally with: qa ingest PATH)"
)


def require_write_token(connection: ASGIConnection, _: BaseRouteHandler) -> None:
    """Let a request through only with `Authorization: Bearer <QA_API_TOKEN>`.

    Runs before the body is read, so a refused upload costs no parsing or encoding.
    """
    expected: str | None = connection.app.state.settings.api_token
    if not expected:
        raise PermissionDeniedException(detail=WRITES_DISABLED)
    scheme, _, given = connection.headers.get("authorization", "").partition(" ")
    # compare_digest takes the same time wherever the strings differ, so the secret cannot be
    # guessed one character at a time from response times.
    if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), expected.encode()):
        raise NotAuthorizedException(
            detail="missing or wrong API token: send 'Authorization: Bearer <QA_API_TOKEN>'",
            headers={"WWW-Authenticate": 'Bearer realm="qa"'},
        )
