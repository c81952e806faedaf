"""`qa bench --scaling` at a tiny scale: the dense-search figures on both backends, and the two
load generators against a stub server. No timing is asserted: only that figures exist and mean
what they say."""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Iterator

import numpy as np
import pytest

from qa.bench.ann import VectorModel
from qa.bench.scaling import GENERATORS, ScalingOptions, dense_figures, exact_top, recall, render


def _clustered(dimension: int = 384, components: int = 4) -> VectorModel:
    """A small mixture: a few random centres and a narrow spread, like topics."""
    rng = np.random.default_rng(3)
    centres = rng.standard_normal((components, dimension)).astype(np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    return VectorModel("mixture", centres, (0.05 * np.eye(dimension)).astype(np.float32))


def test_dense_figures_at_tiny_scale(postgres_url, tmp_path):
    options = ScalingOptions(
        passages=300,
        queries=20,
        warmup_queries=3,
        documents_per_write=25,  # 75 documents of 4 passages: three writes
        ef_sweep=(40,),
        exact_queries=5,
    )
    figures = dense_figures(postgres_url, tmp_path / "local", _clustered(), options)
    assert figures["dense_passages"] == 300 and figures["dense_queries"] == 20
    for backend in ("local", "pg"):
        assert figures[f"dense_{backend}_writes"] == 3
        for key in ("write_passages_per_s", "search_p50_ms", "search_p90_ms", "search_p99_ms"):
            assert figures[f"dense_{backend}_{key}"] > 0
        assert 0.0 <= figures[f"dense_{backend}_recall_at_10"] <= 1.0
    assert figures["dense_local_vector_index"] == "flat"  # 300 passages: exact search
    assert figures["dense_local_recall_at_10"] > 0.9
    assert figures["dense_pg_vector_index"] == "hnsw"
    assert figures["dense_pg_bytes"] > figures["dense_pg_hnsw_index_bytes"] > 0
    assert figures["dense_pg_bytes_per_passage"] > 0
    for key in ("dense_pg_sql_ef40_recall_at_10", "dense_pg_sql_seqscan_recall_at_10"):
        assert 0.0 <= figures[key] <= 1.0
    text = render({**_machine(), **figures}, ["a note"])
    assert "recall@10" in text and "note: a note" in text


def _machine() -> dict:
    return {
        "cpu_model": "test",
        "cpu_cores": 2,
        "cpu_avx512": False,
        "cpu_avx512_bf16": False,
        "date": "today",
        "postgres_server": "test",
        "load_average_start": 0.0,
        "load_average_end": 0.0,
        "scaling_seconds": 1.0,
    }


def test_recall_counts_the_true_neighbours_found():
    vectors = np.eye(4, dtype=np.float32)
    truth = exact_top(vectors, vectors[:2], 1)
    assert truth.tolist() == [[0], [1]]
    assert recall([[0], [3]], truth) == 0.5


class _Stub(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as uvicorn

    def do_POST(self) -> None:
        length = int(self.headers["Content-Length"])
        question = json.loads(self.rfile.read(length))["question"]
        body = json.dumps({"question": question, "results": []}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def stub_urls() -> Iterator[list[str]]:
    servers = [http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Stub) for _ in range(2)]
    for server in servers:
        threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield [f"http://127.0.0.1:{server.server_address[1]}" for server in servers]
    finally:
        for server in servers:
            server.shutdown()
            server.server_close()


@pytest.mark.parametrize("generator", sorted(GENERATORS))
def test_load_generators_spread_clients_over_the_servers(stub_urls, generator):
    run = GENERATORS[generator](stub_urls, ["one", "two", "three"], clients=4, warmup_s=0.1, seconds=0.4)
    assert run.generator == generator and run.clients == 4
    assert run.errors == 0
    assert len(run.latencies_ms) > 0 and run.requests_per_s > 0
    assert all(count > 0 for count in run.per_server)  # client i asks server i % 2
