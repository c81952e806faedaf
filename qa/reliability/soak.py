"""Soak: a real `qa serve` on 127.0.0.1 over the seed articles, under mixed load from N clients.

Each client asks questions (POST and GET), adds documents (JSON and file uploads), deletes its
own documents again, and reads lists and documents, with the write token. The run is bounded by
time and by a request budget and stops by itself. It passes when no request failed, the
documents the server holds are exactly the ones the clients added and did not delete, and the
server's resident memory grew less than the bound between the end of the warm-up and the end
(medians of 10 one-second samples at each end). The warm-up is half the run: allocators,
caches and the vectors written since the index's last checkpoint grow at first.

    python -m qa.reliability.soak --seconds 60 --clients 8        (make soak)
"""

from __future__ import annotations

import argparse
import json
import random
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from qa.reliability.serve import QaServe, qa_command

REPO = Path(__file__).resolve().parents[2]
SEEDS = REPO / "seeds"
QUESTIONS = [
    "who met Jeffrey in Brussels",
    "من التقى جيمس جيفري في بروكسل",
    "what happened in Idlib",
    "ماذا قال رئيس الائتلاف الوطني",
    "Syrian opposition coalition meeting with the American delegation",
    "التصعيد العسكري في إدلب",
    "Kuwait Security Council request",
    "اللجنة الدستورية",
]
MODES = (None, "hybrid", "dense", "lexical")
# Each client keeps at most this many documents of its own: the corpus stays about the same
# size, so memory growth means a leak rather than more data.
OWN_DOCUMENTS = 3
WINDOW = 10  # one-second RSS samples per median
# (operation, weight): mostly questions, as a chatbot's traffic would be.
MIX = [("ask_post", 50), ("ask_get", 20), ("write", 15), ("list", 5), ("read", 5), ("health", 5)]


@dataclass
class Tally:
    """What all clients saw; appended to under one lock."""

    latencies_ms: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    statuses: Counter[str] = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)
    added: set[str] = field(default_factory=set)
    deleted: set[str] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, operation: str, status: int, millis: float) -> None:
        with self.lock:
            self.latencies_ms[operation].append(millis)
            self.statuses[f"{operation} {status}"] += 1

    def error(self, message: str) -> None:
        with self.lock:
            self.errors.append(message)

    @property
    def requests(self) -> int:
        return sum(self.statuses.values()) + len(self.errors)


def _sentences() -> list[str]:
    """Sentences of the seed articles, to build documents that look like news."""
    found: list[str] = []
    for path in sorted(SEEDS.glob("*.txt")):
        for line in path.read_text(encoding="utf-8").splitlines():
            found += [s.strip() + "." for s in line.split(".") if len(s.strip()) > 30]
    return found


class Client:
    """One simulated chatbot: its own connection, its own random stream, its own documents."""

    def __init__(self, number: int, url: str, token: str, tally: Tally, sentences: list[str]) -> None:
        self.number = number
        self.http = httpx.Client(base_url=url, timeout=120, headers={"Authorization": f"Bearer {token}"})
        self.random = random.Random(number)
        self.tally = tally
        self.sentences = sentences
        self.own: list[str] = []
        self.written = 0

    def run(self, deadline: float, budget: threading.Semaphore) -> None:
        operations, weights = zip(*MIX, strict=True)
        try:
            while time.monotonic() < deadline and budget.acquire(blocking=False):
                getattr(self, self.random.choices(operations, weights)[0])()
        finally:
            self.http.close()

    def _call(
        self, operation: str, expected: int, method: str, path: str, **kwargs: Any
    ) -> httpx.Response | None:
        started = time.perf_counter()
        try:
            response = self.http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            self.tally.error(f"{operation}: {type(exc).__name__}: {exc}")
            return None
        millis = (time.perf_counter() - started) * 1000
        self.tally.record(operation, response.status_code, millis)
        if response.status_code != expected:
            self.tally.error(f"{operation}: {response.status_code} {response.text[:300]}")
            return None
        return response

    def ask_post(self) -> None:
        body: dict[str, Any] = {"question": self.random.choice(QUESTIONS), "k": self.random.randint(1, 10)}
        if mode := self.random.choice(MODES):
            body["mode"] = mode
        response = self._call("ask", 200, "POST", "/api/ask", json=body)
        # Lexical search alone finds nothing for an English question over Arabic articles.
        if response is not None and mode != "lexical" and not response.json()["passages"]:
            self.tally.error(f"ask: no passages for {body}")

    def ask_get(self) -> None:
        self._call("ask", 200, "GET", "/api/ask", params={"q": self.random.choice(QUESTIONS), "k": 5})

    def write(self) -> None:
        if len(self.own) >= OWN_DOCUMENTS:
            document_id = self.own.pop(self.random.randrange(len(self.own)))
            if self._call("delete", 204, "DELETE", f"/api/documents/{document_id}") is not None:
                with self.tally.lock:
                    self.tally.deleted.add(document_id)
            return
        self.written += 1
        document_id = f"soak-{self.number}-{self.written}"
        text = " ".join(self.random.sample(self.sentences, self.random.randint(3, 8)))
        text = f"Soak document {document_id}\n\n{text}"
        if self.random.random() < 0.3:
            files = {"file": (f"{document_id}.txt", text.encode(), "text/plain")}
            response = self._call("add", 201, "POST", "/api/documents", files=files)
        else:
            response = self._call(
                "add", 201, "POST", "/api/documents", json={"id": document_id, "text": text}
            )
        if response is not None:
            self.own.append(document_id)
            with self.tally.lock:
                self.tally.added.add(document_id)

    def list(self) -> None:
        self._call("list", 200, "GET", "/api/documents", params={"limit": 20})

    def read(self) -> None:
        if self.own:
            self._call("read", 200, "GET", f"/api/documents/{self.random.choice(self.own)}")
        else:
            self._call("read", 200, "GET", "/api/documents", params={"limit": 1})

    def health(self) -> None:
        self._call("health", 200, "GET", "/health")


def _tracebacks(log: str) -> list[str]:
    """The server's logged errors, each as its last line and innermost frame."""
    found: list[str] = []
    for block in log.split("Traceback (most recent call last):\n")[1:]:
        frames: list[str] = []
        for line in block.splitlines():
            if line.startswith("  File "):
                frames.append(line.strip())
            elif line and not line.startswith(" "):
                found.append(f"{line} ({frames[-1] if frames else 'no frame'})")
                break
    return found


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def _latency_table(tally: Tally) -> dict[str, dict[str, float]]:
    return {
        operation: {
            "requests": len(values),
            "p50_ms": round(percentile(values, 0.50), 1),
            "p90_ms": round(percentile(values, 0.90), 1),
            "p99_ms": round(percentile(values, 0.99), 1),
            "max_ms": round(max(values), 1),
        }
        for operation, values in sorted(tally.latencies_ms.items())
    }


def _served_ids(url: str) -> set[str]:
    ids: set[str] = set()
    with httpx.Client(base_url=url, timeout=60) as http:
        offset = 0
        while True:
            page = http.get("/api/documents", params={"offset": offset, "limit": 500}).json()
            ids |= {document["id"] for document in page["documents"]}
            offset += 500
            if offset >= page["total"]:
                return ids


def _prepare_index(workdir: Path, index: Path | None) -> Path:
    """A private index: a copy of `index`, or the seed articles ingested with the real model."""
    target = workdir / "index"
    if index is not None:
        shutil.copytree(index, target)
    else:
        subprocess.run([*qa_command(), "ingest", str(SEEDS), "--index", str(target)], check=True)
    return target


def soak(
    *,
    seconds: float,
    clients: int,
    max_requests: int,
    rss_bound_mib: float,
    warmup_share: float,
    index: Path | None,
) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="qa-soak-") as tmp:
        workdir = Path(tmp)
        index_dir = _prepare_index(workdir, index)
        token = secrets.token_hex(16)
        # No rate limit: all clients come from one address.
        env = {"QA_API_TOKEN": token, "QA_RATE_LIMIT": "", "QA_CORS_ORIGINS": ""}
        with QaServe(index_dir, workdir / "logs", env=env) as server:
            url = server.start()
            before = _served_ids(url)
            tally = Tally()
            sentences = _sentences()
            budget = threading.Semaphore(max_requests)
            started = time.monotonic()
            deadline = started + seconds
            workers = [Client(n, url, token, tally, sentences) for n in range(clients)]
            threads = [threading.Thread(target=w.run, args=(deadline, budget)) for w in workers]
            for thread in threads:
                thread.start()
            rss_samples: list[tuple[float, int]] = []
            threads_seen: list[int] = []
            while any(thread.is_alive() for thread in threads):
                rss_samples.append((round(time.monotonic() - started, 1), server.rss_bytes()))
                threads_seen.append(int(server.status("Threads")))
                time.sleep(1.0)
            for thread in threads:
                thread.join()
            elapsed = time.monotonic() - started
            after = _served_ids(url)
            rss_end = server.rss_bytes()
            server_errors = _tracebacks(server.stderr())
    expected = (before | tally.added) - tally.deleted
    # RSS moves by tens of MiB from one second to the next (encoding batches come and go), so
    # each end of the comparison is the median of WINDOW one-second samples.
    warm = [rss for at, rss in rss_samples if at >= warmup_share * seconds]
    baseline = statistics.median(warm[:WINDOW] or [rss_end])
    final = statistics.median(warm[-WINDOW:] or [rss_end])
    growth_mib = (final - baseline) / 2**20
    consistent = after == expected
    return {
        "clients": clients,
        "seconds": round(elapsed, 1),
        "requests": tally.requests,
        "requests_per_second": round(tally.requests / elapsed, 1),
        "errors": len(tally.errors),
        "first_errors": tally.errors[:10],
        "statuses": dict(sorted(tally.statuses.items())),
        "latency": _latency_table(tally),
        "documents": {
            "before": len(before),
            "added": len(tally.added),
            "deleted": len(tally.deleted),
            "after": len(after),
            "as_expected": consistent,
        },
        "server_errors": server_errors,
        "rss_mib": {
            "after_warmup": round(baseline / 2**20, 1),
            "end": round(final / 2**20, 1),
            "peak": round(max(rss for _, rss in rss_samples) / 2**20, 1) if rss_samples else None,
            "growth": round(growth_mib, 1),
            "bound": rss_bound_mib,
            "warmup_seconds": round(warmup_share * seconds, 1),
            "every_10_s": [round(rss / 2**20, 1) for at, rss in rss_samples[::10]],
        },
        "server_threads_max": max(threads_seen, default=0),
        "passed": not tally.errors and consistent and growth_mib < rss_bound_mib,
    }


def _print(report: dict[str, Any]) -> None:
    docs, rss = report["documents"], report["rss_mib"]
    print(
        f"{report['requests']} requests from {report['clients']} clients in {report['seconds']} s "
        f"({report['requests_per_second']}/s), errors: {report['errors']}"
    )
    for error in report["first_errors"]:
        print(f"  error: {error}")
    print(f"{'operation':<8} {'requests':>8} {'p50 ms':>8} {'p90 ms':>8} {'p99 ms':>8} {'max ms':>8}")
    for operation, row in report["latency"].items():
        print(
            f"{operation:<8} {row['requests']:>8} {row['p50_ms']:>8} {row['p90_ms']:>8} {row['p99_ms']:>8} "
            f"{row['max_ms']:>8}"
        )
    print(
        f"documents: {docs['before']} before, {docs['added']} added, {docs['deleted']} deleted, "
        f"{docs['after']} after ({'as expected' if docs['as_expected'] else 'NOT as expected'})"
    )
    print(
        f"server RSS (medians of {WINDOW} s): {rss['after_warmup']} MiB after {rss['warmup_seconds']} s of "
        f"warm-up, {rss['end']} MiB at the end (peak {rss['peak']}); growth {rss['growth']} MiB, "
        f"bound {rss['bound']} MiB"
    )
    print(f"server RSS every 10 s (MiB): {', '.join(str(mib) for mib in rss['every_10_s'])}")
    for error in report["server_errors"][:10]:
        print(f"  server error: {error}")
    print("PASSED" if report["passed"] else "FAILED")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=60.0, help="how long the load runs (default 60)")
    parser.add_argument("--clients", type=int, default=8, help="concurrent clients (default 8)")
    parser.add_argument("--max-requests", type=int, default=50_000, help="request budget (default 50000)")
    parser.add_argument(
        "--rss-bound-mib",
        type=float,
        default=128.0,
        help="largest allowed RSS growth from the end of the warm-up to the end, in MiB (default 128)",
    )
    parser.add_argument(
        "--warmup-share",
        type=float,
        default=0.5,
        help="share of the run before the RSS baseline (default 0.5: allocators and caches grow at first)",
    )
    parser.add_argument("--index", type=Path, help="soak a copy of this index instead of the seed articles")
    parser.add_argument("--json", type=Path, help="also write the report here as JSON")
    args = parser.parse_args(argv)
    report = soak(
        seconds=args.seconds,
        clients=args.clients,
        max_requests=args.max_requests,
        rss_bound_mib=args.rss_bound_mib,
        warmup_share=args.warmup_share,
        index=args.index,
    )
    _print(report)
    if args.json:
        args.json.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return 0 if report["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
