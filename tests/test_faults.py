"""Faults: a process killed mid-ingest, and the model directory deleted under a running encoder."""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
import time

import pytest

from qa.index import Index
from qa.service import model_identity
from tests.conftest import REPO
from tests.fakes import FakeEncoder

BATCH = 25

# Ingests batches of documents forever, replacing a few old ones each time, and reports each
# published generation; the test kills it at a random moment.
WRITER = f"""
import sys
from qa.documents import Document
from qa.index import Index
from qa.ingest import ingest_documents
from qa.service import model_identity
from tests.fakes import FakeEncoder

encoder = FakeEncoder()
index = Index.open(sys.argv[1], model_identity(encoder))
round_ = 0
while True:
    docs = [
        Document(f"d{{round_}}-{{i}}", f"title {{i}}", f"Round {{round_}} sentence {{i}}. " * 40, "t")
        for i in range({BATCH})
    ]
    if round_:
        docs += [Document(f"d0-{{i}}", "t", f"Replaced in round {{round_}}. " * 30, "t") for i in range(5)]
    ingest_documents(index, encoder, docs)
    print(index.snapshot().generation, flush=True)
    round_ += 1
"""


def assert_consistent(index: Index) -> None:
    snapshot = index.snapshot()
    store = snapshot.store
    passages = store.count_passages()
    assert len(snapshot.vectors) == passages
    with store._lock:
        lexical_rows = store._db.execute("SELECT count(*) FROM lexical").fetchone()[0]
        orphans = store._db.execute(
            "SELECT count(*) FROM documents d WHERE NOT EXISTS"
            " (SELECT 1 FROM passages p WHERE p.document_id = d.id)"
        ).fetchone()[0]
    assert lexical_rows == passages
    assert orphans == 0  # no document without its passages: nothing half-indexed
    assert store.count_documents() % BATCH == 0
    assert snapshot.manifest["counts"] == {"documents": store.count_documents(), "passages": passages}


@pytest.mark.parametrize("seed", range(6))
def test_sigkill_during_ingest_leaves_a_previous_or_complete_index(tmp_path, seed):
    directory = tmp_path / "index"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    child = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(directory)], stdout=subprocess.PIPE, env=env, cwd=REPO
    )
    try:
        assert child.stdout is not None
        child.stdout.readline()  # at least one generation published
        time.sleep(random.Random(seed).uniform(0.0, 0.4))
        child.send_signal(signal.SIGKILL)
    finally:
        child.kill()
        child.wait()
    index = Index.open(directory, model_identity(FakeEncoder()), create=False)
    assert_consistent(index)
    generation = index.snapshot().generation
    leftovers = [p.name for p in directory.iterdir() if f"{generation:06d}" not in p.name]
    assert leftovers == ["manifest.json"]


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
