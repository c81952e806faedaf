"""The `qa` command line: a thin shell over the model builder and the search service."""

from __future__ import annotations

import json

import click

from embeddings.errors import ModelError


class QAGroup(click.Group):
    """Turns domain errors into one clean line and a non-zero exit instead of a traceback."""

    def invoke(self, ctx: click.Context):  # type: ignore[override]
        try:
            return super().invoke(ctx)
        except ModelError as exc:
            raise click.ClickException(str(exc)) from exc


@click.group(cls=QAGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="qa-arabic-news")
def main() -> None:
    """Semantic retrieval and question answering over Arabic news (and any language).

    \b
    Quick start:
      qa model build
      qa ingest seeds/
      qa ask "who met Jeffrey in Brussels"
      qa serve
    """


@main.group()
def model() -> None:
    """Build and inspect the embedding model."""


@model.command("build")
@click.option("--force", is_flag=True, help="Rebuild even if a finished build is present.")
@click.option(
    "--dir",
    "target",
    type=click.Path(file_okay=False),
    default=None,
    help="Where to build (default: $QA_DATA_DIR/models/…, QA_DATA_DIR defaulting to ./data).",
)
def model_build(force: bool, target: str | None) -> None:
    """Build the default model from the packaged 4-bit weights (idempotent).

    Prints the model directory as the last line of standard output.

    \b
    Example:
      qa model build
      QA_MODEL=$(qa model build | tail -n 1) qa model info
    """
    from pathlib import Path

    from embeddings.build import build_model

    result = build_model(Path(target) if target else None, force=force)
    if not result.built:
        click.echo("Model already built (manifest matches the packaged weights).", err=True)
    click.echo(str(result.path.resolve()))


@model.command("info")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for machines.")
def model_info(as_json: bool) -> None:
    """Load the model ($QA_MODEL or the built-in one) and describe it.

    \b
    Example:
      qa model info --json
    """
    from embeddings.encoder import Encoder

    info = Encoder().info()
    if as_json:
        click.echo(json.dumps(info, ensure_ascii=False, indent=2))
        return
    for key, value in info.items():
        click.echo(f"{key:>12}: {value}")
