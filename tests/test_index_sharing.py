"""One index directory shared by real processes: `qa serve`, `qa ingest`, `qa ask`, `qa docs`,
`qa compact` and writers killed with SIGKILL, side by side as people run them.

Every process here is a real one (never a thread), and the commands are the installed `qa`
with the real model, except the writers that are killed on purpose, which embed with the
fake encoder to write fast and often.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from qa.index import open_index
from qa.reliability.serve import QaServe, qa_command
from qa.service import model_identity
from tests.fakes import FakeEncoder
from tests.helpers import (
    AUTH,
    BRUSSELS,
    INDEX_FILE,
    SEEDS,
    TOKEN,
    assert_consistent,
    qa_env,
    small_disk,
)

SEED_COUNT = len(list(SEEDS.glob("*.txt")))


def qa(*args: str, timeout: float = 600, **kwargs) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*qa_command(), *args], capture_output=True, text=True, timeout=timeout, env=qa_env(), **kwargs
    )


def spawn_qa(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*qa_command(), *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=qa_env()
    )


def document_ids(index_dir: Path) -> set[str]:
    with open_index(index_dir, None, create=False) as index, index.view() as view:
        return {document.id for document in view.iter_documents()}


def note(directory: Path, name: str, text: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{name}.txt"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory, real_encoder) -> Path:
    """An index of the seed articles built by `qa ingest`, copied by each test that changes it."""
    directory = tmp_path_factory.mktemp("seeded") / "index"
    done = qa("ingest", str(SEEDS), "--index", str(directory))
    assert done.returncode == 0, done.stderr
    return directory


@pytest.fixture
def index_dir(seeded: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "index"
    subprocess.run(["cp", "-a", str(seeded), str(copy)], check=True)
    return copy


@pytest.fixture
def server(index_dir: Path, tmp_path: Path) -> Iterator[str]:
    with QaServe(index_dir, tmp_path / "logs", env={"QA_API_TOKEN": TOKEN}) as serve:
        yield serve.start()


def wait_for_document(client: httpx.Client, document_id: str, within_s: float) -> float:
    """Seconds until the server returns the document; fails after `within_s`."""
    started = time.monotonic()
    while time.monotonic() - started < within_s:
        if client.get(f"/api/documents/{document_id}").status_code == 200:
            return time.monotonic() - started
        time.sleep(0.02)
    pytest.fail(f"the server did not serve {document_id} within {within_s} s")


# -- (a) a server and `qa ingest` beside it ------------------------------------------------------


@pytest.mark.model
def test_a_server_answers_with_a_document_that_qa_ingest_added_beside_it(
    server: str, index_dir: Path, tmp_path: Path
) -> None:
    text = "The saffron cooperative of Taliouine met the governor of Souss-Massa on Tuesday."
    added = qa("ingest", str(note(tmp_path / "notes", "saffron", text)), "--index", str(index_dir))
    assert added.returncode == 0 and "1 added" in added.stdout, added.stderr
    with httpx.Client(base_url=server, timeout=60, headers=AUTH) as client:
        wait_for_document(client, "saffron", within_s=1.0)
        hits = client.get("/api/ask", params={"q": "saffron cooperative Taliouine", "k": 1}).json()
        assert hits["passages"][0]["document"]["id"] == "saffron"
        posted = client.post("/api/documents", json={"id": "api-note", "text": "Written through the API."})
        assert posted.status_code == 201, posted.text
        assert client.get("/health").json()["documents"] == SEED_COUNT + 2
    assert {"saffron", "api-note"} <= document_ids(index_dir)  # both on disk: neither replaced the other


# -- (b) two `qa ingest` started together --------------------------------------------------------


@pytest.mark.model
def test_two_ingests_started_together_both_land(index_dir: Path, tmp_path: Path) -> None:
    paths = [
        note(tmp_path / f"batch{n}", f"together-{n}", f"Note number {n} on the harbour.") for n in (1, 2)
    ]
    processes = [spawn_qa("ingest", str(path), "--index", str(index_dir)) for path in paths]
    outcomes = [process.communicate(timeout=600) for process in processes]
    for process, (out, err) in zip(processes, outcomes, strict=True):
        assert process.returncode == 0 and "1 added" in out, err
    assert {"together-1", "together-2"} <= document_ids(index_dir)
    assert len(document_ids(index_dir)) == SEED_COUNT + 2


# -- (c) two servers on one directory ------------------------------------------------------------


@pytest.mark.model
def test_two_servers_on_one_index_serve_every_write_of_either(index_dir: Path, tmp_path: Path) -> None:
    with (
        QaServe(index_dir, tmp_path / "one", env={"QA_API_TOKEN": TOKEN}) as one,
        QaServe(index_dir, tmp_path / "two", env={"QA_API_TOKEN": TOKEN}) as two,
    ):
        urls = [one.start(), two.start()]
        clients = [httpx.Client(base_url=url, timeout=120, headers=AUTH) for url in urls]
        try:
            written = []
            for n in range(20):  # interleaved: even ones through the first server, odd through the second
                document_id = f"interleaved-{n:02d}"
                text = f"Dispatch {n}: the ferry number {n} left the port of Tartus at dawn."
                response = clients[n % 2].post("/api/documents", json={"id": document_id, "text": text})
                assert response.status_code == 201, response.text
                written.append(document_id)
            for client in clients:
                listed = client.get("/api/documents", params={"limit": 500}).json()
                assert {d["id"] for d in listed["documents"]} >= set(written)
                assert listed["total"] == SEED_COUNT + len(written)
                for document_id in (written[0], written[-1]):  # written through each server
                    assert client.get(f"/api/documents/{document_id}").status_code == 200
        finally:
            for client in clients:
                client.close()
    assert set(written) <= document_ids(index_dir)


# -- (d) writers killed while they hold the lock -------------------------------------------------

BATCH = 40
# Writes batches of documents in a loop (most of its time inside the write lock, the encoder
# being the fake one), replacing some earlier ones, and prints each version it published.
KILLED_WRITER = textwrap.dedent(
    f"""
    import sys
    from qa.documents import Document
    from qa.index import open_index
    from qa.ingest import ingest_documents
    from qa.service import model_identity
    from tests.fakes import FakeEncoder

    encoder = FakeEncoder()
    index = open_index(sys.argv[1], model_identity(encoder))
    for round_ in range(10_000):
        docs = [
            Document(f"w{{round_}}-{{i}}", "t", f"Round {{round_}} line {{i}}. " * 60, "t")
            for i in range({BATCH})
        ]
        docs += [Document(f"w0-{{i}}", "t", f"Replaced in round {{round_}}. " * 30, "t") for i in range(3)]
        report = ingest_documents(index, encoder, docs)
        with index.view() as view:
            print(view.version, view.count_documents(), flush=True)
    """
)


@pytest.mark.parametrize("run", range(10))
def test_a_writer_killed_at_a_random_moment_leaves_the_previous_or_the_complete_state(
    tmp_path: Path, run: int
) -> None:
    directory = tmp_path / "index"
    writer = subprocess.Popen(
        [sys.executable, "-c", KILLED_WRITER, str(directory)], stdout=subprocess.PIPE, text=True, env=qa_env()
    )
    try:
        assert writer.stdout is not None
        published = [writer.stdout.readline().split()]  # at least one write done
        time.sleep(random.Random(run).uniform(0.0, 1.5))
        writer.send_signal(signal.SIGKILL)
        writer.wait(timeout=60)
        published += [line.split() for line in writer.stdout.read().splitlines()]
    finally:
        writer.kill()
        writer.wait()
    encoder = FakeEncoder()
    with open_index(directory, model_identity(encoder), create=False) as index:
        assert_consistent(index)
        with index.view() as view:
            version, documents = view.version, view.count_documents()
        # The last acknowledged version, or the one being written when the writer died: whole.
        last = int(published[-1][0])
        assert version in (last, last + 1)
        assert documents == BATCH * version
        assert all(INDEX_FILE.match(p.name) for p in directory.iterdir()), sorted(os.listdir(directory))
        assert index.write().version == version + 1  # the lock is free: the next write goes through
        index.compact()  # and compaction removes whatever a killed one left
    vector_files = {p.name for p in directory.iterdir() if p.name.startswith(("vectors-", ".vectors-"))}
    assert vector_files == {_checkpoint(directory)}


def _checkpoint(directory: Path) -> str:
    import sqlite3

    with sqlite3.connect(directory / "store.sqlite") as db:
        return db.execute("SELECT checkpoint FROM state").fetchone()[0]


# -- (e) readers during a large write, paused mid-load ------------------------------------------

# A large write without the model: synthetic vectors under the model identity the index records,
# then a compaction, which replaces the vector checkpoint that readers load.
LARGE_WRITER = textwrap.dedent(
    """
    import sys
    import numpy as np
    from qa.index import DocumentUpsert, PassageUpsert, open_index

    index = open_index(sys.argv[1], None, create=False)
    rng = np.random.default_rng(7)
    upserts = []
    for n in range(int(sys.argv[2])):
        text = f"Synthetic filler report {n}. " * 20
        vectors = rng.standard_normal((4, index.model.dimension)).astype(np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        passages = [PassageUpsert(i * 10, i * 10 + 10, vectors[i], f"synthetic filler {n}") for i in range(4)]
        upserts.append(DocumentUpsert(f"filler-{n}", f"Filler {n}", "synthetic", text, str(n), passages, []))
    print("writing", flush=True)
    index.write(upserts)
    print("written", flush=True)
    index.compact()
    print("compacted", flush=True)
    index.close()
    """
)


def _large_write(directory: Path, documents: int) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", LARGE_WRITER, str(directory), str(documents)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=qa_env(),
    )


def _check_reader(process: subprocess.Popen[str], command: str) -> str:
    out, err = process.communicate(timeout=600)
    assert process.returncode == 0, f"{command}: {err[-2000:]}"
    assert "Traceback" not in err
    return out


@pytest.mark.model
@pytest.mark.parametrize("pause", ["reader", "writer"])
def test_readers_during_a_large_write_and_a_compaction_see_before_or_after_and_delete_nothing(
    index_dir: Path, pause: str
) -> None:
    ask = spawn_qa("ask", "who met Jeffrey in Brussels", "--index", str(index_dir), "--json", "-k", "3")
    docs = spawn_qa("docs", "--index", str(index_dir), "--json")
    readers = [ask, docs]
    writer = _large_write(index_dir, 5000)
    assert writer.stdout is not None
    if pause == "reader":
        # Stopped while loading (the model, the index), continued after the write and the
        # compaction replaced the vector file they may have been about to open.
        time.sleep(random.uniform(0.2, 2.0))
        for reader in readers:
            reader.send_signal(signal.SIGSTOP)
        _, err = writer.communicate(timeout=600)
        assert writer.returncode == 0, err
        for reader in readers:
            reader.send_signal(signal.SIGCONT)
    else:
        # The writer stopped in the middle of its transaction; readers go on meanwhile.
        assert writer.stdout.readline().strip() == "writing"
        time.sleep(0.3)
        writer.send_signal(signal.SIGSTOP)
        try:
            outputs = [_check_reader(reader, "reader") for reader in readers]
        finally:
            writer.send_signal(signal.SIGCONT)
        _, err = writer.communicate(timeout=600)
        assert writer.returncode == 0, err
    answer = json.loads(_check_reader(ask, "qa ask") if pause == "reader" else outputs[0])
    assert answer["passages"][0]["document"]["id"] == BRUSSELS
    listed = _check_reader(docs, "qa docs") if pause == "reader" else outputs[1]
    count = len(listed.splitlines())
    assert count in (SEED_COUNT, SEED_COUNT + 5000)  # before the write or after it, never between
    ids = document_ids(index_dir)
    assert len(ids) == SEED_COUNT + 5000 and BRUSSELS in ids  # nothing deleted, nothing lost
    with open_index(index_dir, None, create=False) as index:
        assert_consistent(index)


# -- (f) a full disk under `qa ingest` -----------------------------------------------------------


@pytest.mark.model
@pytest.mark.parametrize("free_kib", [0, 64, 256])
def test_qa_ingest_on_a_full_disk_says_so_in_one_line_and_keeps_the_index(
    seeded: Path, tmp_path: Path, free_kib: int
) -> None:
    with small_disk(tmp_path / "disk", "24m") as disk:
        directory = disk / "index"
        subprocess.run(["cp", "-a", str(seeded), str(directory)], check=True)
        before = document_ids(directory)
        filler = disk / "filler"
        _fill_leaving(filler, free_kib * 1024)
        text = "A long report on the harbour of Latakia and its cranes. " * 400
        done = qa("ingest", str(note(tmp_path / "notes", "latakia", text)), "--index", str(directory))
        filler.unlink()
        if done.returncode == 0:  # enough room at this level: it must then be complete
            assert "latakia" in document_ids(directory)
        else:
            lines = [line for line in done.stderr.splitlines() if line.strip()]
            assert "Traceback" not in done.stderr, done.stderr[-3000:]
            message = lines[-1].replace(str(directory), "DIR")
            assert message.startswith("Error: could not") and "the disk is full" in message, message
            assert document_ids(directory) == before
        with open_index(directory, None, create=False) as index:
            assert_consistent(index)
        again = qa("ingest", str(tmp_path / "notes"), "--index", str(directory))
        assert again.returncode == 0 and "latakia" in document_ids(directory), again.stderr


def _fill_leaving(filler: Path, free: int) -> None:
    """Take the disk's free space but `free` bytes with one file."""
    stats = os.statvfs(filler.parent)
    available = stats.f_bavail * stats.f_frsize - free
    with filler.open("wb") as handle:
        while available > 0:
            chunk = min(available, 1 << 20)
            try:
                handle.write(b"\0" * chunk)
                handle.flush()
            except OSError:
                break
            available -= chunk
