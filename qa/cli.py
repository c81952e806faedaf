"""The `qa` command line: a thin shell over the model builder and the search service."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from qa.cli_options import index_option
from qa.errors import QAError

INDEX_OPTION = index_option()


class QAGroup(click.Group):
    """Turns domain errors into one clean line and a non-zero exit instead of a traceback."""

    def invoke(self, ctx: click.Context):  # type: ignore[override]
        try:
            return super().invoke(ctx)
        except QAError as exc:
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
    help="Where to build (default: $QA_DATA_DIR/models/…, QA_DATA_DIR defaulting to the per-user data "
    "directory; `qa config` shows it).",
)
def model_build(force: bool, target: str | None) -> None:
    """Build the default model from the packaged 4-bit weights, with its ONNX export (idempotent).

    Prints the model directory as the last line of standard output.

    \b
    Example:
      qa model build
      QA_MODEL=$(qa model build | tail -n 1) qa model info
    """
    from embeddings.build import build_model
    from embeddings.engines import ensure_onnx_export

    result = build_model(Path(target) if target else None, force=force)
    if not result.built:
        click.echo(f"Model already built in {result.path} (manifest matches the packaged weights).", err=True)
    # The ONNX Runtime engine's graphs (float32 and int8), unless current ones are there.
    ensure_onnx_export(result.path, force=force)
    click.echo(str(result.path.resolve()))


@model.command("info")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for machines.")
def model_info(as_json: bool) -> None:
    """Load the model ($QA_MODEL or the built-in one) and describe it.

    \b
    Example:
      qa model info --json
    """
    from embeddings.engines import load_encoder

    info = load_encoder().info()
    if as_json:
        click.echo(json.dumps(info, ensure_ascii=False, indent=2))
        return
    for key, value in info.items():
        click.echo(f"{key:>12}: {value}")


@main.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@INDEX_OPTION
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
def ingest(paths: tuple[Path, ...], index_dir: str, as_json: bool) -> None:
    """Add files and folders to the index (.txt .md .html .pdf .docx .jsonl).

    A document's id is its file name without extension. Unchanged documents are skipped,
    changed ones replaced; files that cannot be read are reported and the rest still ingested.

    \b
    Examples:
      qa ingest seeds/
      qa ingest news/ extra.jsonl --index /srv/qa-index
    """
    from qa.documents import iter_documents
    from qa.ingest import ingest_documents
    from qa.service import open_service

    items = list(iter_documents(paths))  # fails on a missing path before loading the model
    service = open_service(index_dir)
    try:
        report = ingest_documents(
            service.index, service.encoder, items, progress=sys.stderr.isatty(), total=len(items)
        )
    finally:
        service.index.close()  # waits for a compaction the write may have started
    for skipped in report.failed:
        click.echo(f"skipped {skipped.path}: {skipped.reason}", err=True)
    if as_json:
        click.echo(json.dumps(report.to_dict(), ensure_ascii=False))
    else:
        click.echo(report.summary())


def _read_questions(questions: tuple[str, ...]) -> list[str]:
    if questions == ("-",):
        return [line.strip() for line in sys.stdin if line.strip()]
    if not questions:
        raise click.UsageError("give a question, or - to read one question per line from stdin")
    return [" ".join(questions)]


def _print_hits(response) -> None:
    click.echo(click.style(f"Q: {response.question}", bold=True))
    if not response.passages:
        click.echo("  no passages found")
    for hit in response.passages:
        dated = f", {hit.document.published[:10]}" if hit.document.published else ""
        click.echo(
            f"\n{hit.rank}. {click.style(hit.document.title, bold=True)}"
            f"  [{hit.document.id}{dated}, score {hit.score:.4f}]"
        )
        before = hit.text[: hit.answer.start - hit.start]
        after = hit.text[hit.answer.end - hit.start :]
        answer = click.style(hit.answer.text, fg="yellow", bold=True, underline=True)
        click.echo("   " + (before + answer + after).replace("\n", "\n   "))
    click.echo(f"\n({response.took_ms:.1f} ms)")


@main.command()
@click.argument("questions", nargs=-1)
@INDEX_OPTION
@click.option("-k", "k", type=int, default=5, show_default=True, help="How many passages (1-50).")
@click.option(
    "--mode", type=click.Choice(["hybrid", "dense", "lexical"]), default=None, help="Ranking method."
)
@click.option(
    "--per-document",
    type=int,
    default=None,
    help="At most N passages of one document (default: no cap; overlapping ones never shown together).",
)
@click.option("--raw", is_flag=True, help="The ranking as it is: overlapping passages, no cap.")
@click.option("--document", "documents", multiple=True, help="Only this document id (repeat for more).")
@click.option("--source", "sources", multiple=True, help="Only this source (repeat for more).")
@click.option("--tag", "tags", multiple=True, help="Only documents with this tag (repeat: any of them).")
@click.option("--lang", "langs", multiple=True, help="Only documents in this language, e.g. ar (repeatable).")
@click.option("--after", "published_after", help="Only documents published on or after this ISO date.")
@click.option("--before", "published_before", help="Only documents published before this ISO date.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per question (JSON lines).")
def ask(
    questions: tuple[str, ...],
    index_dir: str,
    k: int,
    mode: str | None,
    per_document: int | None,
    raw: bool,
    documents: tuple[str, ...],
    sources: tuple[str, ...],
    tags: tuple[str, ...],
    langs: tuple[str, ...],
    published_after: str | None,
    published_before: str | None,
    as_json: bool,
) -> None:
    """Ask a question; prints the passages that answer it, the answer sentence highlighted.

    The words of QUESTIONS form one question; "-" reads one question per line from stdin.
    --json prints the same shape as POST /api/ask.

    \b
    Examples:
      qa ask who met Jeffrey in Brussels
      qa ask "من التقى جيفري في بروكسل" -k 3
      qa ask what did Pedersen warn about -k 10 --per-document 1
      qa ask what did the envoy say --source Reuters --after 2019-01-01 --before 2019-02-01
      printf 'who met Jeffrey in Brussels\\nwhat did Rayburn say\\n' | qa ask - --json
    """
    import msgspec

    from qa.filters import filter_from_options
    from qa.search import validate_k, validate_per_document, validate_question
    from qa.service import open_service

    asked = _read_questions(questions)
    validate_k(k)
    validate_per_document(per_document)
    within = filter_from_options(
        documents=documents,
        sources=sources,
        tags=tags,
        lang=langs,
        published_after=published_after,
        published_before=published_before,
    )
    for question in asked if len(asked) == 1 else []:
        validate_question(question)  # a single bad question fails before the model loads
    service = open_service(index_dir, create=False)
    failures = 0
    for question in asked:
        try:
            response = service.ask(
                question, k=k, mode=mode, per_document=per_document, raw=raw, filter=within
            )
        except QAError as exc:
            failures += 1
            click.echo(f"error: {exc} (question: {question[:80]!r})", err=True)
            continue
        if as_json:
            click.echo(msgspec.json.encode(response).decode())
        else:
            _print_hits(response)
    if failures:
        sys.exit(1)


@main.command()
@INDEX_OPTION
@click.option("--json", "as_json", is_flag=True, help="JSON lines, one document per line.")
def docs(index_dir: str, as_json: bool) -> None:
    """List the indexed documents.

    \b
    Example:
      qa docs --json
    """
    with _open_index(index_dir) as index, index.view() as view:
        for document in view.list_documents(limit=1_000_000):
            if as_json:
                row = {"id": document.id, "title": document.title, "source": document.source}
                row |= {"passages": document.passages, **document.meta.to_dict()}
                click.echo(json.dumps(row, ensure_ascii=False))
            else:
                click.echo(f"{document.id}\t{document.passages} passages\t{document.title}")


@main.command()
@click.argument("document_id")
@INDEX_OPTION
def remove(document_id: str, index_dir: str) -> None:
    """Remove a document (its passages leave every index).

    \b
    Example:
      qa remove 002_b8689e71eb8b336f
    """
    from qa.ingest import remove_document

    with _open_index(index_dir) as index:
        remove_document(index, document_id)
    click.echo(f"removed {document_id}")


@main.command()
@INDEX_OPTION
def export(index_dir: str) -> None:
    """Print every document as JSON lines (id, title, source, text and metadata), ready for qa ingest.

    Rebuilds an index without the original files, for example for another model:

    \b
    Example:
      qa export --index data/index > documents.jsonl
      qa ingest documents.jsonl --index data/new-index
    """
    with _open_index(index_dir) as index, index.view() as view:
        for document in view.iter_documents():
            row = {
                "id": document.id,
                "title": document.title,
                "source": document.source,
                "text": document.text,
                **document.meta.to_dict(),
            }
            click.echo(json.dumps(row, ensure_ascii=False))


@main.command()
@INDEX_OPTION
@click.option("--json", "as_json", is_flag=True, help="Print the figures as JSON.")
def compact(index_dir: str, as_json: bool) -> None:
    """Fold the vectors written since the last checkpoint into a new one.

    Runs by itself when they pile up; safe while servers and other commands use the index.

    \b
    Example:
      qa compact --index /srv/qa-index
    """
    with _open_index(index_dir) as index:
        figures = index.compact()
    if as_json:
        click.echo(json.dumps(figures))
    elif not figures.get("compacted", True):  # nothing to fold, or another process is at it
        click.echo(f"not compacted: {figures['reason']}")
    else:
        click.echo(
            f"compacted: {figures['vectors']} vectors ({figures['kind']}), {figures['folded']} logged "
            f"changes folded in {figures['seconds']:.1f} s"
        )


def _open_index(index_dir: str):
    """The index alone, without loading the model: for commands that neither embed nor search."""
    from qa.index import open_index

    return open_index(index_dir, None, create=False, searching=False)


from qa.eval_cli import eval_command  # noqa: E402  (registered last: the command lives in its own module)

main.add_command(eval_command, name="eval")

from qa.server_cli import serve  # noqa: E402  (registered last: the command lives in its own module)

main.add_command(serve)

from qa.bench_cli import bench  # noqa: E402  (registered last: the command lives in its own module)

main.add_command(bench)

from qa.mcp_cli import mcp  # noqa: E402  (registered last: the command lives in its own module)

main.add_command(mcp)

from qa.config_cli import config  # noqa: E402  (registered last: the command lives in its own module)

main.add_command(config)
