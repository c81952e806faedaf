"""`qa bench`: latency, throughput, ingest, cold start, memory and vector search, against txtai."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print one flat JSON object of figures.")
@click.option("--quick", is_flag=True, help="Fewer repetitions and no million-vector part (~3 minutes).")
@click.option("--fresh", is_flag=True, help="Rebuild the cached benchmark indexes (data/bench/).")
@click.option(
    "--data",
    "data_dir",
    type=click.Path(file_okay=False, exists=True, path_type=Path),
    envvar="QA_EVAL_DATA",
    default=None,
    help="Evaluation data folder (xquad/, arcd/, tydiqa-goldp-ar/); default ../shared/evaldata.",
)
@click.option("--no-txtai", "no_txtai", is_flag=True, help="Skip the txtai side-by-side.")
@click.option("--no-http", "no_http", is_flag=True, help="Skip the servers (in-process figures only).")
@click.option("--no-ann", "no_ann", is_flag=True, help="Skip the synthetic vector-search part.")
@click.option("--no-writes", "no_writes", is_flag=True, help="Skip the cost of small writes.")
@click.option(
    "--writes-only",
    is_flag=True,
    help="Only the cost of one small write at 1k, 10k and 100k passages (~2 minutes, no model).",
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

    \b
    Examples:
      qa bench --quick
      qa bench --json > bench.json
      qa bench --output docs/bench.json --plot docs/benchmarks-latency.png
      qa bench --no-txtai --no-ann
      qa bench --writes-only --json
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
