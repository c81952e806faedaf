"""`qa mcp`: the search service as MCP tools over stdio, for chatbot hosts that start it."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager

import click

from qa.cli_options import READ_INDEX_OPTION, index_option
from qa.settings import mask_url


@click.command()
@index_option("Index directory, or a postgresql:// URL (env QA_INDEX_DIR).")
@READ_INDEX_OPTION
@click.option(
    "--allow-writes",
    is_flag=True,
    help="Also offer add_document and remove_document (and create the index if it is missing).",
)
def mcp(index_dir: str, read_index: str | None, allow_writes: bool) -> None:
    """Serve the index to a chatbot host over MCP (stdio): tools ask, get_document, list_documents.

    The host starts this command and speaks the Model Context Protocol on its standard input and
    output; logs go to standard error. The model loads once, before the first message is read.
    For hosts that connect over HTTP, `qa serve` answers MCP at /mcp.

    \b
    Examples:
      qa mcp --index /srv/qa-index
      qa mcp --index /srv/qa-index --allow-writes
    """
    from qa.mcp import build_server
    from qa.service import open_service

    with _stdout_to_stderr():
        service = open_service(index_dir, create=allow_writes, read_location=read_index)
    # Hosts start this command in a folder of their choosing: say which index it serves.
    click.echo(f"qa mcp: serving {mask_url(service.index.location)} over stdio", err=True)
    try:
        build_server(lambda: service, writes=allow_writes).run("stdio")
    finally:
        service.encoder.close()  # the micro-batcher's thread
        service.index.close()


@contextmanager
def _stdout_to_stderr() -> Iterator[None]:
    """Send whatever is written to standard output meanwhile (by Python or by a native library)
    to standard error: the host reads standard output as the protocol, and before the SDK takes
    it over a stray line from a library loading the model would corrupt the stream."""
    sys.stdout.flush()
    saved = os.dup(1)
    os.dup2(2, 1)
    try:
        yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)
