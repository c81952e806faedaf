"""Faults: processes killed mid-ingest, a full or read-only index disk, damaged index files, and
the model directory deleted under a running encoder and under a running `qa serve`.

The HTTP ones run the real server: `qa serve` as a child process on 127.0.0.1 with the real
model (killed with a real SIGKILL), or the app in-process over a real tmpfs that is really full
or really read-only (mounting one needs root, which CI has; elsewhere those two are skipped and
the monkeypatched variants still run).
"""

from __future__ import annotations

import errno
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from litestar.testing import TestClient

from qa.api import ApiSettings, create_app
from qa.documents import Document, iter_documents
from qa.index import open_index
from qa.index.local.store import StoreWriter
from qa.ingest import ingest_documents
from qa.reliability.serve import QaServe, ServeError
from qa.search import SearchService
from qa.service import model_identity
from tests.fakes import FakeEncoder
from tests.helpers import (
    AUTH,
    BRUSSELS,
    INDEX_FILE,
    REPO,
    SEEDS,
    TOKEN,
    assert_consistent,
    assert_error,
    fill,
    qa_env,
    seeded_service,
    small_disk,
)

BATCH = 25

# Ingests batches of documents forever, replacing a few old ones each time, and reports each
# published version; the test kills it at a random moment.
WRITER = f"""
import sys
from qa.documents import Document
from qa.index import open_index
from qa.ingest import ingest_documents
from qa.service import model_identity
from tests.fakes import FakeEncoder

encoder = FakeEncoder()
index = open_index(sys.argv[1], model_identity(encoder))
round_ = 0
while True:
    docs = [
        Document(f"d{{round_}}-{{i}}", f"title {{i}}", f"Round {{round_}} sentence {{i}}. " * 40, "t")
        for i in range({BATCH})
    ]
    if round_:
        docs += [Document(f"d0-{{i}}", "t", f"Replaced in round {{round_}}. " * 30, "t") for i in range(5)]
    ingest_documents(index, encoder, docs)
    with index.view() as view:
        print(view.version, flush=True)
    round_ += 1
"""


@pytest.mark.parametrize("seed", range(6))
def test_sigkill_during_ingest_leaves_a_previous_or_complete_index(tmp_path, seed):
    directory = tmp_path / "index"
    child = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(directory)], stdout=subprocess.PIPE, env=qa_env(), cwd=REPO
    )
    try:
        assert child.stdout is not None
        child.stdout.readline()  # at least one generation published
        time.sleep(random.Random(seed).uniform(0.0, 0.4))
        child.send_signal(signal.SIGKILL)
    finally:
        child.kill()
        child.wait()
    index = open_index(directory, model_identity(FakeEncoder()), create=False)
    assert_consistent(index)
    assert index.describe()["documents"] % BATCH == 0  # whole batches only
    assert all(INDEX_FILE.match(p.name) for p in directory.iterdir()), sorted(os.listdir(directory))
    ingest_documents(index, FakeEncoder(), [Document("after", "t", "Written after the kill.", "t")])
    assert_consistent(index)  # the lock is free again: the next write succeeds
    index.close()


@pytest.mark.model
def test_deleting_the_model_directory_does_not_break_a_loaded_encoder(real_encoder, tmp_path):
    from embeddings.encoder import Encoder

    copy = tmp_path / "model"
    shutil.copytree(real_encoder.directory, copy)
    encoder = Encoder(copy)
    before = encoder.encode_queries(["who met Jeffrey in Brussels"])
    shutil.rmtree(copy)
    after = encoder.encode_queries(["who met Jeffrey in Brussels"])
    assert float((before * after).sum()) > 0.9999


# -- the index directory full or read-only, over HTTP --------------------------------------------

NEW_DOCUMENT = {"id": "ankara", "text": "Talks in Ankara about the constitutional committee. " * 40}


def assert_still_serving(client: TestClient, health_before: dict) -> None:
    """The old index answers, unchanged: same generation, same counts, Brussels still found."""
    assert client.get("/health").json() == health_before
    # Lexical mode: with the fake encoder only the keyword match is meaningful.
    params = {"q": "جيفري بروكسل", "k": 3, "mode": "lexical"}
    hits = client.get("/api/ask", params=params).json()["passages"]
    assert hits[0]["document"]["id"] == BRUSSELS


def test_a_full_index_disk_gives_507_and_the_old_index_keeps_answering(tmp_path: Path) -> None:
    with small_disk(tmp_path / "disk") as disk:
        service = seeded_service(disk / "index", FakeEncoder())
        with TestClient(create_app(service, settings=ApiSettings(api_token=TOKEN))) as client:
            health = client.get("/health").json()
            files = sorted(os.listdir(disk / "index"))
            filler = fill(disk)
            detail = assert_error(client.post("/api/documents", json=NEW_DOCUMENT, headers=AUTH), 507)
            assert "full" in detail and "previous version is intact" in detail
            assert_error(client.delete(f"/api/documents/{BRUSSELS}", headers=AUTH), 507)
            assert_still_serving(client, health)
            assert sorted(os.listdir(disk / "index")) == files  # nothing half-written left
            filler.unlink()  # space again: writes work again, without a restart
            assert client.post("/api/documents", json=NEW_DOCUMENT, headers=AUTH).status_code == 201
            assert client.get("/health").json()["documents"] == health["documents"] + 1
        service.index.close()


def test_a_read_only_index_disk_gives_503_and_the_index_is_still_served(tmp_path: Path) -> None:
    with small_disk(tmp_path / "disk") as disk:
        # Built elsewhere and copied in: the index keeps retired SQLite files open for a while,
        # and a mount with files open for writing cannot be made read-only.
        seeded_service(tmp_path / "built", FakeEncoder()).index.close()
        shutil.copytree(tmp_path / "built", disk / "index")
        # Read-only for root too: a read-only mount, not permissions. The server opens the index
        # already read-only, as a running one cannot have its mount switched under open files.
        subprocess.run(["mount", "-o", "remount,ro", str(disk)], check=True)
        try:
            app = create_app(
                index_dir=disk / "index", encoder=FakeEncoder(), settings=ApiSettings(api_token=TOKEN)
            )
            with TestClient(app) as client:
                health = client.get("/health").json()
                detail = assert_error(client.post("/api/documents", json=NEW_DOCUMENT, headers=AUTH), 503)
                assert "read-only" in detail.lower() and "previous version is intact" in detail
                assert_error(client.delete(f"/api/documents/{BRUSSELS}", headers=AUTH), 503)
                assert_still_serving(client, health)
                subprocess.run(["mount", "-o", "remount,rw", str(disk)], check=True)
                assert client.post("/api/documents", json=NEW_DOCUMENT, headers=AUTH).status_code == 201
        finally:
            subprocess.run(["mount", "-o", "remount,rw", str(disk)], check=False, capture_output=True)


FAILED_WRITES = {
    # The disk as the operating system reports it: the whole write is refused at publishing.
    "ENOSPC": ("publish", OSError(errno.ENOSPC, os.strerror(errno.ENOSPC)), 507, os.strerror(errno.ENOSPC)),
    "EDQUOT": ("publish", OSError(errno.EDQUOT, os.strerror(errno.EDQUOT)), 507, os.strerror(errno.EDQUOT)),
    "EROFS": ("publish", OSError(errno.EROFS, os.strerror(errno.EROFS)), 503, os.strerror(errno.EROFS)),
    "EACCES": ("publish", OSError(errno.EACCES, os.strerror(errno.EACCES)), 503, os.strerror(errno.EACCES)),
    # The disk as SQLite reports it, half-way through writing a document.
    "SQLite full": (
        "add_document",
        sqlite3.OperationalError("database or disk is full"),
        507,
        "the disk is full",
    ),
}


@pytest.mark.parametrize(
    ("method", "error", "status", "words"), FAILED_WRITES.values(), ids=FAILED_WRITES.keys()
)
def test_a_failed_index_write_is_a_clear_5xx_and_reads_go_on(
    service: SearchService,
    monkeypatch: pytest.MonkeyPatch,
    method: str,
    error: Exception,
    status: int,
    words: str,
) -> None:
    """The same outcome without root: the write fails as the disk would make it fail."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise error

    with TestClient(create_app(service, settings=ApiSettings(api_token=TOKEN))) as client:
        health = client.get("/health").json()
        monkeypatch.setattr(StoreWriter, method, refuse)
        detail = assert_error(client.post("/api/documents", json=NEW_DOCUMENT, headers=AUTH), status)
        assert words in detail and "previous version is intact" in detail
        monkeypatch.undo()
        assert_still_serving(client, health)
        assert client.get(f"/api/documents/{NEW_DOCUMENT['id']}").status_code == 404  # nothing half-written


# -- the real `qa serve`: damaged files, SIGKILL mid-ingest, model directory deleted -------------

FAULT_DOCUMENT = (
    "The quokka marmalade festival {n} opened in a quiet harbour town. Growers from the coast "
    "brought {n} jars. The jury praised the bitter orange recipe of festival {n}. "
)


@pytest.fixture(scope="module")
def real_index(tmp_path_factory: pytest.TempPathFactory, real_encoder) -> Path:
    """A small index built with the real model: the Brussels article and one more."""
    directory = tmp_path_factory.mktemp("real") / "index"
    index = open_index(directory, model_identity(real_encoder))
    seeds = [SEEDS / f"{BRUSSELS}.txt", SEEDS / "003_ce4d1666969f5692.txt"]
    ingest_documents(index, real_encoder, list(iter_documents(seeds)))
    index.compact()  # the vectors in the checkpoint file, which the damage test truncates
    index.close()
    return directory


def last_line(text: str) -> str:
    lines = [line for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else ""


@pytest.mark.model
def test_qa_serve_refuses_a_truncated_index_file_with_how_to_rebuild(
    real_index: Path, tmp_path: Path
) -> None:
    # A truncated copy is the likely damage; other damage to either file takes the same path
    # (tests/test_index.py checks both files in-process).
    directory = tmp_path / "index"
    shutil.copytree(real_index, directory)
    vectors = next(directory.glob("vectors-*.faiss"))
    vectors.write_bytes(vectors.read_bytes()[: vectors.stat().st_size // 2])
    server = QaServe(directory, tmp_path / "logs")
    with pytest.raises(ServeError):
        server.start()
    assert server.process is not None and server.process.returncode == 1
    stderr = server.stderr()
    message = last_line(stderr)  # one line, the last one, with what to do
    assert message == (
        f"Error: the vector file {vectors} is corrupt. Rebuild the index: delete {directory} "
        f"and run qa ingest PATH --index {directory}"
    ), stderr[-2000:]
    assert "Traceback" not in stderr


@pytest.fixture(scope="module")
def killed_and_restarted(
    real_index: Path, real_encoder, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict]:
    """`qa serve` (on its own copy of the model) killed with SIGKILL while two clients keep
    posting documents, the index checked offline, then the server started again."""
    workdir = tmp_path_factory.mktemp("killed")
    directory, model = workdir / "index", workdir / "model"
    shutil.copytree(real_index, directory)
    shutil.copytree(real_encoder.directory, model)
    server = QaServe(directory, workdir / "logs", env={"QA_API_TOKEN": TOKEN, "QA_MODEL": str(model)})
    url = server.start()
    sent: dict[str, str] = {}
    acknowledged: list[str] = []
    failures: list[str] = []
    stop = threading.Event()

    def writer(number: int) -> None:
        with httpx.Client(base_url=url, timeout=120, headers=AUTH) as client:
            for n in range(number * 1000, number * 1000 + 200):
                if stop.is_set():
                    return
                document_id = f"festival-{n}"
                sent[document_id] = FAULT_DOCUMENT.format(n=n) * 3
                try:
                    response = client.post(
                        "/api/documents", json={"id": document_id, "text": sent[document_id]}
                    )
                except httpx.HTTPError as exc:  # the server died under this request
                    failures.append(f"{document_id}: {type(exc).__name__}")
                    return
                assert response.status_code == 201, response.text
                acknowledged.append(document_id)

    writers = [threading.Thread(target=writer, args=(number,)) for number in range(2)]
    for thread in writers:
        thread.start()
    delay = random.uniform(1.5, 5.0)
    time.sleep(delay)
    status = server.kill(signal.SIGKILL)
    stop.set()
    for thread in writers:
        thread.join()

    index = open_index(directory, model_identity(real_encoder), create=False)
    try:
        assert_consistent(index)
        with index.view() as view:
            stored = {document_id: view.document(document_id) for document_id in sent}
            documents = view.count_documents()
        present = {document_id for document_id, document in stored.items() if document is not None}
        for document_id in present:
            assert stored[document_id].text == sent[document_id]  # complete, never partial
        leftovers = sorted(p.name for p in directory.iterdir() if not INDEX_FILE.match(p.name))
    finally:
        index.close()
    url = server.start()  # the same directory, the same model copy
    try:
        yield {
            "server": server,
            "url": url,
            "model": model,
            "delay": delay,
            "status": status,
            "acknowledged": acknowledged,
            "present": present,
            "failures": failures,
            "documents": documents,
            "leftovers": leftovers,
            "sent": sent,
        }
    finally:
        server.stop()


@pytest.mark.model
def test_qa_serve_killed_mid_ingest_restarts_on_a_previous_or_complete_index(
    killed_and_restarted: dict,
) -> None:
    run = killed_and_restarted
    context = f"killed after {run['delay']:.1f} s; acknowledged {len(run['acknowledged'])}"
    assert run["status"] == -signal.SIGKILL
    assert run["failures"], f"no request was cut off by the kill ({context})"
    # Every acknowledged document survived; at most the two in flight were published as well.
    assert set(run["acknowledged"]) <= run["present"], context
    assert len(run["present"] - set(run["acknowledged"])) <= 2, context
    assert run["leftovers"] == []
    with httpx.Client(base_url=run["url"], timeout=60) as client:
        assert client.get("/health").json()["documents"] == run["documents"]
        for document_id in sorted(run["present"])[:5]:
            assert client.get(f"/api/documents/{document_id}").json()["text"] == run["sent"][document_id]
        for document_id in sorted(set(run["sent"]) - run["present"])[:5]:
            assert client.get(f"/api/documents/{document_id}").status_code == 404
        hits = client.post("/api/ask", json={"question": "who met Jeffrey in Brussels", "k": 3}).json()
        assert hits["passages"][0]["document"]["id"] == BRUSSELS


@pytest.mark.model
def test_qa_serve_keeps_answering_after_its_model_directory_is_deleted(killed_and_restarted: dict) -> None:
    shutil.rmtree(killed_and_restarted["model"])
    with httpx.Client(base_url=killed_and_restarted["url"], timeout=120, headers=AUTH) as client:
        hits = client.post("/api/ask", json={"question": "who met Jeffrey in Brussels", "k": 3}).json()
        assert hits["passages"][0]["document"]["id"] == BRUSSELS
        added = client.post("/api/documents", json={"id": "after-rmtree", "text": FAULT_DOCUMENT.format(n=0)})
        assert added.status_code == 201, added.text
        hits = client.get("/api/ask", params={"q": "quokka marmalade festival 0", "k": 1}).json()["passages"]
        assert hits[0]["document"]["id"] in {"after-rmtree", *killed_and_restarted["present"]}
        assert client.get("/health").json()["status"] == "ok"


# -- one model shared by concurrent requests ------------------------------------------------------


@pytest.mark.model
def test_counting_tokens_during_an_encode_does_not_break_it(real_encoder) -> None:
    texts = ["بحث مصطفى مع جيفري", "who met Jeffrey in Brussels and what did they discuss " * 3, "short"]
    errors: list[str] = []
    done = threading.Event()

    def count() -> None:
        while not done.is_set():
            real_encoder.count_tokens("التصعيد في إدلب " * 10)

    counters = [threading.Thread(target=count) for _ in range(2)]
    for thread in counters:
        thread.start()
    try:
        for _ in range(40):  # the race hits most encodes of batches of unequal lengths
            try:
                real_encoder.encode_documents(texts, show_progress=False)
            except ValueError as exc:
                errors.append(str(exc))
                break
    finally:
        done.set()
        for thread in counters:
            thread.join()
    assert errors == []
