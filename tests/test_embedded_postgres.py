"""The throwaway PostgreSQL server of qa.index.postgres.embedded: what the PostgreSQL backend's
tests and the benchmark stand on (pgvector, Arabic text search, a streaming replica, a restart and
a crash that lose nothing committed)."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from qa.index.postgres import embedded
from qa.index.postgres.embedded import (
    EmbeddedPostgres,
    EmbeddedPostgresError,
    running_primary,
    start_primary,
    start_replica,
)


@pytest.fixture(scope="module")
def primary(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedPostgres]:
    with running_primary(tmp_path_factory.mktemp("pg") / "primary") as server:
        yield server


def _poll(query: str, conn: psycopg.Connection, seconds: float = 10.0) -> tuple | None:
    deadline = time.monotonic() + seconds
    while (row := conn.execute(query).fetchone()) is None and time.monotonic() < deadline:
        time.sleep(0.05)
    return row


def test_primary_has_pgvector_hnsw_and_arabic_text_search(primary: EmbeddedPostgres) -> None:
    assert primary.running()
    assert primary.url() == f"postgresql://postgres@127.0.0.1:{primary.port}/postgres"
    with psycopg.connect(primary.url(), autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
        conn.execute("CREATE TABLE passages (id int PRIMARY KEY, embedding halfvec(3) NOT NULL)")
        conn.execute("CREATE INDEX passages_hnsw ON passages USING hnsw (embedding halfvec_ip_ops)")
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO passages VALUES (%s, %s::halfvec)",
                [(1, "[1,0,0]"), (2, "[0,1,0]"), (3, "[0,0,1]"), (4, "[0.7,0.7,0]")],
            )
        conn.execute("SET enable_seqscan = off")
        query = "SELECT id FROM passages ORDER BY embedding <#> %s::halfvec LIMIT 2"
        plan = "\n".join(row[0] for row in conn.execute("EXPLAIN " + query, ("[0,1,0.1]",)))
        assert "passages_hnsw" in plan
        assert [row[0] for row in conn.execute(query, ("[0,1,0.1]",))] == [2, 4]

        vector = conn.execute("SELECT to_tsvector('arabic', 'الرئيس السوري')::text").fetchone()[0]
        assert vector.count(":") == 2  # two lexemes, with their positions
        matched = conn.execute(
            "SELECT to_tsvector('arabic', 'الرئيس السوري') @@ plainto_tsquery('arabic', 'السوري')"
        ).fetchone()[0]
        assert matched is True


def test_psql_and_create_database(primary: EmbeddedPostgres) -> None:
    primary.create_database('news "ar"')
    assert primary.psql("SELECT current_database()", database='news "ar"').strip() == 'news "ar"'
    assert primary.psql("SELECT 1, 'دمشق'; SELECT 2").splitlines() == ["1|دمشق", "2"]
    with pytest.raises(EmbeddedPostgresError, match="no_such_table"):
        primary.psql("SELECT * FROM no_such_table")
    with psycopg.connect(primary.url('news "ar"'), autocommit=True) as conn:
        assert conn.execute("SELECT current_database()").fetchone() == ('news "ar"',)


def test_replica_follows_the_primary_and_refuses_writes(primary: EmbeddedPostgres, tmp_path: Path) -> None:
    with psycopg.connect(primary.url(), autocommit=True) as conn:
        conn.execute("CREATE TABLE notes (id int PRIMARY KEY, body text)")
    with start_replica(primary, tmp_path / "replica") as replica:
        assert replica.running() and replica.port != primary.port
        with psycopg.connect(primary.url(), autocommit=True) as conn:
            conn.execute("INSERT INTO notes VALUES (1, 'دمشق')")
        with psycopg.connect(replica.url(), autocommit=True) as conn:
            assert conn.execute("SELECT pg_is_in_recovery()").fetchone() == (True,)
            assert _poll("SELECT body FROM notes WHERE id = 1", conn) == ("دمشق",)
            with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
                conn.execute("INSERT INTO notes VALUES (2, 'x')")
    assert not replica.running()
    assert primary.running()


def test_data_survives_a_stop_and_a_crash(tmp_path: Path) -> None:
    with running_primary(tmp_path / "primary") as server:
        with psycopg.connect(server.url(), autocommit=True) as conn:
            conn.execute("CREATE TABLE t (id int)")
            conn.execute("INSERT INTO t VALUES (1)")
        server.stop()
        assert not server.running()
        server.stop()  # already stopped: nothing to do
        server.start()
        with psycopg.connect(server.url(), autocommit=True) as conn:
            assert conn.execute("SELECT id FROM t").fetchall() == [(1,)]
            conn.execute("INSERT INTO t VALUES (2)")
            server.kill()  # with a session open: its backend goes too
        assert not server.running()
        server.kill()  # already dead: nothing to do
        server.start()
        assert "automatic recovery in progress" in server.log_path.read_text()
        with psycopg.connect(server.url(), autocommit=True) as conn:
            assert conn.execute("SELECT id FROM t ORDER BY id").fetchall() == [(1,), (2,)]
    assert not server.running()


def test_a_port_in_use_is_reported_with_the_log_or_picked_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(EmbeddedPostgresError, match="Address already in use"):
            start_primary(tmp_path / "given", port=port)
        # A port picked by the harness but taken before the server binds it is picked again.
        ports = iter([port, embedded.free_port()])
        monkeypatch.setattr(embedded, "free_port", lambda host="127.0.0.1": next(ports))
        with running_primary(tmp_path / "picked") as server:
            assert server.port != port
            assert server.psql("SELECT 1").strip() == "1"


def test_without_the_wheel_the_error_says_how_to_install_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    embedded._pginstall.cache_clear()
    monkeypatch.setattr(embedded.importlib.util, "find_spec", lambda name: None)
    try:
        with pytest.raises(EmbeddedPostgresError, match=r"pip install -e '\.\[dev\]'"):
            start_primary(tmp_path / "primary")
        assert not (tmp_path / "primary").exists()
    finally:
        embedded._pginstall.cache_clear()
