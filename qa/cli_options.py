"""Options several `qa` commands share, declared once (the commands live in several modules)."""

from __future__ import annotations

from collections.abc import Callable

import click

from qa import settings

_INDEX_HELP = "Index directory, or postgresql://user:password@host:port/db[?schema=name] (env QA_INDEX_DIR)."


def index_option(help: str = _INDEX_HELP) -> Callable:
    """--index: where the index is; the default comes from the settings (QA_INDEX_DIR)."""
    return click.option(
        "--index",
        "index_dir",
        # A string, not a click.Path: a postgresql:// URL would lose its double slash as a path.
        default=settings.INDEX_DIR.get,
        show_default=settings.INDEX_DIR_SHOWN,
        help=help,
    )


READ_INDEX_OPTION = click.option(
    "--read-index",
    "read_index",
    default=settings.INDEX_READ_URL.get,
    help="A streaming replica of the PostgreSQL index to answer questions from; writes still go to "
    "--index (env QA_INDEX_READ_URL).",
)
