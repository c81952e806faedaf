"""Plain helpers shared by the tests: where things are, the write token, a seeded service, a
real server in a thread, the environment of `qa` child processes, a small real disk.

Fixtures built on these live in tests/conftest.py.
"""

from __future__ import annotations

import errno
import os
import re
import sqlite3
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import httpx
import pytest

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared"
SEEDS = REPO / "seeds"
EVALDATA = SHARED / "evaldata"

TOKEN = "test-token-3f1c"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
BRUSSELS = "002_b8689e71eb8b336f"  # the seed article that answers "who met Jeffrey in Brussels"
SEED_IDS = sorted(path.stem for path in SEEDS.glob("*.txt"))


def seeded_service(index_dir: Path, encoder: Any):
    """A search service over a new index at `index_dir` holding the seed articles."""
    from qa.documents import iter_documents
    from qa.ingest import ingest_documents
    from qa.service import open_service

    service = open_service(index_dir, encoder=encoder)
    ingest_documents(service.index, encoder, list(iter_documents([SEEDS])))
    return service


def assert_error(response: httpx.Response, status: int) -> str:
    """An error is JSON {"status_code", "detail"} with the right code; returns the detail."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert body["status_code"] == status
    assert isinstance(body["detail"], str) and body["detail"]
    return body["detail"]


@contextmanager
def serve_in_thread(app: Any) -> Iterator[str]:
    """`app` served by a real uvicorn in a thread on a free loopback port: requests really overlap
    (handlers run in the server's worker threads). Yields the base URL, e.g. http://127.0.0.1:PORT."""
    import uvicorn

    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, lifespan="on", log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60  # start-up takes milliseconds; this only bounds a broken start
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def qa_env(**extra: str) -> dict[str, str]:
    """The environment of a `qa` (or Python) child process: this one's (whose QA_* variables the
    test session cleared), this checkout first on its path, no QA_INDEX_DIR unless in `extra`."""
    from qa import settings

    env = settings.child_environment(drop=("QA_INDEX_DIR",), python_path=str(REPO))
    return env | extra


class Page(HTMLParser):
    """What a browser would build from the page: elements with attributes, and visible text."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.elements: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        self.text.append(data)

    def find(self, tag: str, **attrs: str) -> list[dict[str, str | None]]:
        return [a for t, a in self.elements if t == tag and all(a.get(k) == v for k, v in attrs.items())]

    def classes(self, tag: str, name: str) -> list[dict[str, str | None]]:
        return [a for t, a in self.elements if t == tag and name in (a.get("class") or "").split()]

    @property
    def visible(self) -> str:
        return "".join(self.text)


# -- a local index is whole --------------------------------------------------------------------------

# What a local index directory may hold: a killed compaction may leave one more vector file or
# a temporary one, which the next compaction removes.
INDEX_FILE = re.compile(
    r"^(manifest\.json|store\.sqlite(-wal|-shm)?|write\.lock|compact\.lock|\.?vectors-\d+-[0-9a-f]+\.faiss(\.\d+\.tmp)?)$"
)


def assert_consistent(index: Any) -> None:
    """Every passage has its vector and lexical row, every document its passages, and the
    recorded counts are what is there: nothing half-indexed."""
    with index.view() as view:
        passages = len(list(view.iter_passages()))
        documents = len(list(view.iter_documents()))
        assert len(view.vectors) == passages
        assert (view.count_documents(), view.count_passages()) == (documents, passages)
    with sqlite3.connect(Path(index.location) / "store.sqlite") as db:
        lexical_rows = db.execute("SELECT count(*) FROM lexical").fetchone()[0]
        orphans = db.execute(
            "SELECT count(*) FROM documents d WHERE NOT EXISTS"
            " (SELECT 1 FROM passages p WHERE p.document_id = d.id)"
        ).fetchone()[0]
    assert lexical_rows == passages
    assert orphans == 0  # no document without its passages: nothing half-indexed


# -- a small real disk (root only) -------------------------------------------------------------------


@contextmanager
def small_disk(path: Path, size: str = "16m") -> Iterator[Path]:
    """A real filesystem (tmpfs) of `size` at `path`, unmounted afterwards (lazily: the index keeps
    retired SQLite files open for a while). Skips the test where mounting is not allowed."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root; CI runs as root")
    path.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({mounted.stderr.decode().strip()}); CI runs as root")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=True)


def fill(disk: Path) -> Path:
    """Take every free byte of `disk` with one file, and return it."""
    filler = disk / "filler"
    with filler.open("wb", buffering=0) as handle:
        for size in (65536, 4096, 1):  # down to the last byte
            try:
                while True:
                    handle.write(b"\0" * size)
            except OSError as exc:
                assert exc.errno == errno.ENOSPC
    return filler
