"""`qa bench`: latency, throughput, ingest, cold start, memory and vector search, against txtai."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print one flat JSON object of figures.")
@click.option("--quick", is_flag=True, help="Fewer repetitions and no million-vector part (~3 minutes).")
@click.option("--fresh", is_flag=True, help="Rebuild the cached benchmark indexes ($QA_DATA_DIR/bench/).")
@click.option(
    "--data",
    "data_dir",
    type=click.Path(file_okay=False, exists=True, path_type=Path),
    default=None,
    help="Evaluation data folder (xquad/, arcd/, tydiqa-goldp-ar/); default $QA_EVAL_DATA, else "
    "../shared/evaldata.",
)
@click.option("--no-txtai", "no_txtai", is_flag=True, help="Skip the txtai side-by-side.")
@click.option(
    "--no-http",
    "no_http",
    is_flag=True,
    help="Skip the servers (in-process figures only; with --scaling, the workers part).",
)
@click.option("--no-ann", "no_ann", is_flag=True, help="Skip the synthetic vector-search part.")
@click.option("--no-writes", "no_writes", is_flag=True, help="Skip the cost of small writes.")
@click.option(
    "--writes-only",
    is_flag=True,
    help="Only the cost of one small write at 1k, 10k and 100k passages (~2 minutes, no model).",
)
@click.option(
    "--scaling",
    is_flag=True,
    help="Only the scaling figures: dense search on --passages synthetic vectors in PostgreSQL against "
    "the local index, then 1 against 2 `qa serve` workers pinned to one core each on one PostgreSQL "
    "index (~25 minutes at 100k passages on two cores: PostgreSQL adds each passage to its HNSW graph).",
)
@click.option(
    "--passages",
    type=click.IntRange(100),
    default=None,
    help="With --scaling: synthetic passages written into each backend "
    "[default: 100000; 20000 with --quick].",
)
@click.option(
    "--postgres-url",
    default=None,
    metavar="URL",
    help="With --scaling: a PostgreSQL + pgvector database to use (postgresql://user@host/db) instead of a "
    "throwaway server; the benchmark makes its own schemas there and drops them.",
)
@click.option(
    "--reference",
    default=None,
    metavar="INDEX",
    help="With --scaling: an index (directory or URL) whose passage vectors the synthetic ones are modelled "
    "on, or a saved mixture (.npz) [default: the newest cached evaluation index, data/bench/ours-evaldata-*; "
    "none: isotropic vectors, said so in the output].",
)
@click.option(
    "--load-seconds",
    type=click.FloatRange(1),
    default=None,
    help="With --scaling: seconds of load measured per worker count and generator, after 3 s of warm-up "
    "[default: 20; 8 with --quick].",
)
@click.option(
    "--clients-per-worker",
    type=click.IntRange(1),
    default=4,
    show_default=True,
    help="With --scaling: concurrent clients per worker (closed loop).",
)
@click.option(
    "--baseline",
    type=click.Path(file_okay=False, exists=True, path_type=Path),
    default=None,
    help="A checkout of an earlier version: its qa serve is measured beside this one on the seeds.",
)
@click.option(
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Also write the JSON figures to this file.",
)
@click.option(
    "--plot",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Draw latency against corpus size to this PNG (needs matplotlib).",
)
def bench(
    as_json: bool,
    quick: bool,
    fresh: bool,
    data_dir: Path | None,
    no_txtai: bool,
    no_http: bool,
    no_ann: bool,
    no_writes: bool,
    writes_only: bool,
    scaling: bool,
    passages: int | None,
    postgres_url: str | None,
    reference: str | None,
    load_seconds: float | None,
    clients_per_worker: int,
    baseline: Path | None,
    output: Path | None,
    plot: Path | None,
) -> None:
    """Measure speed on this machine, ours and txtai's side by side.

    Query latency in-process and over HTTP (POST /api/ask on 127.0.0.1) on the seed articles
    and on ~1,550 evaluation paragraphs; requests/s with 1, 4 and 8 clients; ingest speed; cold
    start; peak memory of the server; recall@1; vector search on 100k and 1M synthetic vectors.
    Every load loop is bounded in requests and time. Progress goes to stderr, figures to stdout.
    The first run builds and caches the benchmark indexes; a full run then takes ~10 minutes.

    --scaling measures only what the PostgreSQL backend costs and gives: write speed, one
    question's dense-search latency, recall@10 against exact search and size on disk, on 100k
    synthetic passages in both backends (no model); then requests/s of 1 and 2 `qa serve`
    workers on one PostgreSQL index of the seed articles, each pinned to a core, driven by a
    threaded and by a single-thread asyncio load generator (the model: set QA_MODEL or run
    `qa model build` first). A PostgreSQL 18 + pgvector server is started for it in a
    temporary directory unless --postgres-url is given.

    \b
    Examples:
      qa bench --quick
      qa bench --json > bench.json
      qa bench --output docs/bench.json --plot docs/benchmarks-latency.png
      qa bench --no-txtai --no-ann
      qa bench --writes-only --json
      qa bench --scaling --output docs/scaling-figures.json
      qa bench --scaling --quick --passages 5000 --no-http
      git worktree add /tmp/before HEAD~1 && qa bench --quick --baseline /tmp/before
    """
    from qa.bench.report import render, target_status
    from qa.bench.runner import BenchOptions, run_benchmark

    def log(message: str) -> None:
        click.echo(f"[bench] {message}", err=True)

    options = BenchOptions(
        quick=quick,
        fresh=fresh,
        data_dir=data_dir,
        txtai=not no_txtai,
        http=not no_http,
        ann=not no_ann,
        writes=not no_writes,
        baseline=baseline,
        log=log,
    )
    if scaling:
        _scaling(
            quick=quick,
            as_json=as_json,
            output=output,
            workers=not no_http,
            passages=passages,
            postgres_url=postgres_url,
            reference=reference,
            load_seconds=load_seconds,
            clients_per_worker=clients_per_worker,
            log=log,
        )
        return
    if writes_only:
        from qa.bench.machine import machine_figures
        from qa.bench.runner import write_cost

        figures = {**machine_figures(), **write_cost(options)}
        click.echo(json.dumps(figures, ensure_ascii=False, indent=None if as_json else 2))
        if output:
            output.write_text(json.dumps(figures, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
        return
    result = run_benchmark(options)
    figures = result.figures
    status = target_status(figures)
    figures["targets_met"] = sum(met is True for _, _, met in status)
    figures["targets_total"] = len(status)
    if output:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(json.dumps(figures, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    if plot:
        from qa.bench.plot import latency_chart

        log(f"chart written to {latency_chart(figures, result.ann_results, plot)}")
    if as_json:
        click.echo(json.dumps(figures, ensure_ascii=False))
    else:
        click.echo(render(figures, result.profile_text, result.notes))
    sys.stdout.flush()


def _scaling(
    *,
    quick: bool,
    as_json: bool,
    output: Path | None,
    workers: bool,
    passages: int | None,
    postgres_url: str | None,
    reference: str | None,
    load_seconds: float | None,
    clients_per_worker: int,
    log,
) -> None:
    import shlex

    from qa.bench.scaling import ScalingOptions, render, run_scaling

    options = ScalingOptions(
        passages=passages or (20_000 if quick else 100_000),
        queries=100 if quick else 300,
        reference=reference,
        postgres_url=postgres_url,
        workers=workers,
        clients_per_worker=clients_per_worker,
        load_seconds=load_seconds or (8.0 if quick else 20.0),
        command=shlex.join(["qa", *sys.argv[1:]]),
        log=log,
    )
    figures, notes = run_scaling(options)
    figures["notes"] = notes
    if output:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(json.dumps(figures, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    click.echo(json.dumps(figures, ensure_ascii=False) if as_json else render(figures, notes))
