"""`qa bench --scaling`: what the PostgreSQL backend costs and gives against the local index.

Dense search at scale (no model). N synthetic unit vectors, drawn from a Gaussian mixture fitted
to real passage vectors (`qa.bench.ann`: uniformly random vectors would make every approximate
index look bad), are written through the index seam into a local index (FAISS + SQLite) and a
PostgreSQL index, as documents of a few passages each, a thousand documents per write. Measured:
write throughput; one question's `view.dense_search(q, 10)` latency, the two backends in turn
question by question after a warm-up; recall@10 against exact search by numpy over the float32
vectors written; what the PostgreSQL index takes on disk. Queries come from the same mixture,
not from the corpus. Beside the seam, the same HNSW index is searched in plain SQL at other
`hnsw.ef_search` values, and by a sequential scan (exact over the stored halfvec values).

Workers (the real model). The seed articles go into a PostgreSQL index with `qa ingest`; then 1,
then 2 `qa serve` processes run on it, each pinned to one core (`taskset -c K`: the ONNX engine
sizes its threads from the affinity, so each worker runs one). A closed loop of C clients per
worker posts /api/ask (k=5) with the seed questions in turn, client i to worker i % W, for a
fixed time after a warm-up. Two load generators: threads holding one keep-alive connection each
(http.client, as the rest of `qa bench`), and one asyncio loop writing raw keep-alive HTTP/1.1,
the lightest load this benchmark can make. On a two-core machine the generator and PostgreSQL
share the cores with the workers, so a second worker cannot double the first one's throughput
here; the CPU that workers, PostgreSQL, the generator and everything else used during the
measured window is reported beside each figure.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import numpy as np

from qa import settings
from qa.bench.ann import VectorModel, fit_mixture, isotropic
from qa.bench.corpus import SEED_DIR, SEED_QUESTIONS
from qa.bench.load import HttpClient, ask_ours
from qa.bench.machine import load_average, machine_figures
from qa.bench.server import HOST, ServerProcess, free_port
from qa.index import DocumentUpsert, IndexBackend, ModelIdentity, PassageUpsert, open_index
from qa.index.postgres import drop_index, scratch_url

Figures = dict[str, Any]

_SEED = 11
# Fewer real passages than this fit a poor mixture (fit_mixture wants ~40 per component).
MIN_REFERENCE_PASSAGES = 400
# Each synthetic passage spans this many characters of its document's text.
_SPAN = 8


@dataclass
class ScalingOptions:
    passages: int = 100_000
    queries: int = 300
    warmup_queries: int = 20
    k: int = 10
    passages_per_document: int = 4
    documents_per_write: int = 1000
    # An index (directory or postgresql:// URL) whose passage vectors the synthetic ones are
    # modelled on, or a mixture saved by `qa bench` (.npz); None: the newest cached evaluation index.
    reference: str | None = None
    # A PostgreSQL database URL to use instead of a throwaway server (its own schemas, dropped after).
    postgres_url: str | None = None
    ef_sweep: tuple[int, ...] = (40, 64, 100, 200, 400)  # hnsw.ef_search values tried in plain SQL
    exact_queries: int = 100  # queries of the sequential-scan (exact) search in PostgreSQL
    workers: bool = True
    worker_counts: tuple[int, ...] = (1, 2)
    clients_per_worker: int = 4
    load_seconds: float = 20.0
    warmup_seconds: float = 3.0
    ask_k: int = 5
    command: str = ""
    log: Callable[[str], None] = field(default=lambda message: None)


# --- the synthetic vectors -----------------------------------------------------------------------


def _cached_reference() -> str | None:
    """The newest evaluation index `qa bench` built and cached ($QA_DATA_DIR/bench/ours-evaldata-*)."""
    built = sorted(
        (path for path in settings.bench_dir().glob("ours-evaldata-*") if path.is_dir()),
        key=lambda path: path.stat().st_mtime,
    )
    return str(built[-1]) if built else None


def reference_vectors(location: str) -> np.ndarray:
    """Every passage vector of the index at `location`. A directory is copied first: reading
    an index may tidy it, and a cached benchmark index is not ours to touch."""
    with contextlib.ExitStack() as stack:
        if "://" not in location:
            scratch = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="qa-scaling-ref-")))
            copy = scratch / "index"
            shutil.copytree(location, copy, ignore=shutil.ignore_patterns("*.lock"))
            location = str(copy)
        index = stack.enter_context(open_index(location, None, create=False))
        with index.view() as view:
            ids = [passage.id for passage in view.iter_passages()]
            return view.passage_vectors(ids)


def vector_model(reference: str | None, log: Callable[[str], None]) -> tuple[VectorModel, Figures]:
    """The mixture the synthetic vectors come from, and what it was fitted to."""
    source = reference or _cached_reference()
    if source is None:
        note = (
            "no reference index (pass --reference, or build one with qa bench): isotropic vectors, "
            "the worst case for HNSW"
        )
        return isotropic(384), {"vectors": "isotropic", "vectors_note": note}
    if source.endswith(".npz"):
        model = VectorModel.load("mixture", Path(source))
        return model, {"vectors": "mixture", "vectors_reference": source, "vectors_note": "saved mixture"}
    log(f"fitting the vector mixture to the passages of {source}")
    vectors = reference_vectors(source)
    if len(vectors) < MIN_REFERENCE_PASSAGES:
        note = f"{source} has {len(vectors)} passages, too few to fit a mixture: isotropic vectors"
        return isotropic(vectors.shape[1] if len(vectors) else 384), {
            "vectors": "isotropic",
            "vectors_note": note,
        }
    figures = {"vectors": "mixture", "vectors_reference": source, "vectors_reference_passages": len(vectors)}
    return fit_mixture(vectors), figures


# --- dense search at scale -----------------------------------------------------------------------


def _documents(vectors: np.ndarray, per_document: int, first: int, last: int) -> list[DocumentUpsert]:
    """Documents `first` to `last` - 1; document d holds the passages of rows d * per_document on."""
    documents = []
    for number in range(first, last):
        rows = range(number * per_document, min((number + 1) * per_document, len(vectors)))
        passages = [
            PassageUpsert(j * _SPAN, (j + 1) * _SPAN, vectors[row], terms="") for j, row in enumerate(rows)
        ]
        text = "".join(f"p{j:06d} " for j in range(len(passages)))
        documents.append(
            DocumentUpsert(
                f"doc-{number:08d}", f"synthetic {number}", "synthetic", text, f"{number:016x}", passages, ()
            )
        )
    return documents


def write_all(index: IndexBackend, vectors: np.ndarray, options: ScalingOptions) -> list[float]:
    """Write every vector through the seam, `documents_per_write` documents a write; the
    seconds of each write."""
    documents = -(-len(vectors) // options.passages_per_document)
    seconds = []
    for first in range(0, documents, options.documents_per_write):
        batch = _documents(
            vectors, options.passages_per_document, first, min(first + options.documents_per_write, documents)
        )
        started = time.perf_counter()
        index.write(batch)
        seconds.append(time.perf_counter() - started)
    return seconds


def _rows_by_id(index: IndexBackend, per_document: int) -> dict[int, int]:
    """Passage id -> row of the vectors written, from each passage's document and offset."""
    with index.view() as view:
        return {
            passage.id: int(passage.document_id.removeprefix("doc-")) * per_document + passage.start // _SPAN
            for passage in view.iter_passages()
        }


def exact_top(vectors: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    """Rows of the k largest inner products per query (numpy, float32: the reference)."""
    found = []
    for start in range(0, len(queries), 50):
        scores = queries[start : start + 50] @ vectors.T
        top = np.argpartition(-scores, min(k, scores.shape[1] - 1), axis=1)[:, :k]
        found.append(top)
    return np.concatenate(found)


def recall(found_rows: Sequence[Sequence[int]], truth: np.ndarray) -> float:
    hits = sum(
        len(set(rows) & set(expected.tolist())) for rows, expected in zip(found_rows, truth, strict=True)
    )
    return hits / truth.size if truth.size else float("nan")


def percentiles(milliseconds: Sequence[float], prefix: str) -> Figures:
    if not len(milliseconds):
        return {f"{prefix}_p50_ms": None, f"{prefix}_p90_ms": None, f"{prefix}_p99_ms": None}
    p50, p90, p99 = np.percentile(np.asarray(milliseconds, dtype=np.float64), [50, 90, 99])
    return {
        f"{prefix}_p50_ms": round(p50, 3),
        f"{prefix}_p90_ms": round(p90, 3),
        f"{prefix}_p99_ms": round(p99, 3),
    }


def _time_searches(
    indexes: dict[str, IndexBackend], warm: np.ndarray, probe: np.ndarray, k: int
) -> tuple[dict[str, list[float]], dict[str, list[float]], dict[str, list[list[int]]]]:
    """Per backend: milliseconds of `dense_search` alone, of the whole view (open, search,
    close), and the ids found; the backends take turns query by query."""
    for query in warm:
        for index in indexes.values():
            with index.view() as view:
                view.dense_search(query, k)
    search: dict[str, list[float]] = {name: [] for name in indexes}
    whole: dict[str, list[float]] = {name: [] for name in indexes}
    found: dict[str, list[list[int]]] = {name: [] for name in indexes}
    for query in probe:
        for name, index in indexes.items():
            opened = time.perf_counter()
            with index.view() as view:
                started = time.perf_counter()
                hits = view.dense_search(query, k)
                search[name].append((time.perf_counter() - started) * 1000)
            whole[name].append((time.perf_counter() - opened) * 1000)
            found[name].append([passage_id for passage_id, _ in hits])
    return search, whole, found


def _directory_bytes(directory: Path) -> int:
    return sum(path.stat().st_size for path in directory.rglob("*") if path.is_file())


def _pg_sql_figures(
    url: str,
    probe: np.ndarray,
    warm: np.ndarray,
    truth: np.ndarray,
    rows: dict[int, int],
    options: ScalingOptions,
) -> Figures:
    """Beside the seam, on the same tables: the HNSW index at other ef_search values, a sequential
    scan (exact over the stored halfvec values), the index's own size and the server's buffers."""
    import psycopg
    from pgvector import HalfVector
    from pgvector.psycopg import register_vector
    from psycopg import sql

    from qa.index.postgres.location import PostgresLocation

    where = PostgresLocation.parse(url)
    schema = sql.Identifier(where.schema)
    search = sql.SQL("SELECT id FROM {}.passages ORDER BY embedding <#> %s LIMIT %s").format(schema)
    figures: Figures = {}
    with psycopg.connect(where.conninfo, autocommit=True) as connection:
        register_vector(connection)
        figures["pg_hnsw_index_bytes"] = connection.execute(
            "SELECT pg_relation_size(%s::regclass)", (f'"{where.schema}".passages_by_embedding',)
        ).fetchone()[0]
        figures["pg_shared_buffers"] = connection.execute("SHOW shared_buffers").fetchone()[0]

        def run(queries: np.ndarray, prefix: str, expected: np.ndarray) -> None:
            for query in warm[:5]:
                connection.execute(search, (HalfVector(query), options.k)).fetchall()
            timings, found = [], []
            for query in queries:
                started = time.perf_counter()
                ids = connection.execute(search, (HalfVector(query), options.k)).fetchall()
                timings.append((time.perf_counter() - started) * 1000)
                found.append([rows[i] for (i,) in ids])
            figures[f"{prefix}_recall_at_10"] = round(recall(found, expected), 4)
            figures[f"{prefix}_p50_ms"] = percentiles(timings, prefix)[f"{prefix}_p50_ms"]

        for ef in options.ef_sweep:
            connection.execute(sql.SQL("SET hnsw.ef_search = {}").format(sql.Literal(int(ef))))
            run(probe, f"pg_sql_ef{ef}", truth)
        if options.exact_queries:
            connection.execute("SET enable_indexscan = off")
            run(probe[: options.exact_queries], "pg_sql_seqscan", truth[: options.exact_queries])
    return figures


def dense_figures(
    postgres_index_url: str, local_dir: Path, model: VectorModel, options: ScalingOptions
) -> Figures:
    """Write the same synthetic passages into both backends, then time and check their searches."""
    log = options.log
    rng = np.random.default_rng(_SEED)
    vectors = model.sample(options.passages, rng)
    queries = model.sample(options.warmup_queries + options.queries, rng)
    warm, probe = queries[: options.warmup_queries], queries[options.warmup_queries :]
    truth = exact_top(vectors, probe, options.k)
    identity = ModelIdentity(f"synthetic-{model.name}", model.fingerprint, vectors.shape[1])
    figures: Figures = {
        "passages": len(vectors),
        "queries": len(probe),
        "k": options.k,
        "passages_per_document": options.passages_per_document,
        "documents_per_write": options.documents_per_write,
    }
    with (
        open_index(local_dir, identity) as local,
        open_index(postgres_index_url, identity) as postgres,
    ):
        indexes = {"local": local, "pg": postgres}
        for name, index in indexes.items():
            log(f"writing {len(vectors):,} passages into the {name} index")
            seconds = write_all(index, vectors, options)
            first_size = min(options.documents_per_write * options.passages_per_document, len(vectors))
            last_size = len(vectors) - (len(seconds) - 1) * first_size
            started = time.perf_counter()
            compacted = index.compact()  # local: fold the vector log (builds HNSW); pg: VACUUM ANALYZE
            compact_s = time.perf_counter() - started
            figures.update(
                {
                    f"{name}_writes": len(seconds),
                    f"{name}_write_s": round(sum(seconds), 2),
                    f"{name}_write_passages_per_s": round(len(vectors) / sum(seconds), 1),
                    f"{name}_write_first_passages_per_s": round(first_size / seconds[0], 1),
                    f"{name}_write_last_passages_per_s": round(last_size / seconds[-1], 1),
                    f"{name}_compact_s": round(compact_s, 2),
                    f"{name}_compacted": bool(compacted.get("compacted")),
                    f"{name}_passages_per_s_with_compact": round(
                        len(vectors) / (sum(seconds) + compact_s), 1
                    ),
                }
            )
        rows = {name: _rows_by_id(index, options.passages_per_document) for name, index in indexes.items()}
        log(f"{len(probe)} single queries on each backend, in turn")
        search, whole, found = _time_searches(indexes, warm, probe, options.k)
        for name in indexes:
            figures.update(percentiles(search[name], f"{name}_search"))
            figures.update(percentiles(whole[name], f"{name}_view_search"))
            found_rows = [[rows[name][i] for i in ids] for ids in found[name]]
            figures[f"{name}_recall_at_10"] = round(recall(found_rows, truth), 4)
        described = {name: index.describe() for name, index in indexes.items()}
    local_vectors = described["local"]["vector_index"]
    figures["local_vector_index"] = local_vectors.get("kind")
    figures["local_vector_settings"] = ", ".join(
        f"{key}={value}"
        for key, value in local_vectors.items()
        if key in ("stored_as", "neighbors", "ef_search")
    )
    figures["local_disk_bytes"] = _directory_bytes(local_dir)
    pg_vectors = described["pg"]["vector_index"]
    figures["pg_vector_index"] = pg_vectors["kind"]
    figures["pg_vector_settings"] = (
        f"{pg_vectors['type']}, m={pg_vectors['m']}, ef_construction={pg_vectors['ef_construction']}, "
        f"ef_search={pg_vectors['ef_search']}"
    )
    figures["pg_server_version"] = described["pg"]["server_version"]
    figures["pg_bytes"] = described["pg"]["bytes"]
    figures["pg_bytes_per_passage"] = round(described["pg"]["bytes"] / max(1, described["pg"]["passages"]), 1)
    log("the same HNSW index in plain SQL: other ef_search values, and a sequential scan")
    figures.update(_pg_sql_figures(postgres_index_url, probe, warm, truth, rows["pg"], options))
    return {f"dense_{key}": value for key, value in figures.items()}


# --- load: closed loops of clients over several servers ------------------------------------------


@dataclass
class LoadRun:
    generator: str
    clients: int
    seconds: float
    latencies_ms: list[float]
    errors: int
    per_server: list[int]
    cpu_cores: dict[str, float]  # CPU seconds per second of the window, per group of processes

    @property
    def requests_per_s(self) -> float:
        return len(self.latencies_ms) / self.seconds if self.seconds else 0.0


class CpuMeter:
    """CPU time of groups of processes, and of the whole machine, between two samples."""

    def __init__(self, groups: dict[str, Callable[[], list[Any]]]) -> None:
        self.groups = groups
        self._first: dict[str, float] | None = None
        self._started = 0.0

    def _sample(self) -> dict[str, float]:
        import psutil

        taken: dict[str, float] = {}
        for name, processes in self.groups.items():
            total = 0.0
            for process in processes():
                with contextlib.suppress(psutil.Error):
                    times = process.cpu_times()
                    total += times.user + times.system
            taken[name] = total
        machine = psutil.cpu_times()
        # Linux counts guest time inside user time too; idle and iowait are no work.
        unused = ("idle", "iowait", "guest", "guest_nice")
        taken["machine"] = sum(machine) - sum(getattr(machine, name, 0.0) for name in unused)
        return taken

    def start(self) -> None:
        self._first, self._started = self._sample(), time.perf_counter()

    def stop(self) -> dict[str, float]:
        last, seconds = self._sample(), time.perf_counter() - self._started
        assert self._first is not None, "start() first"
        used = {name: max(0.0, (last[name] - self._first[name]) / seconds) for name in last}
        used["other"] = max(0.0, used["machine"] - sum(v for name, v in used.items() if name != "machine"))
        return {name: round(value, 2) for name, value in used.items()}


def _measured(
    generator: str,
    records: list[tuple[float, float, bool, int]],
    window: tuple[float, float],
    clients: int,
    servers: int,
    cpu: dict[str, float],
) -> LoadRun:
    """Requests completed inside the window: (started, finished, ok, server) records."""
    start, end = window
    inside = [record for record in records if start <= record[1] <= end]
    per_server = [0] * servers
    for record in inside:
        per_server[record[3]] += 1
    latencies = [(finished - started) * 1000 for started, finished, ok, _ in inside if ok]
    errors = sum(not ok for _, _, ok, _ in inside)
    return LoadRun(generator, clients, end - start, latencies, errors, per_server, cpu)


def threaded_load(
    urls: Sequence[str],
    questions: Sequence[str],
    *,
    clients: int,
    warmup_s: float,
    seconds: float,
    k: int = 5,
    meter: CpuMeter | None = None,
) -> LoadRun:
    """`clients` threads, each with one keep-alive connection (http.client) to server i % W,
    asking the questions in turn from its own offset, back to back, for `warmup_s` + `seconds`;
    only requests completed in the last `seconds` count."""
    begin = time.perf_counter() + 0.05
    window = (begin + warmup_s, begin + warmup_s + seconds)
    records: list[tuple[float, float, bool, int]] = []
    lock = threading.Lock()

    def client(number: int) -> None:
        server = number % len(urls)
        connection = HttpClient(urls[server], timeout=60)
        mine = []
        asked = number
        try:
            while (started := time.perf_counter()) < window[1]:
                try:
                    status, _ = connection.request(*ask_ours(questions[asked % len(questions)], k))
                except OSError:
                    status = 0
                mine.append((started, time.perf_counter(), status == 200, server))
                asked += 1
        finally:
            connection.close()
            with lock:
                records.extend(mine)

    threads = [threading.Thread(target=client, args=(n,), daemon=True) for n in range(clients)]
    for thread in threads:
        thread.start()
    cpu = _meter_window(meter, window, time.sleep)
    for thread in threads:
        thread.join(120)
    return _measured("threads", records, window, clients, len(urls), cpu)


def _meter_window(meter: CpuMeter | None, window: tuple[float, float], sleep: Callable[[float], Any]) -> Any:
    """Sample `meter` at the window's start and end (`sleep` blocks; see the async twin)."""
    sleep(max(0.0, window[0] - time.perf_counter()))
    if meter:
        meter.start()
    sleep(max(0.0, window[1] - time.perf_counter()))
    return meter.stop() if meter else {}


async def _ask_raw(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes
) -> tuple[int, bool]:
    """One HTTP/1.1 exchange on a kept-alive connection: (status, whether the server closes it)."""
    writer.write(request)
    await writer.drain()
    status_line = await reader.readline()
    if not status_line:
        raise ConnectionError("the server closed the connection")
    status = int(status_line.split()[1])
    length, chunked, closing = 0, False, False
    while (line := await reader.readline()) not in (b"\r\n", b"\n", b""):
        name, _, value = line.decode("latin-1").partition(":")
        name, value = name.strip().lower(), value.strip().lower()
        if name == "content-length":
            length = int(value)
        elif name == "transfer-encoding":
            chunked = "chunked" in value
        elif name == "connection":
            closing = value == "close"
    if chunked:
        while True:
            size = int((await reader.readline()).split(b";")[0], 16)
            await reader.readexactly(size + 2)
            if size == 0:
                break
    elif length:
        await reader.readexactly(length)
    return status, closing


def async_load(
    urls: Sequence[str],
    questions: Sequence[str],
    *,
    clients: int,
    warmup_s: float,
    seconds: float,
    k: int = 5,
    meter: CpuMeter | None = None,
) -> LoadRun:
    """The same closed loop as `threaded_load`, from one asyncio loop on one thread, each client
    a raw keep-alive HTTP/1.1 connection with its requests encoded in advance."""

    def encoded(url: str) -> list[bytes]:
        parts = urlsplit(url)
        built = []
        for question in questions:
            method, path, body = ask_ours(question, k)
            head = (
                f"{method} {path} HTTP/1.1\r\nHost: {parts.netloc}\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\n\r\n"
            )
            built.append(head.encode() + body)
        return built

    requests = [encoded(url) for url in urls]

    async def main() -> LoadRun:
        begin = time.perf_counter() + 0.05
        window = (begin + warmup_s, begin + warmup_s + seconds)
        records: list[tuple[float, float, bool, int]] = []

        async def client(number: int) -> None:
            server = number % len(urls)
            parts = urlsplit(urls[server])
            mine = requests[server]
            connection: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
            asked = number
            while (started := time.perf_counter()) < window[1]:
                try:
                    if connection is None:
                        connection = await asyncio.open_connection(parts.hostname, parts.port)
                    status, closing = await asyncio.wait_for(
                        _ask_raw(*connection, mine[asked % len(mine)]), timeout=60
                    )
                except (OSError, ValueError, IndexError, asyncio.IncompleteReadError, TimeoutError):
                    status, closing = 0, True
                records.append((started, time.perf_counter(), status == 200, server))
                if closing and connection is not None:
                    connection[1].close()
                    connection = None
                asked += 1
            if connection is not None:
                connection[1].close()

        async def metered() -> dict[str, float]:
            await asyncio.sleep(max(0.0, window[0] - time.perf_counter()))
            if meter:
                meter.start()
            await asyncio.sleep(max(0.0, window[1] - time.perf_counter()))
            return meter.stop() if meter else {}

        *_, cpu = await asyncio.gather(*(client(n) for n in range(clients)), metered())
        return _measured("asyncio", records, window, clients, len(urls), cpu)

    return asyncio.run(main())


GENERATORS: dict[str, Callable[..., LoadRun]] = {"threads": threaded_load, "asyncio": async_load}


# --- workers ---------------------------------------------------------------------------------------


def _qa_environment() -> dict[str, str]:
    """The environment of `qa` child processes: this very code (PYTHONPATH), and the model this
    process would load, as an absolute path."""
    import qa

    root = str(Path(qa.__file__).resolve().parents[1])
    env = settings.child_environment(python_path=root, drop=("QA_INDEX_DIR",))
    if not settings.MODEL.get():
        model_dir = settings.default_model_dir()
        if not model_dir.is_dir():
            # Each child would build the model at once: say what to do instead.
            raise RuntimeError(f"no model at {model_dir}: run qa model build, or point QA_MODEL at the model")
        env["QA_MODEL"] = str(model_dir.resolve())
    return env


def _qa_command() -> list[str]:
    return [sys.executable, "-c", "from qa.cli import main; main()"]


def _allowed_cpus(pid: int) -> str:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Cpus_allowed_list:"):
            return line.split(":", 1)[1].strip()
    return "?"


@contextlib.contextmanager
def pinned_workers(url: str, cores: Sequence[int]) -> Iterator[list[ServerProcess]]:
    """One `qa serve` per core in `cores`, started together, each under `taskset -c core`;
    stopped by their own process ids when the block ends."""
    env = _qa_environment()
    with contextlib.ExitStack() as stack:
        servers = []
        for core in cores:
            port = free_port()
            command = ["taskset", "-c", str(core), *_qa_command(), "serve", "--index", url]
            command += ["--host", HOST, "--port", str(port)]
            servers.append(stack.enter_context(ServerProcess(command, port, env=env)))
        yield servers


def _postgres_processes(postmaster: int | None) -> Callable[[], list[Any]]:
    def processes() -> list[Any]:
        import psutil

        if postmaster is None:
            return []
        try:
            parent = psutil.Process(postmaster)
            return [parent, *parent.children(recursive=True)]
        except psutil.Error:
            return []

    return processes


def worker_figures(
    server_url: str, postmaster: int | None, scratch: Path, options: ScalingOptions
) -> tuple[Figures, list[str]]:
    """The seed articles in a fresh PostgreSQL index; 1 and 2 pinned workers under load."""
    import psutil

    log = options.log
    figures: Figures = {}
    notes: list[str] = []
    if shutil.which("taskset") is None:
        return {"workers_skipped": "taskset is missing"}, [
            "workers part skipped: taskset (util-linux) is missing"
        ]
    cores = sorted(os.sched_getaffinity(0))
    url = scratch_url(server_url, "scaling_seeds")
    env = _qa_environment()
    log("ingesting the seed articles into PostgreSQL (qa ingest)")
    started = time.perf_counter()
    ingest = subprocess.run(
        [*_qa_command(), "ingest", str(SEED_DIR), "--index", url, "--json"],
        env=env,
        cwd=scratch,  # whatever it may write goes there
        capture_output=True,
        text=True,
        timeout=1800,
    )
    if ingest.returncode != 0:
        raise RuntimeError(f"qa ingest failed:\n{ingest.stderr[-3000:]}")
    figures["ingest_s"] = round(time.perf_counter() - started, 2)
    with contextlib.suppress(ValueError, KeyError):
        figures["ingest_passages"] = json.loads(ingest.stdout)["passages"]
    questions = [
        json.loads(line)["question"]
        for line in SEED_QUESTIONS.read_text(encoding="utf-8").splitlines()
        if line.strip()
    ]
    figures["questions"] = len(questions)
    figures["clients_per_worker"] = options.clients_per_worker
    figures["load_seconds"] = options.load_seconds
    figures["warmup_seconds"] = options.warmup_seconds
    try:
        for count in options.worker_counts:
            if count > len(cores):
                notes.append(f"{count} workers need {count} cores; this process may use {len(cores)}")
                continue
            log(f"{count} worker(s) pinned to core(s) {', '.join(map(str, cores[:count]))}")
            with pinned_workers(url, cores[:count]) as servers:
                for number, server in enumerate(servers):
                    figures[f"w{count}_worker{number}_cold_start_s"] = round(
                        server.wait_for_answer(ask_ours, questions[0], timeout=600), 2
                    )
                    figures[f"w{count}_worker{number}_cpus"] = _allowed_cpus(server.pid)
                meter = CpuMeter(
                    {
                        "workers": lambda servers=servers: [psutil.Process(s.pid) for s in servers],
                        "postgres": _postgres_processes(postmaster),
                        "generator": lambda: [psutil.Process()],
                    }
                )
                for generator, load in GENERATORS.items():
                    clients = options.clients_per_worker * count
                    log(
                        f"  {generator}: {clients} clients, "
                        f"{options.warmup_seconds:g} s + {options.load_seconds:g} s"
                    )
                    run = load(
                        [server.url for server in servers],
                        questions,
                        clients=clients,
                        warmup_s=options.warmup_seconds,
                        seconds=options.load_seconds,
                        k=options.ask_k,
                        meter=meter,
                    )
                    prefix = f"w{count}_{generator}"
                    figures[f"{prefix}_clients"] = clients
                    figures[f"{prefix}_rps"] = round(run.requests_per_s, 1)
                    figures.update(percentiles(run.latencies_ms, prefix))
                    figures[f"{prefix}_errors"] = run.errors
                    figures[f"{prefix}_per_worker"] = "/".join(map(str, run.per_server))
                    for group, cores_used in run.cpu_cores.items():
                        figures[f"{prefix}_cpu_{group}"] = cores_used
                for number, server in enumerate(servers):
                    _, peak = server.memory_mb()
                    figures[f"w{count}_worker{number}_rss_mb"] = round(peak, 1) if peak else None
    finally:
        with contextlib.suppress(Exception):
            drop_index(url)
    low, high = options.worker_counts[0], options.worker_counts[-1]
    for generator in GENERATORS:
        one, more = figures.get(f"w{low}_{generator}_rps"), figures.get(f"w{high}_{generator}_rps")
        if one and more and high != low:
            figures[f"w{high}_vs_w{low}_{generator}_rps_ratio"] = round(more / one, 3)
    return {f"workers_{key}": value for key, value in figures.items()}, notes


# --- the whole run -----------------------------------------------------------------------------


def cpu_figures() -> Figures:
    """The CPU as lscpu names it, and whether it has AVX-512, bfloat16 and AMX instructions."""
    model = None
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        for line in subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout.splitlines():
            if line.startswith("Model name:"):
                model = line.split(":", 1)[1].strip()
    flags: set[str] = set()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
                break
    return {
        "cpu_model": model or machine_figures()["machine_cpu"],
        "cpu_cores": len(os.sched_getaffinity(0)),
        "cpu_avx512": "avx512f" in flags,
        "cpu_avx512_bf16": "avx512_bf16" in flags,
        "cpu_amx": any(flag.startswith("amx") for flag in flags),
        "cpu_avx512_flags": " ".join(sorted(flag for flag in flags if flag.startswith("avx512"))),
    }


@contextlib.contextmanager
def _postgres(options: ScalingOptions, scratch: Path) -> Iterator[tuple[str, int | None, str]]:
    """(database URL, postmaster pid or None, what it is): the given server, or a throwaway one."""
    if options.postgres_url:
        yield options.postgres_url, None, "given (--postgres-url)"
        return
    from qa.index.postgres.embedded import running_primary

    options.log("starting a throwaway PostgreSQL server")
    # shared_buffers large enough for the HNSW index (~130 MB at 100k passages), as a production
    # server would have it (PostgreSQL's default, 128 MB, re-reads it from the OS cache).
    with running_primary(scratch / "postgres", settings={"shared_buffers": "1GB"}) as server:
        pid = int((server.data_dir / "postmaster.pid").read_text().split("\n", 1)[0])
        yield server.url(), pid, "embedded (start_primary, shared_buffers 1GB)"


def run_scaling(options: ScalingOptions) -> tuple[Figures, list[str]]:
    started = time.perf_counter()
    figures: Figures = {
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "command": options.command,
        "qa_model": settings.MODEL.get(),
        **cpu_figures(),
        "memory_gb": machine_figures()["machine_memory_gb"],
        "load_average_start": load_average(),
    }
    notes: list[str] = []
    model, about = vector_model(options.reference, options.log)
    figures.update({f"dense_{key}": value for key, value in about.items()})
    if about["vectors"] != "mixture":
        notes.append(about["vectors_note"])
    with (
        tempfile.TemporaryDirectory(prefix="qa-bench-scaling-") as directory,
        _postgres(options, Path(directory)) as (server_url, postmaster, kind),
    ):
        scratch = Path(directory)
        figures["postgres_server"] = kind
        dense_url = scratch_url(server_url, "scaling_dense")
        try:
            figures.update(dense_figures(dense_url, scratch / "local", model, options))
        finally:
            with contextlib.suppress(Exception):
                drop_index(dense_url)
        if options.workers:
            measured, more = worker_figures(server_url, postmaster, scratch, options)
            figures.update(measured)
            notes += more
    figures["load_average_end"] = load_average()
    figures["scaling_seconds"] = round(time.perf_counter() - started, 1)
    return figures, notes


# --- the table -------------------------------------------------------------------------------------


def _value(figures: Figures, key: str) -> str:
    value = figures.get(key)
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:,.3f}" if abs(value) < 10 else f"{value:,.1f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def render(figures: Figures, notes: Sequence[str]) -> str:
    f = figures
    lines = [
        f"qa bench --scaling on {f['cpu_model']} ({f['cpu_cores']} cores, AVX-512 "
        f"{_value(f, 'cpu_avx512')}, AVX-512 bf16 {_value(f, 'cpu_avx512_bf16')}), {f['date']}",
        f"PostgreSQL: {f.get('postgres_server')} {_value(f, 'dense_pg_server_version')}, "
        f"shared_buffers {_value(f, 'dense_pg_shared_buffers')}",
        "",
        f"Dense search: {_value(f, 'dense_passages')} synthetic passages ("
        + (
            f"mixture fitted to {_value(f, 'dense_vectors_reference_passages')} real passage vectors"
            if f.get("dense_vectors") == "mixture"
            else f"{f.get('dense_vectors')}: {f.get('dense_vectors_note')}"
        )
        + f"), {_value(f, 'dense_queries')} queries, k={_value(f, 'dense_k')}",
    ]
    rows = [
        ("vector index", "vector_index"),
        (f"writes ({_value(f, 'dense_documents_per_write')} documents each)", "writes"),
        ("write passages/s", "write_passages_per_s"),
        ("  first write, passages/s", "write_first_passages_per_s"),
        ("  last write, passages/s", "write_last_passages_per_s"),
        ("compact after writing, s", "compact_s"),
        ("passages/s including compact", "passages_per_s_with_compact"),
        ("dense_search p50 ms", "search_p50_ms"),
        ("dense_search p90 ms", "search_p90_ms"),
        ("dense_search p99 ms", "search_p99_ms"),
        ("view + dense_search p50 ms", "view_search_p50_ms"),
        ("view + dense_search p99 ms", "view_search_p99_ms"),
        ("recall@10 vs exact float32", "recall_at_10"),
    ]
    width = 36
    lines.append(f"  {'':{width}} {'local (FAISS+SQLite)':>24} {'PostgreSQL (pgvector)':>28}")
    for label, key in rows:
        lines.append(
            f"  {label:{width}} {_value(f, f'dense_local_{key}'):>24} {_value(f, f'dense_pg_{key}'):>28}"
        )
    lines.append(
        f"  {'size on disk, MB':{width}} {f.get('dense_local_disk_bytes', 0) / 2**20:>24.1f} "
        f"{f.get('dense_pg_bytes', 0) / 2**20:>28.1f}"
    )
    lines.append(
        f"  {'PostgreSQL bytes/passage (all tables)':{width}} {'':>24} "
        f"{_value(f, 'dense_pg_bytes_per_passage'):>28}"
    )
    lines.append(
        f"  {'  of which the HNSW index, MB':{width}} {'':>24} "
        f"{f.get('dense_pg_hnsw_index_bytes', 0) / 2**20:>28.1f}"
    )
    lines.append(f"  local vector index: {_value(f, 'dense_local_vector_settings')}")
    lines.append(f"  PostgreSQL vector index: {_value(f, 'dense_pg_vector_settings')}")
    sweep = [key for key in f if key.startswith("dense_pg_sql_") and key.endswith("_recall_at_10")]
    if sweep:
        lines.append("  PostgreSQL in plain SQL (same index): recall@10 / p50 ms")
        for key in sweep:
            name = key.removeprefix("dense_pg_sql_").removesuffix("_recall_at_10")
            label = (
                f"hnsw.ef_search={name[2:]}" if name.startswith("ef") else "sequential scan (exact, halfvec)"
            )
            lines.append(
                f"    {label:{width - 2}} {_value(f, key):>8} / {_value(f, f'dense_pg_sql_{name}_p50_ms')}"
            )
    if "workers_ingest_s" in f:
        lines += [
            "",
            f"Workers: seed articles ({_value(f, 'workers_ingest_passages')} passages) in PostgreSQL, "
            f"POST /api/ask k=5, {_value(f, 'workers_clients_per_worker')} clients per worker, "
            f"{f['workers_load_seconds']:g} s after {f['workers_warmup_seconds']:g} s of warm-up",
            f"  {'generator':10} {'workers':>7} {'clients':>7} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} "
            f"{'errors':>6}  {'per worker':>11}  CPU cores: workers / postgres / generator / other",
        ]
        for generator in GENERATORS:
            for count in (1, 2):
                p = f"workers_w{count}_{generator}"
                if f"{p}_rps" not in f:
                    continue
                cpu = " / ".join(
                    _value(f, f"{p}_cpu_{g}") for g in ("workers", "postgres", "generator", "other")
                )
                lines.append(
                    f"  {generator:10} {count:>7} {_value(f, p + '_clients'):>7} {_value(f, p + '_rps'):>8} "
                    f"{_value(f, p + '_p50_ms'):>8} {_value(f, p + '_p99_ms'):>8} "
                    f"{_value(f, p + '_errors'):>6}  {_value(f, p + '_per_worker'):>11}  {cpu}"
                )
        ratios = [
            f"{generator} {f[key]:.2f}x"
            for generator in GENERATORS
            if (key := f"workers_w2_vs_w1_{generator}_rps_ratio") in f
        ]
        if ratios:
            lines.append(f"  2 workers against 1, req/s: {', '.join(ratios)}")
        lines.append(
            "  threads: one thread and http.client connection per client, in the benchmark process;\n"
            "  asyncio: one thread, raw keep-alive HTTP/1.1 (the lightest generator).\n"
            "  Both, and PostgreSQL, share the machine's cores with the pinned workers."
        )
    lines += [
        "",
        f"load average {f['load_average_start']:.2f} at the start, {f['load_average_end']:.2f} at the end; "
        f"{f['scaling_seconds']:,.0f} s in all",
    ]
    lines += [f"note: {note}" for note in notes]
    return "\n".join(lines)
