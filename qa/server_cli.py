"""`qa serve`: the JSON API and the web form, served by uvicorn."""

from __future__ import annotations

import logging
import math
import socket

import click
from litestar import Litestar

from qa import settings
from qa.cli_options import READ_INDEX_OPTION, index_option
from qa.errors import ConfigurationError


class _Seconds(click.ParamType):
    """A positive number of seconds, by the setting's own rule (`qa.settings`)."""

    name = "seconds"

    def convert(self, value: object, param: click.Parameter | None, ctx: click.Context | None) -> float:
        try:
            return settings.seconds_above_zero(value, settings.IDLE_TIMEOUT_S.name)
        except ConfigurationError as exc:
            self.fail(str(exc), param, ctx)


def _url(host: str, port: int) -> str:
    shown = f"[{host}]" if ":" in host else host  # an IPv6 address needs brackets in a URL
    return f"http://{shown}:{port}"


class _QuietKnownStartupError(logging.Filter):
    """Drops the traceback of a start-up failure whose message already says what to do (a model
    or index problem); `serve` prints that message as its last line. Other failures keep theirs."""

    def __init__(self, app: Litestar) -> None:
        super().__init__()
        self._app = app

    def filter(self, record: logging.LogRecord) -> bool:
        error = self._app.state.startup_error
        return not (error and error in record.getMessage())


@click.command()
@index_option("Index directory (created empty if missing), or a postgresql:// URL (env QA_INDEX_DIR).")
@READ_INDEX_OPTION
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on.")
@click.option(
    "--port", type=click.IntRange(0, 65535), default=8000, show_default=True, help="Port (0: any free one)."
)
@click.option(
    "--idle-timeout",
    "idle_timeout",
    type=_Seconds(),
    # The variable's text, checked by the option's type: a bad value is a usage error (exit 2).
    default=lambda: settings.IDLE_TIMEOUT_S.raw() or settings.DEFAULT_IDLE_TIMEOUT_S,
    show_default=f"$QA_IDLE_TIMEOUT_S, else {settings.DEFAULT_IDLE_TIMEOUT_S:g}",
    help="Seconds a connection may take to send a whole request head, from opening or from its last "
    "response; then it is closed (env QA_IDLE_TIMEOUT_S).",
)
def serve(index_dir: str, read_index: str | None, host: str, port: int, idle_timeout: float) -> None:
    """Serve the web form (/), the JSON API (/api, docs at /schema) and MCP for chatbots (/mcp).

    The model and the index load once at start-up; the address is printed when the server
    accepts requests. Writes (POST/DELETE /api/documents) need QA_API_TOKEN to be set;
    QA_CORS_ORIGINS (comma-separated) lets browser apps on other origins call the API.

    \b
    Examples:
      qa serve
      QA_API_TOKEN=$(openssl rand -hex 16) qa serve --index /srv/qa-index --host 0.0.0.0 --port 8080
      curl -s localhost:8000/api/ask -d '{"question": "who met Jeffrey in Brussels", "k": 3}'
    """
    import uvicorn

    from qa.api import create_app
    from qa.idle import idle_timeout_protocol

    app = create_app(index_dir=index_dir, read_location=read_index, host=host)

    class AnnouncingServer(uvicorn.Server):
        async def startup(self, sockets: list[socket.socket] | None = None) -> None:
            await super().startup(sockets)
            if self.started:
                bound_port = self.servers[0].sockets[0].getsockname()[1]
                # stdout, flushed: scripts and tests read the address from here (port 0 too).
                click.echo(f"Serving on {_url(host, bound_port)}  (web form /, API docs /schema)")

    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        lifespan="on",
        # uvicorn's own timeouts never close a connection that sends nothing (see qa.idle).
        http=idle_timeout_protocol(idle_timeout),
        timeout_keep_alive=math.ceil(idle_timeout),  # later than ours, so ours decides
    )
    server = AnnouncingServer(config)
    logging.getLogger("uvicorn.error").addFilter(_QuietKnownStartupError(app))  # after Config set up logging
    try:
        server.run()
    except SystemExit:
        if app.state.startup_error:  # already logged by uvicorn; repeat it as the last line
            raise click.ClickException(app.state.startup_error) from None
        raise
