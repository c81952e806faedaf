"""Stateless workers on one PostgreSQL index, as real processes: `qa serve` workers side by
side, a writer killed mid-write, a database that goes away and comes back, and reads from a
streaming replica."""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from qa.index import open_index
from qa.index.postgres.embedded import EmbeddedPostgres, start_primary, start_replica
from qa.reliability.serve import QaServe, qa_command
from tests.helpers import AUTH, SEEDS, TOKEN, qa_env


def ingest_seeds(url: str) -> None:
    run = subprocess.run(
        [*qa_command(), "ingest", str(SEEDS), "--index", url], capture_output=True, text=True, env=qa_env()
    )
    assert run.returncode == 0, run.stderr


def ask(client: httpx.Client, question: str) -> httpx.Response:
    return client.post("/api/ask", json={"question": question, "k": 3})


def wait_until(check, within_s: float, what: str) -> float:
    started = time.monotonic()
    while time.monotonic() - started < within_s:
        if check():
            return time.monotonic() - started
        time.sleep(0.05)
    pytest.fail(f"{what} did not happen within {within_s} s")


@pytest.fixture
def own_server(tmp_path: Path) -> Iterator[EmbeddedPostgres]:
    """A PostgreSQL server of this test's own, which it may stop and start."""
    server = start_primary(tmp_path / "primary")
    try:
        yield server
    finally:
        server.stop("immediate")


def serving(url: str, logs: Path, **env: str) -> QaServe:
    return QaServe(url, logs, env={"QA_API_TOKEN": TOKEN, **env})  # type: ignore[arg-type]


@pytest.mark.model
def test_a_write_through_one_worker_is_answered_by_the_other_on_its_next_question(postgres_url, tmp_path):
    ingest_seeds(postgres_url)
    with serving(postgres_url, tmp_path / "a") as a, serving(postgres_url, tmp_path / "b") as b:
        first, second = a.start(), b.start()
        with (
            httpx.Client(base_url=first, timeout=60, headers=AUTH) as one,
            httpx.Client(base_url=second, timeout=60, headers=AUTH) as other,
        ):
            text = "The saffron cooperative of Taliouine met the governor of Souss-Massa on Tuesday."
            added = one.post("/api/documents", json={"id": "saffron", "text": text})
            assert added.status_code in (200, 201), added.text
            # No waiting: the other worker's next view begins after the commit.
            answer = ask(other, "Who did the saffron cooperative of Taliouine meet?")
            assert answer.status_code == 200
            assert answer.json()["passages"][0]["document"]["id"] == "saffron"
            assert other.delete("/api/documents/saffron").status_code in (200, 204)
            assert one.get("/api/documents/saffron").status_code == 404


_WRITER = textwrap.dedent(
    """
    import sys, time
    from qa.documents import Document
    from qa.index import open_index
    from qa.index.postgres import backend
    from qa.ingest import ingest_documents
    from qa.service import model_identity
    from tests.fakes import FakeEncoder

    if sys.argv[2] == "stall":
        # Every row is in, uncommitted, when the parent kills us.
        publish = backend._Writer.publish
        def stalled(self):
            print("in transaction", flush=True)
            time.sleep(60)
            return publish(self)
        backend._Writer.publish = stalled
    encoder = FakeEncoder()
    index = open_index(sys.argv[1], model_identity(encoder))
    documents = [
        Document(id=f"bulk-{i:04d}", title=f"Bulk {i}", source="bulk",
                 text=" ".join(f"Sentence {j} of bulk note {i} about Idlib and Geneva." for j in range(40)))
        for i in range(400)
    ]
    print("writing", flush=True)
    ingest_documents(index, encoder, documents)
    print("done", flush=True)
    """
)


def _consistent_counts(url: str) -> tuple[int, int]:
    """Documents and passages, checked against the rows: nothing half-written."""
    with open_index(url, None, create=False) as index, index.view() as view:
        documents = list(view.iter_documents())
        passages = list(view.iter_passages())
        assert view.count_documents() == len(documents)
        assert view.count_passages() == len(passages)
        assert {p.document_id for p in passages} <= {d.id for d in documents}
        return len(documents), len(passages)


def test_a_writer_killed_mid_write_leaves_the_previous_state_or_the_whole_write(postgres_url, fake_encoder):
    from qa.ingest import ingest_documents
    from qa.service import model_identity
    from tests.test_index_contract import CORPUS

    with open_index(postgres_url, model_identity(fake_encoder)) as index:
        ingest_documents(index, fake_encoder, CORPUS)
    before = _consistent_counts(postgres_url)

    def writer(mode: str) -> subprocess.Popen[str]:
        process = subprocess.Popen(
            [sys.executable, "-c", _WRITER, postgres_url, mode],
            stdout=subprocess.PIPE,
            text=True,
            env=qa_env(),
        )
        assert process.stdout is not None and process.stdout.readline().strip() == "writing"
        return process

    # Killed with every row of its write inserted and not committed: nothing of it remains.
    stalled = writer("stall")
    assert stalled.stdout is not None and stalled.stdout.readline().strip() == "in transaction"
    stalled.send_signal(signal.SIGKILL)
    stalled.wait()
    assert _consistent_counts(postgres_url) == before
    # Killed at random moments: the previous state or the whole write.
    for _ in range(2):
        process = writer("run")
        time.sleep(random.uniform(0.05, 1.5))
        process.send_signal(signal.SIGKILL)
        process.wait()
        documents, _ = _consistent_counts(postgres_url)
        assert documents in (before[0], before[0] + 400)
    finished = writer("run")
    assert finished.wait(timeout=300) == 0
    assert _consistent_counts(postgres_url)[0] == before[0] + 400


@pytest.mark.model
def test_a_database_that_goes_away_gives_503_and_the_worker_recovers_by_itself(own_server, tmp_path):
    url = own_server.url()
    ingest_seeds(url)
    with serving(url, tmp_path / "logs") as worker:
        base = worker.start()
        with httpx.Client(base_url=base, timeout=60) as client:
            assert ask(client, "who met Jeffrey in Brussels").status_code == 200
            own_server.stop("fast")
            down = ask(client, "who met Jeffrey in Brussels")
            assert down.status_code == 503
            assert "cannot reach PostgreSQL at" in down.json()["detail"]
            assert "Traceback" not in worker.stderr()
            own_server.start()
            wait_until(lambda: ask(client, "who met Jeffrey in Brussels").status_code == 200, 60, "recovery")
            assert ask(client, "who met Jeffrey in Brussels").json()["passages"][0]["document"]["id"] == (
                "002_b8689e71eb8b336f"
            )


@pytest.mark.model
def test_a_worker_reads_from_a_replica_and_writes_to_the_primary(own_server, tmp_path):
    replica = start_replica(own_server, tmp_path / "replica")
    try:
        primary_url, replica_url = own_server.url(), replica.url()
        ingest_seeds(primary_url)
        with serving(primary_url, tmp_path / "logs", QA_INDEX_READ_URL=replica_url) as worker:
            base = worker.start()
            with httpx.Client(base_url=base, timeout=60, headers=AUTH) as client:
                text = "The saffron cooperative of Taliouine met the governor of Souss-Massa on Tuesday."
                assert client.post("/api/documents", json={"id": "saffron", "text": text}).status_code in (
                    200,
                    201,
                )
                question = "Who did the saffron cooperative of Taliouine meet?"
                lag = wait_until(
                    lambda: ask(client, question).json()["passages"][0]["document"]["id"] == "saffron",
                    30,
                    "the write reaching the replica",
                )
                print(f"replica lag as seen by a worker: {lag:.2f} s")
                # With the primary gone, questions are still answered, from the replica...
                own_server.stop("fast")
                answer = ask(client, question)
                assert answer.status_code == 200
                assert answer.json()["passages"][0]["document"]["id"] == "saffron"
                # ...and writes, which need the primary, are refused with a clear 503.
                refused = client.post("/api/documents", json={"id": "late", "text": "Late news from Homs."})
                assert refused.status_code == 503 and "PostgreSQL" in refused.json()["detail"]
    finally:
        replica.stop("immediate")


def test_an_index_url_with_a_schema_the_replica_lacks_is_one_clear_error(own_server, tmp_path):
    replica = start_replica(own_server, tmp_path / "replica")
    try:
        from qa.errors import IndexStateError
        from qa.service import model_identity
        from tests.fakes import FakeEncoder

        schema = f"s_{uuid.uuid4().hex[:8]}"
        with pytest.raises(IndexStateError, match="no index at"):
            open_index(
                f"{own_server.url()}?schema={schema}",
                model_identity(FakeEncoder()),
                create=False,
                read_location=replica.url(),
            )
    finally:
        replica.stop("immediate")
