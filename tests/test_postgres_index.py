"""The PostgreSQL backend against a real server: the same ranking as the local backend, and one
clear line for every way a URL, a server or a user can be wrong."""

from __future__ import annotations

import json
import socket
import subprocess
import uuid
from pathlib import Path

import pytest

from qa.documents import Document, iter_documents
from qa.errors import IndexStateError, StorageError
from qa.index import open_index
from qa.ingest import ingest_documents
from qa.lexical import query_terms
from qa.reliability.serve import qa_command
from qa.search import SearchService
from qa.service import model_identity
from tests.fakes import FakeEncoder
from tests.helpers import REPO, SEEDS

SEED_QUESTIONS = [
    json.loads(line) for line in (REPO / "tests/data/seed_questions.jsonl").read_text().splitlines()
]


def seed_documents() -> list[Document]:
    return [d for d in iter_documents([SEEDS]) if isinstance(d, Document)]


def built(location: str, encoder) -> SearchService:
    index = open_index(location, model_identity(encoder))
    ingest_documents(index, encoder, seed_documents())
    return SearchService(index, encoder)


def spans(service: SearchService, ranked: list[tuple[int, float]]) -> list[tuple[str, int]]:
    with service.index.view() as view:
        passages = view.passages([pid for pid, _ in ranked])
    return [(passages[pid].document_id, passages[pid].start) for pid, _ in ranked]


def test_bm25_in_postgresql_ranks_and_scores_like_fts5(tmp_path, postgres_url, fake_encoder):
    local, shared = built(str(tmp_path / "index"), fake_encoder), built(postgres_url, fake_encoder)
    compared = 0
    for question in SEED_QUESTIONS:
        terms = query_terms(question["question"])
        with local.index.view() as a, shared.index.view() as b:
            ranked_a, ranked_b = a.lexical_search(terms, 20), b.lexical_search(terms, 20)
        assert spans(local, ranked_a) == spans(shared, ranked_b), question["question"]
        assert [s for _, s in ranked_a] == pytest.approx([s for _, s in ranked_b], rel=1e-6)
        compared += bool(ranked_a)
    assert compared >= 20  # the Arabic questions match terms; the English ones mostly do not


def test_the_seed_questions_rank_the_same_top_passage_on_both_backends(tmp_path, postgres_url, real_encoder):
    local, shared = built(str(tmp_path / "index"), real_encoder), built(postgres_url, real_encoder)
    differences = []
    for question in SEED_QUESTIONS:
        tops = []
        for service in (local, shared):
            hit = service.ask(question["question"], k=1).passages[0]
            tops.append((hit.document.id, hit.start))
        if tops[0] != tops[1]:
            differences.append((question["question"], tops))
    assert not differences


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("postgresql://localhost:notaport/db", "not valid"),
        ("mysql://localhost/db", "postgresql://"),
        ("postgresql://localhost/db?schema=Bad-Name", "schema="),
    ],
)
def test_a_bad_url_is_one_clear_error(url, says):
    with pytest.raises(IndexStateError, match=says):
        open_index(url, model_identity(FakeEncoder()))


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_an_unreachable_server_is_one_line_from_the_cli():
    url = f"postgresql://qa@127.0.0.1:{_closed_port()}/qa"
    run = subprocess.run([*qa_command(), "docs", "--index", url], capture_output=True, text=True, timeout=60)
    assert run.returncode == 1
    assert run.stderr.count("\n") == 1 and "Traceback" not in run.stderr
    assert "cannot reach PostgreSQL at" in run.stderr and "Connection refused" in run.stderr


def test_wrong_credentials_are_one_line_without_the_password(postgres_server):
    role = f"qa_{uuid.uuid4().hex[:8]}"
    postgres_server.psql(f"CREATE ROLE {role} LOGIN PASSWORD 'right-one'")
    postgres_server.require_password_for(role)
    url = f"postgresql://{role}:wrong-one@{postgres_server.host}:{postgres_server.port}/postgres"
    with pytest.raises(StorageError) as caught:
        open_index(url, model_identity(FakeEncoder()))
    message = str(caught.value)
    assert "refused the credentials" in message and "wrong-one" not in message and "\n" not in message


def test_a_user_who_may_not_enable_pgvector_is_told_who_can(postgres_server):
    name = f"qa_{uuid.uuid4().hex[:8]}"
    postgres_server.psql(f"CREATE ROLE {name} LOGIN")
    postgres_server.psql(f"CREATE DATABASE {name} OWNER {name}")
    with pytest.raises(IndexStateError, match="CREATE EXTENSION vector"):
        open_index(postgres_server.url(database=name, user=name), model_identity(FakeEncoder()))


def test_a_server_without_pgvector_is_told_to_install_it(postgres_server):
    name = f"qa_{uuid.uuid4().hex[:8]}"
    postgres_server.psql(f"CREATE DATABASE {name}")
    # PostgreSQL 18 looks for extensions along this path: an empty one is a server without pgvector.
    postgres_server.psql(f"ALTER DATABASE {name} SET extension_control_path = '/nonexistent'")
    with pytest.raises(IndexStateError, match="no pgvector extension: install pgvector"):
        open_index(postgres_server.url(database=name), model_identity(FakeEncoder()))


def test_two_indexes_share_one_database_by_schema(postgres_server, fake_encoder):
    first = open_index(
        f"{postgres_server.url()}?schema=one_{uuid.uuid4().hex[:6]}", model_identity(fake_encoder)
    )
    second = open_index(
        f"{postgres_server.url()}?schema=two_{uuid.uuid4().hex[:6]}", model_identity(fake_encoder)
    )
    with first, second:
        ingest_documents(first, fake_encoder, seed_documents()[:1])
        with first.view() as a, second.view() as b:
            assert (a.count_documents(), b.count_documents()) == (1, 0)


def test_the_cli_works_on_a_postgresql_index(postgres_url, tmp_path):
    """ingest, ask, docs, export, remove and compact, each a real process with the real model."""

    def qa(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*qa_command(), *args, "--index", postgres_url],
            capture_output=True,
            text=True,
            timeout=600,
            cwd=tmp_path,
        )

    assert qa("ingest", str(SEEDS)).returncode == 0
    answer = qa("ask", "who met Jeffrey in Brussels", "--json")
    assert answer.returncode == 0, answer.stderr
    assert json.loads(answer.stdout)["passages"][0]["document"]["id"] == "002_b8689e71eb8b336f"
    assert len(qa("docs", "--json").stdout.splitlines()) == 5
    exported = qa("export").stdout.splitlines()
    assert len(exported) == 5
    assert qa("remove", "002_b8689e71eb8b336f").returncode == 0
    assert len(qa("docs", "--json").stdout.splitlines()) == 4
    compacted = qa("compact", "--json")
    assert compacted.returncode == 0 and json.loads(compacted.stdout)["compacted"] is True
    again = tmp_path / "again.jsonl"
    again.write_text("\n".join(exported) + "\n", encoding="utf-8")
    report = qa("ingest", str(Path(again)), "--json")
    assert report.returncode == 0 and json.loads(report.stdout)["added"] == ["002_b8689e71eb8b336f"]


def test_tokens_fold_latin_letters_as_fts5_does():
    """Every Latin letter with marks, tokenized here and by FTS5's unicode61 (remove_diacritics 2):
    the same tokens, or BM25 would rank transliterations (muḥammad, ṣalāḥ) differently."""
    import sqlite3

    from qa.index.postgres.lexical import tokens

    letters = [chr(c) for c in [*range(0x00C0, 0x0250), *range(0x1E00, 0x1F00)] if chr(c).isalpha()]
    connection = sqlite3.connect(":memory:")
    connection.execute("CREATE VIRTUAL TABLE t USING fts5(body, tokenize = 'unicode61 remove_diacritics 2')")
    connection.execute("CREATE VIRTUAL TABLE v USING fts5vocab(t, 'row')")
    differences = []
    for letter in letters:
        word = f"x{letter.casefold()}y"
        connection.execute("DELETE FROM t")
        connection.execute("INSERT INTO t (body) VALUES (?)", (word,))
        theirs = sorted(term for (term,) in connection.execute("SELECT term FROM v"))
        if sorted(tokens(word)) != theirs:
            differences.append((hex(ord(letter)), tokens(word), theirs))
    assert not differences


def test_dense_search_returns_k_passages_after_the_nearest_were_deleted(postgres_url):
    """Deleted rows not yet vacuumed take HNSW candidates; iterative scans keep searching until
    k live passages are found (without them: none of 10 came back here)."""
    import numpy as np

    from qa.index.base import DocumentUpsert, ModelIdentity, PassageUpsert

    rng = np.random.default_rng(3)
    vectors = rng.normal(size=(600, 8)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    query = vectors[0]
    nearest = np.argsort(-(vectors @ query))
    upserts = [
        DocumentUpsert(f"d{i}", "t", "s", "text", "h", [PassageUpsert(0, 4, vectors[i], "text")], [])
        for i in range(600)
    ]
    with open_index(postgres_url, ModelIdentity("toy", "toy-1", 8)) as index:
        index.write(upserts)
        index.write(deletes=[f"d{i}" for i in nearest[:400]])
        with index.view() as view:
            view._db.execute("SET LOCAL enable_seqscan = off")  # the plan a large table gets
            found = view.dense_search(query, 10)
    assert len(found) == 10
