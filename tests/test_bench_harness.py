"""The benchmark harness itself: bounded load loops, synthetic vectors, sweeps, the report.

No timing assertions: these check what is counted, never how fast it was.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest

from qa.bench import ann
from qa.bench.load import ask_ours, run_load
from qa.bench.report import render, target_status
from qa.bench.stats import Latency


class _AskHandler(BaseHTTPRequestHandler):
    """Answers POST /api/ask with 200, or 500 when the question says so."""

    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        status = 500 if "fail" in body["question"] else 200
        payload = json.dumps({"question": body["question"], "passages": []}).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args: object) -> None:  # keep test output clean
        pass


@pytest.fixture
def local_server():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _AskHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize("clients", [1, 4])
def test_a_load_loop_stops_at_its_request_budget_and_counts_errors(local_server, clients):
    questions = ["who met Jeffrey", "fail please", "where is Idlib", "what was agreed"]
    result = run_load(local_server, ask_ours, questions, clients=clients, max_requests=40, max_seconds=60)
    assert result.completed + result.errors == 40
    assert result.errors == 10  # every fourth question fails
    assert result.latency.count == result.completed == 30
    assert result.requests_per_s > 0


def test_a_load_loop_stops_at_its_time_limit(local_server):
    result = run_load(local_server, ask_ours, ["q"], clients=2, max_requests=10**9, max_seconds=0.3)
    assert 0 < result.completed < 10**9 and result.errors == 0


def test_latency_figures_and_an_empty_sample():
    figures = Latency.of([1.0, 2.0, 3.0, 4.0, 100.0]).figures("x")
    assert figures["x_p50_ms"] == 3.0 and figures["x_count"] == 5 and figures["x_p99_ms"] > 90
    assert Latency.of([]).count == 0


def test_synthetic_vectors_are_unit_length_and_follow_the_fitted_mixture():
    rng = np.random.default_rng(0)
    centre = rng.standard_normal(32).astype(np.float32)
    reference = centre + 0.1 * rng.standard_normal((800, 32)).astype(np.float32)
    model = ann.fit_mixture(reference, components=4)
    sample = model.sample(500, np.random.default_rng(1))
    assert sample.shape == (500, 32) and sample.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(sample, axis=1), 1.0, atol=1e-5)
    direction = centre / np.linalg.norm(centre)
    assert float(np.mean(sample @ direction)) > 0.9  # a narrow cone around the data, not a sphere
    isotropic = ann.isotropic(32).sample(500, np.random.default_rng(1))
    assert abs(float(np.mean(isotropic @ direction))) < 0.1


def test_a_scale_run_reports_exact_search_as_the_reference_and_each_sweep_point():
    model = ann.isotropic(16)
    results = ann.run_scale(
        3000, model, ("hnsw", "ivf"), cache=ann.BuildCache(None), queries=20, max_seconds=2
    )
    kinds = [item.kind for item in results]
    assert kinds[:2] == ["flat", "hnsw"] and "ivf" in kinds
    assert results[0].recall_at_10 == 1.0
    for kind, (setting, values) in ann.SWEEPS.items():
        assert [k for k in kinds if k.startswith(f"{kind}_")] == [f"{kind}_{setting}_{v}" for v in values]
    assert all(0.0 <= item.recall_at_10 <= 1.0 for item in results)
    figures = ann.scale_figures(results, "3k")
    assert figures["ann_3k_flat_recall_at_10"] == 1.0 and "ann_3k_hnsw_build_s" in figures
    assert "ann_3k_hnsw_ef_search_1024_build_s" not in figures  # a sweep point is not another build


def test_the_report_marks_targets_met_missed_and_missing():
    figures = {"http_p50_ms": 11.1, "http_p99_ms": 70.0, "qps_8_clients": 130.0, "rss_mb": None}
    status = {label: met for label, _, met in target_status(figures)}
    assert status["HTTP p50 <= 20 ms (seeds, one client)"] is True
    assert status["HTTP p99 <= 60 ms (seeds, one client)"] is False
    assert status[">= 120 requests/s with 8 clients"] is True
    assert status["peak RSS <= 1 GB"] is None
    text = render({**figures, "mode": "quick", "txtai_http_p50_ms": 27.0}, notes=["txtai skipped"])
    assert "met      HTTP p50" in text and "MISSED   HTTP p99" in text and "missing  peak RSS" in text
    assert "note: txtai skipped" in text
    assert "27.0 ms       0.410" in text  # txtai's figure and ours / txtai on the HTTP p50 row
